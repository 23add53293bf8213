"""Fault benchmark: how streams through the gateway end when a replica dies, turns slow, or an operator
turns maintenance on under load.

Paced fake upstreams (bench/fake_upstream.py, one per replica, each naming itself in its chunk ids)
stand in for the model service. Three scenarios, each against its own gateway:

- ``killed``: N streams spread over two replicas; mid-stream one replica is killed (SIGKILL) and N
  new requests are sent at once. Streams on the killed replica must end with a clean error event
  quickly, the others must complete, and the new requests must be answered by the survivor.
- ``slow``: two replicas, one slow to its first token; waves of N requests, one wave a second, until
  a few waves went out after its circuit breaker opened. How many reached the slow replica before it
  opened, and the TTFT of the waves after.
- ``switch``: N streams running, then maintenance is turned on: the running streams must complete,
  new requests must get the maintenance reply (``X-Degraded: maintenance``); then it is turned off
  and normal replies must come back.
- ``continued``: two demo-model replicas, two gateways in front of them (continuation failover on and
  off); N greedy answers (``ignore_eos``) streaming from one replica when it is killed (SIGKILL) or
  stopped (SIGSTOP, past the stall timeout). With continuation on every answer must complete, equal to
  the uninterrupted one; off, every one must end with a clean error event and one ``[DONE]``. The gap
  at the splice (the last content chunk before the fault to the first after) is set against the
  answers' normal gap between chunks. Needs the demo model (``DEMO_MODEL_DIR``); a PNG beside the JSON.

A stream "ended cleanly" when it got its full answer then ``[DONE]``, a clean error event then
``[DONE]`` (or an error status with the JSON error envelope), or a degraded reply (``X-Degraded``);
not cleanly when it hung past the deadline, the connection was lost without ``[DONE]``, or it held
anything else. Writes bench/results/fault.json and fault.md; exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import harness_path  # noqa: F401  (the repository root on sys.path, for the harness)
import httpx
from gateway_bench import JAR, fake_upstream, gateway, logs_dir, new_admin_key, on_sigterm, servers
from loadgen import RequestTrace, percentile, run_load, stream_once
from serving_bench import RESULTS

from harness import sse
from harness.stack import Gateway, Process, Stack

MAINTENANCE_MESSAGE = "Down for maintenance (fault benchmark); back in a minute."
SCENARIOS = ("killed", "slow", "switch", "continued")


@dataclass(frozen=True)
class Plan:
    """What the scenarios send; written to fault.json with the results."""

    streams: int = 20  # concurrent streams per scenario (and per wave)
    deadline_s: float = 30.0  # a stream with no end by then hung
    tokens: int = 50  # per stream in the killed and switch scenarios ...
    interval_ms: int = 50  # ... one this often
    kill_after_s: float = 1.0  # the replica dies this long after the streams started
    slow_first_token_ms: int = 3000  # the slow replica's delay to its first token
    slow_tokens: int = 10
    slow_interval_ms: int = 20
    waves_after_open: int = 3  # waves sent once the slow replica's breaker is seen open ...
    max_waves: int = 12  # ... within at most this many
    wave_every_s: float = 1.0
    probe_every_s: float = 0.1  # new requests after a switch flip, one this often ...
    probe_for_s: float = 2.0  # ... for this long
    continuation_streams: int = 16  # greedy demo-model answers on the failing replica ...
    continuation_tokens: int = 200  # ... this long (ignore_eos)
    stall_timeout_s: float = 3.0  # GATEWAY_CONTINUATION_STALL_TIMEOUT in the continuation scenario
    recovery_limit_s: float = 20.0  # after a kill, probe this long for answers from the survivor
    warmup: int = 40  # short requests before each scenario (the JVM's first requests are slow)
    breaker: dict[str, dict[str, str]] = field(
        default_factory=lambda: {
            "killed": {},  # the shipped breaker settings
            "slow": {
                "gateway.breaker.slow-first-token": "1s",
                "gateway.breaker.minimum-calls": "4",
                # Longer than the scenario: no half-open probe reaches the slow replica during it.
                "gateway.breaker.open-for": "30s",
            },
            "switch": {},
        }
    )


QUICK = Plan(streams=8, deadline_s=20.0, tokens=30, waves_after_open=2, warmup=20)


# ---- one stream, as the client saw it ---------------------------------------------------------------


@dataclass
class Stream:
    """One streamed request through the gateway and how it ended."""

    start: float
    end: float | None = None  # when its last byte arrived; None when it hung past the deadline
    first: float | None = None  # its first content token
    status: int | None = None
    degraded: str | None = None  # the X-Degraded header
    replica: str | None = None  # the fake upstream that answered (its name, from the chunk ids)
    tokens: int = 0
    text: str = ""
    error: str | None = None  # the error event, or an error status's body
    done: bool = False  # its last event was [DONE]
    full: bool = False  # it got every token it asked for
    max_gap_ms: float | None = None  # the longest wait between two content chunks
    outcome: str = "unclean"  # completed, degraded, clean_error or unclean
    why: str = ""  # what was unclean about it

    @property
    def clean(self) -> bool:
        return self.outcome != "unclean"

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first is None else (self.first - self.start) * 1000


def chat(max_tokens: int) -> dict:
    return {
        "model": "demo-model",
        "messages": [{"role": "user", "content": "你好"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
    }


async def stream(base: str, key: str, max_tokens: int, deadline_s: float) -> Stream:
    """One streamed chat completion on its own connection, judged once it ends or its deadline passes."""
    trace = await stream_once(base, chat(max_tokens), key, limit_s=deadline_s)
    return judge(trace, max_tokens, deadline_s)


def judge(trace: RequestTrace, expected: int, deadline_s: float) -> Stream:
    """How a request ended, from its decoded trace."""
    result = Stream(start=trace.start, end=trace.end, status=trace.status, error=trace.error)
    result.degraded = trace.headers.get("x-degraded")
    if trace.status is None:
        result.why = (
            f"no end within {deadline_s:g} s"
            if trace.end is None
            else f"connection lost without an end: {trace.error}"[:200]
        )
        return result
    if trace.status != 200:
        result.error = trace.body.decode(errors="replace")[:300]
        try:
            envelope = json.loads(trace.body)
        except ValueError:
            envelope = None
        if isinstance(envelope, dict) and isinstance(envelope.get("error"), dict):
            result.outcome = "clean_error"
        else:
            result.why = f"HTTP {trace.status} without an error envelope"
        return result
    if trace.id is not None and trace.id.startswith("chatcmpl-fake-"):
        result.replica = trace.id.removeprefix("chatcmpl-fake-")
    result.done, result.first, result.text, result.tokens = trace.done, trace.first, trace.text, trace.tokens
    gaps = [b - a for a, b in zip(trace.chunks, trace.chunks[1:], strict=False)]
    result.max_gap_ms = round(max(gaps) * 1000, 1) if gaps else None
    result.full = trace.error is None and trace.done and trace.tokens >= expected
    if trace.error is not None and not trace.error_event:
        result.why = trace.error[:200]  # an unreadable stream
    elif not trace.done:
        result.why = "the stream ended without [DONE]"
    elif trace.error is not None:
        result.outcome = "clean_error"
    elif result.degraded:
        result.outcome = "degraded"
    elif result.full:
        result.outcome = "completed"
    else:
        result.why = f"{trace.tokens} of {expected} tokens then [DONE], with no error and no X-Degraded"
    return result


def launch(base: str, key: str, n: int, max_tokens: int, deadline_s: float) -> list[asyncio.Task[Stream]]:
    return [asyncio.create_task(stream(base, key, max_tokens, deadline_s)) for _ in range(n)]


async def warm_up(base: str, key: str, n: int, concurrency: int) -> None:
    """Short requests, so that the JVM's slow first requests are not what a scenario measures."""
    bodies = [chat(2) for _ in range(n)]
    traces, _ = await run_load(base, bodies, concurrency, key, limit_s=30)
    failed = [t.error for t in traces if t.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} of {n} warm-up requests failed; first: {failed[0]}")


# ---- processes ----------------------------------------------------------------------------------------


def replica(stack: Stack, name: str, tokens: int, interval_ms: int, delay_ms: int = 0) -> Process:
    """A named fake upstream replica."""
    env = {"FAKE_NAME": name, "FAKE_FIRST_TOKEN_DELAY_MS": str(delay_ms)}
    return fake_upstream(stack, tokens, interval_ms, f"fault-{name}", env)


def fault_gateway(
    stack: Stack, upstreams: list[Process], tag: str, jar: Path, props: dict[str, str]
) -> tuple[str, str]:
    """A gateway in front of ``upstreams`` with Spring ``props``; (base URL, admin key)."""
    key = new_admin_key()
    env = {"SPRING_APPLICATION_JSON": json.dumps(props)}
    return gateway(stack, upstreams, key, f"fault-{tag}", jar=jar, env=env).url, key


_STATE = re.compile(
    r'^resilience4j_circuitbreaker_state\{[^}]*name="([^"]+)"[^}]*state="([a-z_]+)"[^}]*\} (\S+)'
)


async def breaker_states(client: httpx.AsyncClient) -> dict[str, str]:
    """Each circuit breaker's state, from the gateway's Prometheus metrics."""
    reply = await client.get("/actuator/prometheus")
    reply.raise_for_status()
    text = reply.text
    states = {}
    for line in text.splitlines():
        m = _STATE.match(line)
        if m and float(m.group(3)) == 1.0:
            states[m.group(1)] = m.group(2)
    return states


def breaker_log(tag: str) -> list[tuple[float | None, str]]:
    """The gateway's breaker transitions as it logged them: (epoch seconds if the line has a
    timestamp first, what changed)."""
    log = logs_dir() / f"gateway-fault-{tag}.log"
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    out: list[tuple[float | None, str]] = []
    for line in lines:
        if "degradation: breaker" in line:
            try:
                stamp: float | None = datetime.fromisoformat(line.split(maxsplit=1)[0]).timestamp()
            except ValueError:
                stamp = None
            out.append((stamp, line.split("degradation: ", 1)[1]))
    return out


# ---- figures ------------------------------------------------------------------------------------------


def ms(values: list[float], q: float) -> float | None:
    return None if not values else round(percentile(values, q), 1)


def row(
    scenario: str, streams: list[Stream], since: float | None, note: str = "", ttft: bool = False
) -> dict:
    """One line of the fault table; times to a clean end are counted from ``since`` (the fault)."""
    ends = [(s.end - since) * 1000 for s in streams if since is not None and s.clean and s.end is not None]
    ttfts = [s.ttft_ms for s in streams if s.ttft_ms is not None]
    unclean = [s.why for s in streams if not s.clean]
    return {
        "scenario": scenario,
        "streams": len(streams),
        "completed": sum(s.outcome == "completed" for s in streams),
        "degraded": sum(s.outcome == "degraded" for s in streams),
        "clean_errors": sum(s.outcome == "clean_error" for s in streams),
        "ended_cleanly": sum(s.clean for s in streams),
        "end_p50_ms": ms(ends, 50),
        "end_p99_ms": ms(ends, 99),
        "end_max_ms": round(max(ends), 1) if ends else None,
        "ttft_p50_ms": ms(ttfts, 50) if ttft else None,
        "ttft_p99_ms": ms(ttfts, 99) if ttft else None,
        "max_token_gap_ms": max((s.max_gap_ms for s in streams if s.max_gap_ms is not None), default=None),
        "degraded_as": sorted({s.degraded for s in streams if s.degraded}),
        "unclean": unclean[:5],
        "note": note,
    }


def check(checks: list[dict], name: str, ok: bool, detail: str) -> None:
    checks.append({"check": name, "ok": bool(ok), "detail": detail})
    print(f"  [{'ok' if ok else 'FAILED'}] {name}: {detail}", flush=True)


def raw(streams: list[Stream], t0: float) -> list[dict]:
    """Per-stream records with times in ms from ``t0`` (the scenario's reference point)."""
    out = []
    for s in streams:
        d = asdict(s)
        d.pop("text")
        for k in ("start", "end", "first"):
            d[k] = None if d[k] is None else round((d[k] - t0) * 1000, 1)
        out.append(d)
    return out


# ---- scenarios ----------------------------------------------------------------------------------------


def killed_replica(plan: Plan, jar: Path) -> dict:
    """N streams over two replicas; one replica is killed mid-stream; N new requests right after."""
    with servers() as stack:
        victim = replica(stack, "a", plan.tokens, plan.interval_ms)
        survivor = replica(stack, "b", plan.tokens, plan.interval_ms)
        gw, key = fault_gateway(stack, [victim, survivor], "killed", jar, plan.breaker["killed"])
        return asyncio.run(_killed(plan, gw, key, lambda: stack.kill(victim, signal.SIGKILL)))


async def _killed(plan: Plan, gw: str, key: str, kill_victim: Callable[[], None]) -> dict:
    await warm_up(gw, key, plan.warmup, 4)
    n = plan.streams
    checks: list[dict] = []
    async with httpx.AsyncClient(base_url=gw, headers={"Authorization": f"Bearer {key}"}) as admin:
        t0 = time.perf_counter()
        running = launch(gw, key, n, plan.tokens, plan.deadline_s)
        await asyncio.sleep(plan.kill_after_s)
        killed_at = time.perf_counter()
        kill_victim()
        after = launch(gw, key, n, plan.tokens, plan.deadline_s)
        before_done = await asyncio.gather(*running)
        after_done = await asyncio.gather(*after)
        states = await breaker_states(admin)
        # How long until new requests are answered by the survivor again, without a canned reply.
        recovery = await probe_until(
            gw, key, plan, lambda s: s.full and s.replica == "b", plan.recovery_limit_s
        )
    recovered = recovery[-1] if recovery and recovery[-1].full and recovery[-1].replica == "b" else None
    recovered_ms = None if recovered is None else round((recovered.start - killed_at) * 1000)
    survivor = sum(s.replica == "b" for s in after_done)
    canned = sum(s.degraded is not None and "fallback_reply" in s.degraded for s in after_done)
    failed_over = sum(s.degraded is not None and "replica_failover" in s.degraded for s in after_done)
    on_victim = [s for s in before_done if s.replica == "a"]
    on_survivor = [s for s in before_done if s.replica == "b"]
    mid = sum(1 for s in on_victim if s.first is not None and s.first < killed_at)
    rows = [
        row(
            "killed replica: running streams",
            before_done,
            killed_at,
            f"{len(on_victim)} on the killed replica ({mid} mid-stream), {len(on_survivor)} on the other; "
            "times to a clean end are those on the killed replica",
        ),
        row(
            "after a replica was killed: new requests",
            after_done,
            killed_at,
            f"sent right after the kill: {survivor} answered by the survivor "
            f"({failed_over} after failing over from the killed replica), {canned} got the canned fallback "
            "reply"
            + (
                f"; canned replies went on until a request sent {recovered_ms} ms after the kill "
                f"({len(recovery)} probes, one every {plan.probe_every_s * 1000:g} ms)"
                if canned
                else ""
            ),
            ttft=True,
        ),
    ]
    # The row's end times are measured for the streams on the killed replica only.
    victim_row = row("", on_victim, killed_at)
    for k in ("end_p50_ms", "end_p99_ms", "end_max_ms"):
        rows[0][k] = victim_row[k]
    check(
        checks,
        "running streams ended cleanly",
        all(s.clean for s in before_done),
        f"{sum(s.clean for s in before_done)}/{n}",
    )
    errors_fast = [s for s in on_victim if s.outcome == "clean_error" and (s.end or 1e9) - killed_at <= 2.0]
    check(
        checks,
        "streams on the killed replica ended with a clean error within 2 s",
        len(errors_fast) == len(on_victim) and bool(on_victim),
        f"{len(errors_fast)}/{len(on_victim)}; outcomes "
        + json.dumps({o: sum(s.outcome == o for s in on_victim) for o in {s.outcome for s in on_victim}}),
    )
    check(
        checks,
        "streams on the other replica completed",
        all(s.full for s in on_survivor),
        f"{sum(s.full for s in on_survivor)}/{len(on_survivor)}",
    )
    served = [s for s in after_done if s.full and s.replica == "b"]
    check(
        checks,
        "new requests after the kill were answered in full by the surviving replica",
        len(served) == n,
        f"{len(served)}/{n}; X-Degraded seen: {sorted({s.degraded for s in after_done if s.degraded})}",
    )
    return {
        "rows": rows,
        "checks": checks,
        "breaker_states_after": states,
        "breaker_transitions": [line for _, line in breaker_log("killed")],
        "killed_at_ms": round((killed_at - t0) * 1000, 1),
        "answered_by_survivor_again_ms": recovered_ms,
        "streams": {
            "running": raw(before_done, t0),
            "after_kill": raw(after_done, t0),
            "recovery_probes": raw(recovery, t0),
        },
    }


def slow_replica(plan: Plan, jar: Path) -> dict:
    """Two replicas, one slow to its first token; waves of requests while its breaker decides."""
    with servers() as stack:
        fast = replica(stack, "fast", plan.slow_tokens, plan.slow_interval_ms)
        slow = replica(stack, "slow", plan.slow_tokens, plan.slow_interval_ms, plan.slow_first_token_ms)
        # The fast replica first: sequential warm-up requests go to the first of equally loaded ones.
        gw, key = fault_gateway(stack, [fast, slow], "slow", jar, plan.breaker["slow"])
        return asyncio.run(_slow(plan, gw, key, f"replica:{slow.url}"))


async def _slow(plan: Plan, gw: str, key: str, slow_breaker: str) -> dict:
    await warm_up(gw, key, plan.warmup // 2, 1)
    checks: list[dict] = []
    opened: list[float] = []
    async with httpx.AsyncClient(base_url=gw, headers={"Authorization": f"Bearer {key}"}) as admin:
        if (await breaker_states(admin)).get(slow_breaker) != "closed":
            raise RuntimeError(f"{slow_breaker} is not closed before the waves")

        async def watch() -> None:
            while not opened:
                if (await breaker_states(admin)).get(slow_breaker) == "open":
                    opened.append(time.perf_counter())
                    return
                await asyncio.sleep(0.25)

        watcher = asyncio.create_task(watch())
        t0, t0_wall = time.perf_counter(), time.time()
        waves: list[tuple[float, list[asyncio.Task[Stream]]]] = []
        while len(waves) < plan.max_waves:
            if opened and sum(at >= opened[0] for at, _ in waves) >= plan.waves_after_open:
                break
            await asyncio.sleep(max(0.0, t0 + len(waves) * plan.wave_every_s - time.perf_counter()))
            waves.append(
                (time.perf_counter(), launch(gw, key, plan.streams, plan.slow_tokens, plan.deadline_s))
            )
        done = [(at, await asyncio.gather(*tasks)) for at, tasks in waves]
        watcher.cancel()  # by now the breaker opened, or it never will in this scenario
        states = await breaker_states(admin)
    # The metrics poll only says when to stop sending waves; the gateway's log says when the breaker
    # opened, and the waves are split by that.
    logged = breaker_log("slow")
    opened_at = next(
        (
            t0 + stamp - t0_wall
            for stamp, line in logged
            if stamp is not None and slow_breaker in line and "-> OPEN" in line
        ),
        opened[0] if opened else None,
    )
    seen_ms = None if not opened else round((opened[0] - t0) * 1000)
    per_wave = []
    for w, (at, streams) in enumerate(done):
        ttfts = [s.ttft_ms for s in streams if s.ttft_ms is not None]
        per_wave.append(
            {
                "wave": w,
                "sent_at_ms": round((at - t0) * 1000, 1),
                "after_breaker_opened": opened_at is not None and at >= opened_at,
                "to_slow_replica": sum(s.replica == "slow" for s in streams),
                "ended_cleanly": sum(s.clean for s in streams),
                "ttft_p50_ms": ms(ttfts, 50),
                "ttft_p99_ms": ms(ttfts, 99),
            }
        )
        print(f"  wave {w}: {per_wave[-1]}", flush=True)
    early = [s for (at, ss) in done if opened_at is None or at < opened_at for s in ss]
    later = [s for (at, ss) in done if opened_at is not None and at >= opened_at for s in ss]
    hits = sum(s.replica == "slow" for _, ss in done for s in ss)
    opened_ms = None if opened_at is None else round((opened_at - t0) * 1000)
    rows = [
        row(
            "slow replica: waves before its breaker opened",
            early,
            None,
            f"{sum(s.replica == 'slow' for s in early)} went to the slow replica "
            f"(first token after {plan.slow_first_token_ms} ms); breaker open "
            + (
                f"{opened_ms} ms after the first wave (seen in its metrics at {seen_ms} ms)"
                if opened_ms is not None
                else "never seen"
            ),
            ttft=True,
        ),
        row(
            "slow replica: later waves",
            later,
            None,
            f"{sum(s.replica == 'slow' for s in later)} went to the slow replica",
            ttft=True,
        ),
    ]
    everything = early + later
    check(
        checks,
        "every request ended cleanly",
        all(s.clean for s in everything),
        f"{sum(s.clean for s in everything)}/{len(everything)}",
    )
    check(checks, "the slow replica's breaker opened", opened_at is not None, f"at {opened_ms} ms")
    check(
        checks,
        "no wave sent after the breaker opened reached the slow replica",
        bool(later) and not any(s.replica == "slow" for s in later),
        f"{sum(s.replica == 'slow' for s in later)} of {len(later)}",
    )
    later_p99 = ms([s.ttft_ms for s in later if s.ttft_ms is not None], 99)
    check(
        checks,
        "later waves' TTFT p99 is under the slow-first-token threshold (1 s)",
        later_p99 is not None and later_p99 < 1000,
        f"{later_p99} ms",
    )
    return {
        "rows": rows,
        "checks": checks,
        "requests_to_slow_replica": hits,
        "breaker_opened_ms": opened_ms,
        "breaker_seen_open_ms": seen_ms,
        "waves": per_wave,
        "breaker_states_after": states,
        "breaker_transitions": [line for _, line in logged],
        "streams": [raw(ss, t0) for _, ss in done],
    }


def switch_flipped(plan: Plan, jar: Path) -> dict:
    """N streams running; maintenance turned on, then off."""
    with servers() as stack:
        upstream = replica(stack, "only", plan.tokens, plan.interval_ms)
        gw, key = fault_gateway(stack, [upstream], "switch", jar, plan.breaker["switch"])
        return asyncio.run(_switch(plan, gw, key))


async def probe_every(gw: str, key: str, plan: Plan) -> list[Stream]:
    """A short request every ``probe_every_s`` for ``probe_for_s``, each sent on time."""
    tasks = []
    t0 = time.perf_counter()
    for i in range(round(plan.probe_for_s / plan.probe_every_s)):
        await asyncio.sleep(max(0.0, t0 + i * plan.probe_every_s - time.perf_counter()))
        tasks.append(asyncio.create_task(stream(gw, key, 5, plan.deadline_s)))
    return list(await asyncio.gather(*tasks))


async def probe_until(
    gw: str, key: str, plan: Plan, answered: Callable[[Stream], bool], limit_s: float
) -> list[Stream]:
    """Short requests one at a time, ``probe_every_s`` apart, until one is ``answered`` (or ``limit_s``)."""
    got: list[Stream] = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        got.append(await stream(gw, key, 5, plan.deadline_s))
        if answered(got[-1]):
            break
        await asyncio.sleep(plan.probe_every_s)
    return got


async def _switch(plan: Plan, gw: str, key: str) -> dict:
    await warm_up(gw, key, plan.warmup, 4)
    n = plan.streams
    checks: list[dict] = []
    async with httpx.AsyncClient(
        base_url=gw, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as admin:
        t0 = time.perf_counter()
        running = launch(gw, key, n, plan.tokens, plan.deadline_s)
        await asyncio.sleep(plan.kill_after_s)
        flipped_at = time.perf_counter()
        put = await admin.put(
            "/admin/switches/maintenance", json={"enabled": True, "message": MAINTENANCE_MESSAGE}
        )
        put_ms = round((time.perf_counter() - flipped_at) * 1000, 1)
        on = await probe_every(gw, key, plan)
        streams = list(await asyncio.gather(*running))
        off_at = time.perf_counter()
        delete = await admin.delete("/admin/switches/maintenance")
        back = await probe_until(gw, key, plan, lambda s: s.outcome == "completed", 2 * plan.probe_for_s + 2)
        normal = list(await asyncio.gather(*launch(gw, key, n, plan.tokens, plan.deadline_s)))
    maint = [s for s in on if s.degraded is not None]
    first_degraded = min((s.first for s in maint if s.first is not None), default=None)
    first_ms = None if first_degraded is None else round((first_degraded - flipped_at) * 1000, 1)
    flapped = [s for s in on if first_degraded is not None and s.start > first_degraded and not s.degraded]
    normal_back = next((s for s in back if s.outcome == "completed"), None)
    back_ms = (
        None
        if normal_back is None or normal_back.first is None
        else round((normal_back.first - off_at) * 1000, 1)
    )
    rows = [
        row("switch flipped: running streams", streams, flipped_at, "times to a clean end from the flip"),
        row(
            "switch flipped: new requests",
            on,
            None,
            f"one every {plan.probe_every_s * 1000:g} ms for {plan.probe_for_s:g} s after the flip; first "
            f"maintenance reply {first_ms} ms after the flip (PUT took {put_ms} ms)",
            ttft=True,
        ),
        row(
            "switch turned off: new requests",
            normal,
            None,
            f"first normal reply {back_ms} ms after the DELETE ({len(back)} probe(s))",
            ttft=True,
        ),
    ]
    check(
        checks,
        "PUT and DELETE answered 200",
        put.status_code == 200 and delete.status_code == 200,
        f"PUT {put.status_code}, DELETE {delete.status_code}",
    )
    check(
        checks,
        "running streams completed in full",
        all(s.full for s in streams),
        f"{sum(s.full for s in streams)}/{n}; outcomes "
        + json.dumps({o: sum(s.outcome == o for s in streams) for o in {s.outcome for s in streams}}),
    )
    check(
        checks,
        "a maintenance reply came within 2 s of the flip",
        first_ms is not None and first_ms <= 2000,
        f"{first_ms} ms",
    )
    right = [
        s
        for s in maint
        if s.degraded == "maintenance" and s.text == MAINTENANCE_MESSAGE and s.done and s.status == 200
    ]
    check(
        checks,
        "maintenance replies: 200, X-Degraded: maintenance, the message, [DONE]",
        len(right) == len(maint) and bool(maint),
        f"{len(right)}/{len(maint)}; X-Degraded seen: {sorted({s.degraded or '' for s in maint})}",
    )
    check(checks, "no normal reply after the first maintenance one", not flapped, f"{len(flapped)}")
    check(
        checks,
        "normal replies came back within 2 s of turning it off, and every one after was normal",
        back_ms is not None and back_ms <= 2000 and all(s.outcome == "completed" for s in normal),
        f"first after {back_ms} ms; then {sum(s.outcome == 'completed' for s in normal)}/{n} normal",
    )
    return {
        "rows": rows,
        "checks": checks,
        "put_ms": put_ms,
        "first_maintenance_reply_ms": first_ms,
        "first_normal_reply_ms": back_ms,
        "streams": {
            "running": raw(streams, t0),
            "probes_on": raw(on, t0),
            "probes_off": raw(back, t0),
            "after_off": raw(normal, t0),
        },
    }


# ---- continuation: an answer cut by a dead or stalled replica, continued on the other one -----------

CONTINUATION_PROMPTS = ("介绍一下长城", "什么是人工智能?", "写一首关于春天的诗", "Tell me a short story.")


@dataclass
class Answer:
    """One greedy answer read live (the scenario waits on how far each has got), with each content
    chunk's arrival."""

    prompt: str
    chunks: list[float] = field(default_factory=list)
    text: str = ""
    status: int | None = None
    error: str | None = None  # the error event's code, or what went wrong on the client side
    done: int = 0  # how many [DONE] events
    end: float | None = None


def greedy(prompt: str, max_tokens: int) -> dict:
    return {
        "model": "demo-model",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
    }


async def read_answer(client: httpx.AsyncClient, answer: Answer, max_tokens: int) -> Answer:
    """Streams one answer into ``answer`` through the harness's SSE reader."""
    try:
        async with client.stream("POST", "/v1/chat/completions", json=greedy(answer.prompt, max_tokens)) as r:
            answer.status = r.status_code
            async for event in sse.aevents(r):
                if event.data == "[DONE]":
                    answer.done += 1
                    continue
                payload = event.json()
                if isinstance(payload, dict) and payload.get("error"):
                    answer.error = str(payload["error"].get("code") or payload["error"])
                text = "".join(sse.chunk_texts([payload]))
                if text:
                    answer.chunks.append(time.perf_counter())
                    answer.text += text
    except httpx.HTTPError as e:
        answer.error = f"client: {e!r}"[:200]
    answer.end = time.perf_counter()
    return answer


def splice(answer: Answer, fault: float) -> tuple[float | None, float | None]:
    """(the gap across the fault: last content chunk before it to the first after, the answer's
    median gap elsewhere), in ms."""
    before = [t for t in answer.chunks if t <= fault]
    after = [t for t in answer.chunks if t > fault]
    gap = None if not before or not after else (after[0] - before[-1]) * 1000
    others = [
        (b - a) * 1000 for a, b in zip(answer.chunks, answer.chunks[1:], strict=False) if not (a <= fault < b)
    ]
    return gap, (statistics.median(others) if others else None)


async def wait_until(check: Callable[[], Awaitable[bool]], limit_s: float, what: str) -> None:
    deadline = time.perf_counter() + limit_s
    while not await check():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out after {limit_s:g} s waiting for {what}")
        await asyncio.sleep(0.1)


async def in_rotation(admin: httpx.AsyncClient, replica: Process) -> bool | None:
    """Whether the gateway has ``replica`` in rotation (its /admin/status)."""
    replicas = (await admin.get("/admin/status")).json()["replicas"]
    mine = [r for r in replicas if f":{replica.port}" in r["name"]]
    return bool(mine[0]["ready"]) if mine else None


def continued(plan: Plan, jar: Path) -> dict:
    """Two demo-model replicas and two gateways in front of them, continuation on and off; for each
    fault (kill -9, SIGSTOP past the stall timeout) and each gateway, N greedy answers streaming from
    one replica when it fails."""
    with servers() as stack:
        victim = stack.add_model_service(name="fault-model-a", wait=False)
        other = stack.add_model_service(name="fault-model-b")
        stack.wait_ready(victim)
        env = {
            "GATEWAY_UPSTREAM_HEALTHINTERVAL": "300ms",
            "GATEWAY_CONTINUATION_STALL_TIMEOUT": f"{plan.stall_timeout_s:g}s",
            # each run fails one replica's N answers: its breaker must not keep it out of the next run
            "GATEWAY_BREAKER_WINDOW": "100",
            "GATEWAY_BREAKER_MINIMUMCALLS": "100",
        }
        gateways = {
            on: gateway(
                stack,
                [victim, other],
                new_admin_key(),
                f"fault-continuation-{'on' if on else 'off'}",
                jar=jar,
                env={**env, "GATEWAY_CONTINUATION_ENABLED": str(on).lower()},
            )
            for on in (True, False)
        }
        return asyncio.run(_continued(plan, stack, gateways, victim, other))


async def _continued(
    plan: Plan, stack: Stack, gateways: dict[bool, Gateway], victim: Process, other: Process
) -> dict:
    checks: list[dict] = []
    rows: list[dict] = []
    records: dict[str, list[dict]] = {}
    n = plan.continuation_streams
    tokens = plan.continuation_tokens
    prompts = [CONTINUATION_PROMPTS[i % len(CONTINUATION_PROMPTS)] for i in range(n)]
    clients = {
        on: httpx.AsyncClient(
            base_url=g.url, headers={"Authorization": f"Bearer {g.admin_key}"}, timeout=plan.deadline_s * 4
        )
        for on, g in gateways.items()
    }
    try:
        # The uninterrupted answers, and a warm-up of both gateways.
        references = {
            a.prompt: a.text
            for a in await asyncio.gather(
                *(read_answer(clients[True], Answer(p), tokens) for p in CONTINUATION_PROMPTS)
            )
        }
        await asyncio.gather(*(read_answer(clients[False], Answer(p), 8) for p in CONTINUATION_PROMPTS))
        for fault in ("killed", "stalled"):
            for on in (True, False):
                client = clients[on]
                stack.kill(other, signal.SIGSTOP)  # so that every answer goes to the victim
                try:
                    await wait_until(
                        lambda c=client: _is(in_rotation(c, other), False), 15, "the frozen replica to leave"
                    )
                    answers = [Answer(p) for p in prompts]
                    tasks = [asyncio.create_task(read_answer(client, a, tokens)) for a in answers]

                    async def started(answers: list[Answer] = answers) -> bool:
                        return all(len(a.chunks) >= 5 or a.end is not None for a in answers)

                    await wait_until(started, plan.deadline_s, "every answer to start")
                finally:
                    stack.kill(other, signal.SIGCONT)
                await wait_until(
                    lambda c=client: _is(in_rotation(c, other), True), 10, "the thawed replica to return"
                )
                faulted = time.perf_counter()
                if fault == "killed":
                    stack.kill(victim, signal.SIGKILL)
                    done = await asyncio.gather(*tasks)
                else:
                    stack.kill(victim, signal.SIGSTOP)
                    try:
                        done = await asyncio.gather(*tasks)
                    finally:
                        stack.kill(victim, signal.SIGCONT)
                label = f"{fault}, continuation {'on' if on else 'off'}"
                rows.append(continuation_row(label, done, faulted, references, tokens, plan))
                print(f"  {label}: {rows[-1]}", flush=True)
                records[label] = [
                    {
                        "prompt": a.prompt,
                        "status": a.status,
                        "error": a.error,
                        "done_events": a.done,
                        "chunks_ms": [round((t - faulted) * 1000, 1) for t in a.chunks],
                        "equals_uninterrupted": a.text == references[a.prompt],
                    }
                    for a in done
                ]
                if fault == "killed":
                    stack.restart(victim)
                for c in clients.values():
                    await wait_until(
                        lambda c=c: _is(in_rotation(c, victim), True), 30, "the victim to return"
                    )
    finally:
        for c in clients.values():
            await c.aclose()
    for r in rows:
        on = r["scenario"].endswith("on")
        if on:
            check(
                checks,
                f"{r['scenario']}: every answer completed, equal to the uninterrupted one",
                r["completed"] == r["streams"] and r["exact"] == r["streams"],
                f"{r['completed']}/{r['streams']} completed, {r['exact']} exact",
            )
        else:
            check(
                checks,
                f"{r['scenario']}: every answer cut with a clean error event",
                r["cut_clean"] == r["streams"],
                f"{r['cut_clean']}/{r['streams']}; errors {r['errors']}",
            )
    return {"rows": [], "continuation_rows": rows, "checks": checks, "streams": records}


async def _is(value: Awaitable[bool | None], expected: bool) -> bool:
    return await value is expected


def continuation_row(
    label: str, answers: list[Answer], fault: float, references: dict[str, str], tokens: int, plan: Plan
) -> dict:
    """One line of the continuation table."""
    spliced = [splice(a, fault) for a in answers]
    gaps = [g for g, _ in spliced if g is not None]
    normal = [m for _, m in spliced if m is not None]
    completed = [a for a in answers if a.error is None and a.done == 1 and a.status == 200]
    cut = [a for a in answers if a.error is not None]
    to_error = [(a.end - fault) * 1000 for a in cut if a.end is not None]
    return {
        "scenario": label,
        "streams": len(answers),
        "tokens": tokens,
        "stall_timeout_s": plan.stall_timeout_s if label.startswith("stalled") else None,
        "completed": len(completed),
        "exact": sum(a.text == references[a.prompt] for a in completed),
        # an error event in the stream (not a lost connection), then one [DONE]
        "cut_clean": sum(not (a.error or "").startswith("client:") and a.done == 1 for a in cut),
        "errors": sorted({a.error or "" for a in cut}),
        "splice_gap_p50_ms": ms(gaps, 50) if completed else None,
        "splice_gap_max_ms": round(max(gaps), 1) if gaps and completed else None,
        "normal_gap_p50_ms": ms(normal, 50),
        "normal_gap_p99_ms": ms(normal, 99),
        "to_error_p50_ms": ms(to_error, 50),
        "to_error_max_ms": round(max(to_error), 1) if to_error else None,
        "tokens_before_fault_p50": statistics.median(sum(t <= fault for t in a.chunks) for a in answers),
    }


def continuation_table(rows: list[dict]) -> str:
    def cell(v: float | None) -> str:
        return "—" if v is None else f"{v:,.0f}"

    lines = [
        "| fault | continuation | answers | completed (exact) | cut (clean error) "
        "| gap at the splice p50 (ms) | max (ms) | normal gap p50 (ms) | p99 (ms) "
        "| fault to error p50 (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        fault, _, setting = r["scenario"].partition(", continuation ")
        lines.append(
            f"| {fault} | {setting} | {r['streams']} | {r['completed']} ({r['exact']}) | {r['cut_clean']} "
            f"| {cell(r['splice_gap_p50_ms'])} | {cell(r['splice_gap_max_ms'])} "
            f"| {cell(r['normal_gap_p50_ms'])} | {cell(r['normal_gap_p99_ms'])} "
            f"| {cell(r['to_error_p50_ms'])} |"
        )
    return "\n".join(lines)


def plot_continuation(results: dict, path: Path) -> None:
    """Per fault and setting: the gap at the splice (or the time from the fault to the error) against
    the normal inter-token gap, one dot per answer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenario = results["scenarios"]["continued"]
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = []
    for i, r in enumerate(scenario["continuation_rows"]):
        labels.append(r["scenario"].replace(", ", "\n"))
        recs = scenario["streams"][r["scenario"]]
        ys = []
        for rec in recs:
            before = [t for t in rec["chunks_ms"] if t <= 0]
            after = [t for t in rec["chunks_ms"] if t > 0]
            if rec["error"] is None and before and after:
                ys.append(after[0] - before[-1])
        if ys:
            ax.scatter(
                [i] * len(ys), ys, color="C0", alpha=0.6, label="gap at the splice" if i == 0 else None
            )
        if r["normal_gap_p50_ms"] is not None:
            ax.hlines(
                r["normal_gap_p50_ms"],
                i - 0.3,
                i + 0.3,
                color="C1",
                label="normal gap p50" if i == 0 else None,
            )
        if r["to_error_p50_ms"] is not None:
            ax.scatter(
                [i],
                [r["to_error_p50_ms"]],
                marker="x",
                color="C3",
                label="fault to error p50" if i == 1 else None,
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.set_title(f"Continuation failover ({results['machine']}, {results['date']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


RUNNERS = {"killed": killed_replica, "slow": slow_replica, "switch": switch_flipped, "continued": continued}


# ---- report -------------------------------------------------------------------------------------------


def table(rows: list[dict]) -> str:
    def cell(v: float | None) -> str:
        return "—" if v is None else f"{v:g}"

    lines = [
        "| scenario | streams | completed | degraded | clean errors | ended cleanly | to clean end p50 (ms) "
        "| p99 (ms) | max (ms) | TTFT p99 (ms) | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        note = r["note"]
        if r["degraded_as"]:
            note += f"; X-Degraded: {', '.join(r['degraded_as'])}"
        if r["unclean"]:
            note += f"; not clean: {r['unclean'][0]}"
        lines.append(
            f"| {r['scenario']} | {r['streams']} | {r['completed']} | {r['degraded']} | {r['clean_errors']} "
            f"| {r['ended_cleanly']}/{r['streams']} | {cell(r['end_p50_ms'])} | {cell(r['end_p99_ms'])} "
            f"| {cell(r['end_max_ms'])} | {cell(r['ttft_p99_ms'])} | {note} |"
        )
    return "\n".join(lines)


def markdown(results: dict) -> str:
    rows = [r for s in results["scenarios"].values() for r in s["rows"]]
    checks = [c for s in results["scenarios"].values() for c in s["checks"]]
    out = [
        f"# Gateway fault table ({results['machine']}, {results['date']})",
        "",
        "Generated by `bench/fault_bench.py`. A stream ended cleanly when it got its full answer then "
        "`[DONE]`, a clean error event then `[DONE]` (or an error status with the JSON error envelope), "
        "or a degraded reply (`X-Degraded`). Times to a clean end count from the fault (the kill, the "
        "flip) for the streams it affected.",
        "",
        *([table(rows), ""] if rows else []),
        *(
            [
                "## Continuation failover",
                "",
                continuation_table(results["scenarios"]["continued"]["continuation_rows"]),
                "",
            ]
            if "continued" in results["scenarios"]
            else []
        ),
        "## Checks",
        "",
        *[f"- {'ok' if c['ok'] else '**FAILED**'}: {c['check']} ({c['detail']})" for c in checks],
        "",
    ]
    return "\n".join(out)


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, help="concurrent streams per scenario (default 20; 8 --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer and shorter streams, fewer waves")
    parser.add_argument("--deadline", type=float, help="seconds after which a stream counts as hung")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: %(default)s")
    parser.add_argument("--jar", type=Path, default=JAR, help="the gateway jar (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "fault.json", help="JSON path; .md beside it")
    args = parser.parse_args()
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not names or any(s not in RUNNERS for s in names):
        parser.error(f"--scenarios: expected names from {', '.join(SCENARIOS)}; got {args.scenarios!r}")
    if not args.jar.is_file():
        parser.error(f"no gateway jar at {args.jar} (make setup-java builds it)")
    plan = QUICK if args.quick else Plan()
    overrides = {"streams": args.streams, "deadline_s": args.deadline}
    plan = Plan(**{**asdict(plan), **{k: v for k, v in overrides.items() if v is not None}})
    scenarios = {}
    for name in names:
        print(f"[fault] {name}", flush=True)
        scenarios[name] = RUNNERS[name](plan, args.jar)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores",
        "jar": str(args.jar),
        "plan": asdict(plan),
        "scenarios": scenarios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    md = markdown(results)
    if "continued" in scenarios:
        plot_continuation(results, args.out.with_suffix(".png"))
    args.out.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {args.out} and {args.out.with_suffix('.md').name}")
    failed = [c for s in scenarios.values() for c in s["checks"] if not c["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
