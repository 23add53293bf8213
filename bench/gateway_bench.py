"""Gateway benchmark: relay overhead against calling the upstream directly, and open-stream capacity.

A paced fake upstream (bench/fake_upstream.py) stands in for the model service so that only the
gateway's cost is measured. Side by side in one run, at 1, 32 and 256 concurrent streams: output
tokens/s and TTFT direct vs through the gateway, in up to three configurations against the same fake
upstream, interleaved level by level:

- ``admin``: the admin key, which has no limits (the gateway as measured before rate limits);
- ``limits``: a user key with rate limits, kept in the gateway's memory;
- ``limits_redis``: the same with the limits shared through a real Redis server (a second gateway,
  started with ``GATEWAY_REDIS_URL`` pointing at a throwaway ``redis-server`` on a loopback port).

The limits are far above what the benchmark sends: what is measured is the cost of checking them; a
refused request (HTTP 429) fails the benchmark. Then the capacity run: 2,000 slow streams held open
through the gateway at once, with the gateway's resident memory.
Writes bench/results/gateway.json and gateway.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import harness_path  # noqa: F401  (the repository root on sys.path, for the harness)
import httpx
from loadgen import RequestTrace, percentile, run_load, summarize
from serving_bench import RESULTS, ROOT

from harness.stack import (
    GATEWAY_JAR,
    Gateway,
    MissingBinaryError,
    Process,
    Redis,
    Stack,
    find_binary,
    free_port,
)

BENCH = Path(__file__).resolve().parent
JAR = GATEWAY_JAR
REDIS_SERVER = Path("/usr/bin/redis-server")


@dataclass(frozen=True)
class Config:
    """One way of calling the gateway in the relay run."""

    name: str
    description: str
    limited: bool  # a user key with LIMITS (else the admin key, which has no limits)
    redis: bool  # the gateway shares its limits through Redis (else it keeps them in memory)
    baseline: bool = False  # the gateway jar given with --baseline-jar (an earlier build), admin key


CONFIGS = {
    c.name: c
    for c in (
        Config("before", "an earlier gateway build (--baseline-jar), its admin key", False, False, True),
        Config("admin", "admin key, no limits, in-process state (as before rate limits)", False, False),
        Config("limits", "user key with limits, limits kept in the gateway's memory", True, False),
        Config("limits_redis", "user key with limits, limits shared through Redis", True, True),
    )
}
# Far above what the benchmark sends (a few thousand requests a minute, 64 tokens each, at most
# 256 streams at once, 2,000 in the capacity run): checking the limits is measured, never hitting them.
LIMITS = {"requestsPerMinute": 1_000_000, "tokensPerMinute": 1_000_000_000, "concurrentStreams": 100_000}
# The figure the rate-limit work is held to: added TTFT at the lowest stream level (1) within this
# much of the earlier build's (or, without one, the admin key's), measured in the same run.
TTFT_BUDGET_MS = 2.0
# Rounds per stream level (fewer where a round would hold fewer requests than streams).
ROUNDS = 4
# The TTFT probe: rounds of short streams at one stream, per system.
PROBE_ROUNDS = 6
PROBE_PER_ROUND = 100


def bodies(n: int, max_tokens: int | None = None) -> list[dict]:
    body: dict = {
        "model": "demo-model",
        "messages": [{"role": "user", "content": "你好"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return [dict(body) for _ in range(n)]


class RssSampler:
    """Samples a process's resident memory (VmRSS) in the background; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kb, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.2)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# Requests sent through the gateway before measuring, per configuration. The JIT compiles the
# per-request path (filters, Spring MVC, request parsing, the limit checks, the upstream call) by
# invocation count, and each request runs it once: after a few hundred requests it is still
# interpreted and adds ~3 ms to TTFT; after ~2,000 it is compiled. Each configuration warms its own
# path (a limited key runs the limit checks, the admin key skips them). The per-chunk path is hot much
# sooner (64 chunks per request).
WARMUP_REQUESTS = 3000
WARMUP_CONCURRENCY = 128


class RefusedError(RuntimeError):
    """Rate limits refused a request: the benchmark's limits must never be hit."""


_RATE_LIMITED = re.compile(r"rate.?limit|\b429\b", re.IGNORECASE)


def check_refusals(traces: list[RequestTrace], where: str) -> None:
    """Fails loudly when any request was rate limited: HTTP 429, or a rate-limit error inside the stream."""
    refused = [
        t
        for t in traces
        if t.error is not None
        and ((t.framing is not None and t.framing.status == 429) or _RATE_LIMITED.search(t.error))
    ]
    if refused:
        raise RefusedError(
            f"{where}: {len(refused)} of {len(traces)} requests were refused by rate limits, which this "
            f"benchmark must never hit (key limits {LIMITS}); first: {refused[0].error}"
        )


def load_traces(
    url: str, n: int, c: int, key: str | None, where: str, max_tokens: int | None = None
) -> tuple[list[RequestTrace], float]:
    """``n`` streamed requests at concurrency ``c``: their traces and the wall time. A rate-limited
    request fails the run."""
    traces, wall = asyncio.run(run_load(url, bodies(n, max_tokens), c, key))
    check_refusals(traces, where)
    return traces, wall


def load(url: str, n: int, c: int, key: str | None, where: str) -> dict:
    """``n`` streamed requests at concurrency ``c``; their summary."""
    return summarize(*load_traces(url, n, c, key, where))


def logs_dir() -> Path:
    """Where the servers' logs go (bench/results/logs), made if missing."""
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs


def redis_binary() -> str:
    """The redis-server binary; installed from the Debian package when missing."""

    def find() -> str:
        return find_binary("redis-server", str(REDIS_SERVER), package="redis-server")

    try:
        return find()
    except MissingBinaryError:
        print("[gateway] redis-server is missing: installing it", flush=True)
        script = ROOT / "scripts" / "apt-install.sh"
        subprocess.run([str(script), "--if-missing", str(REDIS_SERVER), "redis-server"], check=True)
        return find()


def servers() -> Stack:
    """The processes of a run, their logs in bench/results/logs (a model loads slowly on a busy host)."""
    return Stack(logs=logs_dir(), ready_timeout=600)


def fake_upstream(
    stack: Stack, tokens: int, interval_ms: int, tag: str, env: Mapping[str, str] | None = None
) -> Process:
    """A paced fake upstream, ``env`` added to its environment (FAKE_NAME, ...)."""
    port = free_port()
    own = {"FAKE_TOKENS": str(tokens), "FAKE_INTERVAL_MS": str(interval_ms)}
    cmd = [sys.executable, str(BENCH / "fake_upstream.py"), str(port)]
    return stack.start(f"fake-upstream-{tag}", cmd, port=port, ready="/ready", env={**own, **(env or {})})


def gateway(
    stack: Stack,
    upstreams: list[Process],
    admin_key: str,
    tag: str,
    redis: Redis | None = None,
    jar: Path = JAR,
    env: Mapping[str, str] | None = None,
) -> Gateway:
    """A gateway in front of ``upstreams`` with its own H2 file, running a copy of ``jar``.

    Its limits and other shared state are in-process unless ``redis`` is given (whatever the calling
    shell's GATEWAY_REDIS_URL says). ``env`` is added to its environment (e.g. SPRING_APPLICATION_JSON).
    """
    return stack.add_gateway(
        upstreams, admin_key=admin_key, redis=redis, jar=jar, env=env, name=f"gateway-{tag}"
    )


def new_admin_key() -> str:
    return "sk-bench-" + secrets.token_urlsafe(16)


def fake_and_gateway(stack: Stack, tokens: int, interval_ms: int, tag: str) -> tuple[str, Gateway, str]:
    """A paced fake upstream and a gateway in front of it: (direct URL, gateway, admin key)."""
    key = new_admin_key()
    direct = fake_upstream(stack, tokens, interval_ms, tag)
    return direct.url, gateway(stack, [direct], key, tag), key


def create_user_key(gw: str, admin_key: str) -> tuple[str, dict]:
    """A user key with LIMITS, made through the admin API: (the key, the gateway's answer less the key)."""
    reply = httpx.post(
        f"{gw}/admin/keys",
        headers={"Authorization": f"Bearer {admin_key}"},
        json={"name": "bench", "role": "user", "limits": LIMITS},
        timeout=30,
    )
    if reply.status_code not in (200, 201):
        raise RuntimeError(f"POST /admin/keys answered {reply.status_code}: {reply.text[:300]}")
    body = reply.json()
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        raise RuntimeError(f"POST /admin/keys answered no key: {reply.text[:300]}")
    return body["key"], {k: v for k, v in body.items() if k != "key"}


def added(d: dict, g: dict) -> dict:
    """What the gateway adds to the direct path: the tokens/s ratio and the added TTFT."""
    return {
        "tokens_per_s_ratio": round(g["tokens_per_s"] / d["tokens_per_s"], 4) if d["tokens_per_s"] else None,
        "added_ttft_p50_ms": round(g["ttft_p50_ms"] - d["ttft_p50_ms"], 2),
        "added_ttft_p99_ms": round(g["ttft_p99_ms"] - d["ttft_p99_ms"], 2),
    }


def relay_overhead(
    levels: list[int],
    tokens: int,
    interval_ms: int,
    configs: list[Config],
    warmup: int = WARMUP_REQUESTS,
    baseline_jar: Path | None = None,
    probe_rounds: int = PROBE_ROUNDS,
) -> tuple[dict, dict, dict | None]:
    """Direct vs through the gateway in each configuration: same fake upstream, same requests.

    Level by level, the direct run and then each configuration's, back to back, so that all share the
    machine's drift. The admin and in-memory limits configurations call one gateway with different
    keys; the Redis one calls a second gateway, started with GATEWAY_REDIS_URL, idle while the others
    run. Then the TTFT probe (many short streams at one stream) over the same gateways. Returns
    (figures per level, what each configuration is, the probe's figures).
    """
    admin_key = new_admin_key()
    out: dict = {}
    meta: dict = {}
    with servers() as stack:
        binary = redis_binary() if any(cfg.redis for cfg in configs) else None  # before anything starts
        upstream = fake_upstream(stack, tokens, interval_ms, "relay")
        direct = upstream.url
        redis = stack.add_redis(binary=binary, name="redis-relay") if binary else None
        gateways: dict[tuple[bool, bool], str] = {}
        targets: dict[str, tuple[str, str]] = {}  # configuration -> (gateway URL, key)
        for cfg in configs:
            which = (cfg.redis, cfg.baseline)
            if which not in gateways:
                shared = redis if cfg.redis else None
                tag = "relay-redis" if cfg.redis else "relay-before" if cfg.baseline else "relay"
                jar = baseline_jar if cfg.baseline and baseline_jar else JAR
                gateways[which] = gateway(stack, [upstream], admin_key, tag, shared, jar).url
            gw = gateways[which]
            info: dict = {
                "description": cfg.description,
                "key_role": "user" if cfg.limited else "admin",
                "limits": LIMITS if cfg.limited else None,
                "redis": cfg.redis,
            }
            key = admin_key
            if cfg.limited:
                key, info["key"] = create_user_key(gw, admin_key)
            if cfg.redis and redis:
                info["redis_server"] = redis.info("server").get("redis_version")
            targets[cfg.name], meta[cfg.name] = (gw, key), info

        # Steady state, not start-up, is measured: let the JIT compile each configuration's path first.
        for cfg in configs:
            gw, key = targets[cfg.name]
            before = redis.commands() if cfg.redis and redis else 0
            w = load(gw, warmup, WARMUP_CONCURRENCY, key, f"warm-up ({cfg.name})")
            print(f"  warm-up {cfg.name:<13} {warmup} requests, errors={w['errors']}", flush=True)
            if cfg.redis and redis and warmup:
                sent = redis.commands() - before
                meta[cfg.name]["redis_commands_in_warmup"] = sent
                if sent <= 0:
                    raise RuntimeError(
                        f"the gateway started with GATEWAY_REDIS_URL={redis.redis_url} sent Redis no command "
                        f"in {warmup} requests with a limited key: its limits are not shared through Redis"
                    )

        for c in levels:
            n = max(32, 2 * c)
            # The host's speed drifts within minutes: the level's requests go in rounds, each round
            # calling direct and every configuration back to back (in alternating order), and each
            # system's figures are over all its rounds' requests.
            rounds = max(1, min(ROUNDS, n // c))
            names = ["direct", *(cfg.name for cfg in configs)]
            traces: dict[str, list[RequestTrace]] = {name: [] for name in names}
            walls = dict.fromkeys(names, 0.0)
            sent = dict.fromkeys(names, 0)
            for r in range(rounds):
                for name in names if r % 2 == 0 else [names[0], *reversed(names[1:])]:
                    cfg = CONFIGS[name] if name != "direct" else None
                    url, key = (direct, None) if cfg is None else targets[name]
                    before = redis.commands() if cfg is not None and cfg.redis and redis else 0
                    got, wall = load_traces(url, n // rounds, c, key, f"{name} c={c}")
                    traces[name] += got
                    walls[name] += wall
                    if cfg is not None and cfg.redis and redis:
                        sent[name] += redis.commands() - before
            d = summarize(traces["direct"], walls["direct"])
            figures: dict[str, dict] = {}
            for cfg in configs:
                g = summarize(traces[cfg.name], walls[cfg.name])
                figures[cfg.name] = {"gateway": g, "rounds": rounds, **added(d, g)}
                if cfg.redis and redis:
                    figures[cfg.name]["redis_commands"] = sent[cfg.name]
            reference = "before" if "before" in figures else "admin"
            base = figures.get(reference)
            for name, fig in figures.items():
                if base is not None and name != reference:
                    for q in ("p50", "p99"):
                        extra = fig[f"added_ttft_{q}_ms"] - base[f"added_ttft_{q}_ms"]
                        fig[f"added_ttft_{q}_vs_{reference}_ms"] = round(extra, 2)
                print(
                    f"  c={c:<4} {name:<13} ratio={fig['tokens_per_s_ratio']} "
                    f"added TTFT p50={fig['added_ttft_p50_ms']} ms p99={fig['added_ttft_p99_ms']} ms "
                    f"errors={fig['gateway']['errors']}",
                    flush=True,
                )
            # The fields of results written before configurations existed: the admin key's figures.
            first = "admin" if "admin" in figures else configs[0].name
            legacy = figures[first]
            out[str(c)] = {
                "direct": d,
                "gateway": legacy["gateway"],
                "tokens_per_s_ratio": legacy["tokens_per_s_ratio"],
                "added_ttft_p50_ms": legacy["added_ttft_p50_ms"],
                "added_ttft_p99_ms": legacy["added_ttft_p99_ms"],
                "gateway_config": first,
                "configs": figures,
            }
        probe = None
        if probe_rounds:
            probe = ttft_probe(direct, targets, [cfg.name for cfg in configs], probe_rounds, PROBE_PER_ROUND)
            for name in (cfg.name for cfg in configs):
                fig = probe[name]
                print(
                    f"  ttft probe {name:<13} added TTFT p50={fig['added_ttft_p50_ms']} ms "
                    f"p90={fig['added_ttft_p90_ms']} ms p99={fig['added_ttft_p99_ms']} ms",
                    flush=True,
                )
    return out, meta, probe


def ttft_probe(
    direct: str, targets: dict[str, tuple[str, str]], names: list[str], rounds: int, per_round: int
) -> dict:
    """Added time to first token at one stream, from many short streams (2 tokens each).

    The relay run's one-stream level holds few requests (each streams for 1.3 s); this one sends
    ``rounds`` x ``per_round`` requests per system, interleaved round by round, so that its
    percentiles rest on hundreds of samples that share the host's drift.
    """
    samples: dict[str, list[float]] = {name: [] for name in ["direct", *names]}
    for r in range(rounds):
        order = ["direct", *names] if r % 2 == 0 else ["direct", *reversed(names)]
        for name in order:
            url, key = (direct, None) if name == "direct" else targets[name]
            traces, _ = load_traces(url, per_round, 1, key, f"ttft probe {name}", max_tokens=2)
            samples[name] += [(t.first - t.start) * 1000 for t in traces if t.error is None and t.first]
    out: dict = {"requests_per_system": rounds * per_round, "rounds": rounds, "tokens_per_request": 2}
    base = {q: percentile(samples["direct"], q) for q in (50, 90, 99)}
    out["direct"] = {f"ttft_p{q}_ms": round(v, 3) for q, v in base.items()}
    for name in names:
        out[name] = {
            f"added_ttft_p{q}_ms": round(percentile(samples[name], q) - base[q], 3) for q in (50, 90, 99)
        }
    return out


def ttft_budget(relay: dict, probe: dict | None = None) -> dict | None:
    """At one stream, each configuration's added TTFT against the earlier build's (or, without one,
    the admin key's), measured in the same run, and whether it is within TTFT_BUDGET_MS: from the
    TTFT probe when there is one, else from the relay run's lowest level. None without a reference."""
    if probe:
        names = [n for n in probe if isinstance(probe[n], dict) and n != "direct"]
        reference = "before" if "before" in names else "admin"
        if reference in names:
            ref = probe[reference]
            table = {}
            for name in names:
                if name == reference:
                    continue
                p50 = round(probe[name]["added_ttft_p50_ms"] - ref["added_ttft_p50_ms"], 3)
                p99 = round(probe[name]["added_ttft_p99_ms"] - ref["added_ttft_p99_ms"], 3)
                table[name] = {
                    "extra_ttft_p50_ms": p50,
                    "extra_ttft_p99_ms": p99,
                    "within_budget_p50": p50 <= TTFT_BUDGET_MS,
                    "within_budget_p99": p99 <= TTFT_BUDGET_MS,
                }
            return {
                "streams": 1,
                "source": "ttft_probe",
                "budget_ms": TTFT_BUDGET_MS,
                "against": reference,
                "configs": table,
            }
    if not relay:
        return None
    low = str(min(int(c) for c in relay))
    figures = relay[low].get("configs", {})
    reference = "before" if "before" in figures else "admin"
    if reference not in figures:
        return None
    table = {}
    for name, fig in figures.items():
        if name == reference:
            continue
        p50, p99 = fig[f"added_ttft_p50_vs_{reference}_ms"], fig[f"added_ttft_p99_vs_{reference}_ms"]
        table[name] = {
            "extra_ttft_p50_ms": p50,
            "extra_ttft_p99_ms": p99,
            "within_budget_p50": p50 <= TTFT_BUDGET_MS,
            "within_budget_p99": p99 <= TTFT_BUDGET_MS,
        }
    return {"streams": int(low), "budget_ms": TTFT_BUDGET_MS, "against": reference, "configs": table}


def capacity(streams: int, tokens: int, interval_ms: int) -> dict:
    """Holds ``streams`` slow streams open through the gateway at once."""
    with servers() as stack:
        _, gw_process, key = fake_and_gateway(stack, tokens, interval_ms, "capacity")
        gw, pid = gw_process.url, gw_process.pid  # the java process itself: its memory is the gateway's
        load(gw, 8, 8, key, "capacity warm-up")
        with RssSampler(pid) as rss:
            traces, wall = asyncio.run(run_load(gw, bodies(streams), streams, key))
        check_refusals(traces, "capacity")
        s = summarize(traces, wall)
        result = {
            "streams": streams,
            "completed": s["requests"] - s["errors"],
            "errors": s["errors"],
            "stream_seconds": tokens * interval_ms / 1000,
            "wall_s": s["wall_s"],
            "gateway_peak_rss_mib": round(rss.peak_kb / 1024, 1),
            "ttft_p99_ms": s["ttft_p99_ms"],
        }
        print(f"  capacity: {result}", flush=True)
        return result


METRICS = (
    ("tokens_per_s_ratio", "tokens/s ratio (gateway / direct)", "%.3f"),
    ("added_ttft_p50_ms", "added TTFT p50 (ms)", "%.2f"),
    ("added_ttft_p99_ms", "added TTFT p99 (ms)", "%.2f"),
)


def config_figures(entry: dict) -> dict[str, dict]:
    """One level's figures per configuration; results written before configurations existed have the
    admin key's only, at the level's top."""
    if "configs" in entry:
        return entry["configs"]
    return {entry.get("gateway_config", "admin"): entry}


def plot(results: dict, path: Path) -> None:
    """Per stream level (columns): tokens/s ratio, added TTFT p50 and p99 (rows), one bar per configuration.

    At the lowest level the TTFT panels draw the budget: the admin key's added TTFT + TTFT_BUDGET_MS.
    """
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted(int(c) for c in results["relay"])
    per_level = {c: config_figures(results["relay"][str(c)]) for c in levels}
    names = list(dict.fromkeys(name for c in levels for name in per_level[c]))
    known = list(CONFIGS)
    colors = {n: f"C{known.index(n) if n in known else len(known) + i}" for i, n in enumerate(names)}
    probe = results.get("ttft_probe") or None
    rows = len(METRICS) + (1 if probe else 0)
    fig, axes = plt.subplots(
        rows, max(len(levels), 3), figsize=(1.2 + 3.4 * max(len(levels), 3), 3 * rows), squeeze=False
    )
    for row, (metric, label, fmt) in enumerate(METRICS):
        for col, c in enumerate(levels):
            ax = axes[row][col]
            shown = [n for n in names if n in per_level[c]]
            raw = [per_level[c][n].get(metric) for n in shown]
            values = [float("nan") if v is None else float(v) for v in raw]
            bars = ax.bar(range(len(shown)), values, color=[colors[n] for n in shown])
            ax.bar_label(bars, fmt=fmt, fontsize=8)
            ax.set_xticks(range(len(shown)), shown, fontsize=8)
            ax.set_title(f"{c} stream{'' if c == 1 else 's'}: {label}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            finite = [v for v in values if math.isfinite(v)]
            if metric == "tokens_per_s_ratio":
                if finite:  # ratios sit near 1: start the axis near the lowest so that differences show
                    ax.set_ylim(max(0.0, min(finite) - 0.05), max(1.0, *finite) + 0.02)
                continue
            span = [0.0, *finite]
            reference = "before" if "before" in per_level[c] else "admin"
            admin = per_level[c].get(reference, {}).get(metric)
            if col == 0 and admin is not None and math.isfinite(admin):
                ax.axhline(admin + TTFT_BUDGET_MS, ls="--", lw=1, color="red")
                ax.annotate(
                    f"budget: {reference} + {TTFT_BUDGET_MS:g} ms",
                    (0.02, admin + TTFT_BUDGET_MS),
                    xycoords=("axes fraction", "data"),
                    xytext=(0, 3),
                    textcoords="offset points",
                    fontsize=7,
                    color="red",
                )
                span.append(admin + TTFT_BUDGET_MS)
            pad = 0.15 * ((max(span) - min(span)) or 1.0)  # room for the labels on both sides
            ax.set_ylim(min(span) - (pad if min(span) < 0 else 0), max(span) + pad)
    if probe:
        shown = [n for n in names if n in probe]
        reference = "before" if "before" in shown else "admin"
        for col, q in enumerate((50, 90, 99)):
            ax = axes[len(METRICS)][col]
            values = [probe[n][f"added_ttft_p{q}_ms"] for n in shown]
            bars = ax.bar(range(len(shown)), values, color=[colors[n] for n in shown])
            ax.bar_label(bars, fmt="%.2f", fontsize=8)
            ax.set_xticks(range(len(shown)), shown, fontsize=8)
            title = f"probe, {probe['requests_per_system']} short streams: added TTFT p{q} (ms)"
            ax.set_title(title, fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            if q == 50 and reference in probe:
                line = probe[reference]["added_ttft_p50_ms"] + TTFT_BUDGET_MS
                ax.axhline(line, ls="--", lw=1, color="red")
                ax.annotate(
                    f"budget: {reference} + {TTFT_BUDGET_MS:g} ms",
                    (0.02, line),
                    xycoords=("axes fraction", "data"),
                    xytext=(0, 3),
                    textcoords="offset points",
                    fontsize=7,
                    color="red",
                )
                ax.set_ylim(0, max([*values, line]) * 1.2)
        for col in range(3, len(axes[len(METRICS)])):
            axes[len(METRICS)][col].set_visible(False)
    for row in range(len(METRICS)):
        for col in range(len(levels), len(axes[row])):
            axes[row][col].set_visible(False)
    fig.suptitle(
        f"Gateway relay overhead vs direct, paced fake upstream ({results.get('machine')}, "
        f"{results.get('date')})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_configs(text: str) -> list[Config]:
    """``--configs``: comma-separated names, in run order, each once."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct names from {', '.join(CONFIGS)}; got {text!r}")
    return [CONFIGS[n] for n in names]


def on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM ends the run as Ctrl-C does: every server and the Redis server are stopped on the way out."""
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,32,256")
    parser.add_argument("--streams", type=int, default=2000, help="open streams in the capacity run")
    parser.add_argument(
        "--configs",
        type=parse_configs,
        default=",".join(CONFIGS),
        help="relay configurations, comma-separated, in run order (default: %(default)s)",
    )
    parser.add_argument(
        "--warmup", type=int, default=WARMUP_REQUESTS, help="requests per configuration before measuring"
    )
    parser.add_argument(
        "--probe-rounds", type=int, default=PROBE_ROUNDS, help="TTFT probe rounds (0 skips the probe)"
    )
    parser.add_argument(
        "--baseline-jar",
        type=Path,
        help="an earlier gateway.jar to measure beside this one (adds the 'before' configuration first)",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "gateway.json", help="JSON path; the PNG goes beside it"
    )
    args = parser.parse_args()
    configs: list[Config] = [c for c in args.configs if not c.baseline or args.baseline_jar]
    if args.baseline_jar and not any(c.baseline for c in configs):
        configs.insert(0, CONFIGS["before"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"[gateway] relay overhead: {', '.join(c.name for c in configs)}", flush=True)
    levels = [int(c) for c in args.levels.split(",")]
    relay, described, probe = relay_overhead(
        levels,
        tokens=64,
        interval_ms=20,
        configs=configs,
        warmup=args.warmup,
        baseline_jar=args.baseline_jar,
        probe_rounds=args.probe_rounds,
    )
    budget = ttft_budget(relay, probe) or {}
    for name, verdict in budget.get("configs", {}).items():
        p50, p99, ok = (
            verdict["extra_ttft_p50_ms"],
            verdict["extra_ttft_p99_ms"],
            verdict["within_budget_p50"],
        )
        verdict_word = "within" if ok else "OVER"
        print(
            f"[gateway] {name}: added TTFT at {budget['streams']} stream(s) {p50:+} ms p50, {p99:+} ms p99 "
            f"against {budget['against']} (budget {TTFT_BUDGET_MS:g} ms): {verdict_word} at p50",
            flush=True,
        )
    print("[gateway] capacity", flush=True)
    cap = capacity(args.streams, tokens=20, interval_ms=1000)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores",
        "relay": relay,
        "capacity": cap,
        "relay_configs": described,
        "warmup_requests": args.warmup,
        "ttft_probe": probe,
        "ttft_budget": budget or None,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
