"""Fairness benchmark: who gets a full model's slots while one key floods it, FIFO against fair admission.

A paced fake upstream (bench/fake_upstream.py) stands in for the model service; the gateway caps the
model at a few generations in flight (``gateway.limits.model-in-flight``) with a long queue wait, so
that a queue forms and stays. Three keys:

- **A** (weight 1) floods: ``flood`` long requests sent at once;
- **C** (weight 2) is backlogged too: it keeps ``backlog`` long requests outstanding all along;
- **B** (weight 1) is interactive: short requests, one every few seconds, during the flood; its time to
  first token on the idle gateway is measured first.

The same plan runs twice in one run, on two gateways started in turn with
``gateway.limits.admission`` set to ``fifo`` and to ``fair``. Per key: TTFT p50/p99, the tokens it was
served in the window (client side, by each content chunk's arrival) and their share, and Jain's
fairness index of the weighted tokens (tokens / weight) among the backlogged keys (A and C).
Writes bench/results/fairness.json and fairness.png; exits 1 when a check of the fair run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import harness_path  # noqa: F401  (the repository root on sys.path, for the harness)
import httpx
from gateway_bench import JAR, fake_upstream, gateway, new_admin_key, on_sigterm, servers
from loadgen import RequestTrace, percentile, run_load, stream_once
from serving_bench import RESULTS

MODES = ("fifo", "fair")
MODEL = "demo-model"


@dataclass(frozen=True)
class Plan:
    """What each run sends; written to fairness.json with the results."""

    cap: int = 4  # the model's generations in flight on the gateway
    queue_wait_s: int = 120  # long enough that no waiting request is refused during a run
    interval_ms: int = 20  # the fake upstream's pace
    long_tokens: int = 60  # A's and C's requests (1.2 s each at 20 ms a token)
    short_tokens: int = 4  # B's
    flood: int = 100  # A's requests, all sent at once
    backlog: int = 8  # C's requests outstanding at any time
    weight_c: float = 2.0
    interactive: int = 10  # B's requests during the flood ...
    interactive_every_s: float = 2.0  # ... one this often
    settle_s: float = 3.0  # the flood runs this long before B starts and the window opens
    window_s: float = 24.0  # tokens served are counted over this window
    idle_probes: int = 10  # B's requests on the idle gateway, one at a time
    warmup: int = 300  # short requests before the run (the JVM's first requests are slow)


QUICK = Plan(flood=40, backlog=4, interactive=5, window_s=10.0, warmup=100)


def chat(max_tokens: int) -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "你好"}],
        "stream": True,
        "max_tokens": max_tokens,
    }


def create_key(base: str, admin_key: str, name: str, weight: float) -> str:
    """A user key with only a weight in its limits."""
    reply = httpx.post(
        f"{base}/admin/keys",
        headers={"Authorization": f"Bearer {admin_key}"},
        json={"name": name, "role": "user", "limits": {"weight": weight}},
        timeout=30,
    )
    if reply.status_code not in (200, 201):
        raise RuntimeError(f"POST /admin/keys answered {reply.status_code}: {reply.text[:300]}")
    return reply.json()["key"]


# ---- one run ------------------------------------------------------------------------------------------


async def flood_run(plan: Plan, base: str, admin_key: str, keys: dict[str, str]) -> dict:
    """Idle probes, then the flood; the traces per key and an admission snapshot mid-window."""
    warm, _ = await run_load(base, [chat(2) for _ in range(plan.warmup)], 16, admin_key, limit_s=60)
    if failed := [t.error for t in warm if t.error is not None]:
        raise RuntimeError(f"{len(failed)} warm-up requests failed; first: {failed[0]}")
    idle = [
        await stream_once(base, chat(plan.short_tokens), keys["B"], limit_s=30)
        for _ in range(plan.idle_probes)
    ]

    t0 = time.perf_counter()
    window = (t0 + plan.settle_s, t0 + plan.settle_s + plan.window_s)
    # A request in flight when the window closes ends within one long generation; the rest are dropped.
    drop_at = window[1] + plan.long_tokens * plan.interval_ms / 1000 + 3.0
    long = chat(plan.long_tokens)
    flood = [asyncio.create_task(stream_once(base, long, keys["A"], limit_s=600)) for _ in range(plan.flood)]
    await asyncio.sleep(0.2)  # the flood queues first, as a batch job that got there before the others

    async def backlogged() -> list[RequestTrace]:
        traces = []
        while time.perf_counter() < window[1]:
            traces.append(await stream_once(base, long, keys["C"], limit_s=600))
        return traces

    async def interactive() -> list[RequestTrace]:
        sent = []
        for i in range(plan.interactive):
            await asyncio.sleep(
                max(0.0, t0 + plan.settle_s + i * plan.interactive_every_s - time.perf_counter())
            )
            sent.append(
                asyncio.create_task(stream_once(base, chat(plan.short_tokens), keys["B"], limit_s=600))
            )
        return list(await asyncio.gather(*sent))

    backlog = [asyncio.create_task(backlogged()) for _ in range(plan.backlog)]
    b_task = asyncio.create_task(interactive())
    await asyncio.sleep(max(0.0, (window[0] + window[1]) / 2 - time.perf_counter()))
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        status = (await client.get("/admin/status", timeout=10)).json()
    b = await b_task
    c = [t for traces in await asyncio.gather(*backlog) for t in traces]
    await asyncio.sleep(max(0.0, drop_at - time.perf_counter()))
    # A's requests still queued never reached the window; a cancelled one leaves no trace.
    a = [task.result() for task in flood if task.done()]
    for task in flood:
        task.cancel()
    await asyncio.gather(*flood, return_exceptions=True)
    return {
        "t0": t0,
        "window": window,
        "idle": idle,
        "traces": {"A": a, "B": b, "C": c},
        "sent": {"A": plan.flood, "B": plan.interactive, "C": len(c)},
        "admission": status.get("admission"),
    }


def figures(plan: Plan, mode: str, run: dict) -> dict:
    """Per key: TTFT, tokens in the window and their share; Jain's index among the backlogged keys."""
    lo, hi = run["window"]
    weights = {"A": 1.0, "B": 1.0, "C": plan.weight_c}
    keys: dict[str, dict] = {}
    for name, traces in run["traces"].items():
        ttft = [(t.first - t.start) * 1000 for t in traces if t.first is not None]
        in_window = sum(lo <= at <= hi for t in traces for at in t.chunks)
        keys[name] = {
            "weight": weights[name],
            "sent": run["sent"][name],
            "started": len(ttft),
            "errors": sum(t.error is not None for t in traces),
            "ttft_p50_ms": round(percentile(ttft, 50), 1) if ttft else None,
            "ttft_p99_ms": round(percentile(ttft, 99), 1) if ttft else None,
            "ttft_max_ms": round(max(ttft), 1) if ttft else None,
            "tokens_in_window": in_window,
        }
    total = sum(k["tokens_in_window"] for k in keys.values())
    for k in keys.values():
        k["share"] = round(k["tokens_in_window"] / total, 4) if total else None
    x = [keys[n]["tokens_in_window"] / weights[n] for n in ("A", "C")]
    jain = sum(x) ** 2 / (len(x) * sum(v * v for v in x)) if any(x) else None
    idle = [(t.first - t.start) * 1000 for t in run["idle"] if t.first is not None]
    idle_p50 = round(percentile(idle, 50), 1) if idle else None
    b_p50 = keys["B"]["ttft_p50_ms"]
    # Cumulative tokens per key over the run, for the plot: (seconds from the flood's start, tokens).
    series = {}
    for name, traces in run["traces"].items():
        times = sorted(at - run["t0"] for t in traces for at in t.chunks)
        series[name] = [(round(s, 2), i + 1) for i, s in enumerate(times)][:: max(1, len(times) // 400)]
    return {
        "mode": mode,
        "keys": keys,
        "tokens_in_window": total,
        "jain_backlogged_weighted": round(jain, 4) if jain is not None else None,
        "b_idle_ttft_p50_ms": idle_p50,
        "b_idle_ttft_p99_ms": round(percentile(idle, 99), 1) if idle else None,
        "b_ttft_p50_over_idle": round(b_p50 / idle_p50, 1) if b_p50 and idle_p50 else None,
        "admission_mid_window": run["admission"],
        "series": series,
    }


def one_mode(plan: Plan, mode: str, jar: Path) -> dict:
    """One gateway with ``gateway.limits.admission=mode`` in front of its own fake upstream."""
    props = {
        f"gateway.limits.model-in-flight.{MODEL}": str(plan.cap),
        "gateway.limits.model-queue-wait": f"{plan.queue_wait_s}s",
        "gateway.limits.admission": mode,
    }
    with servers() as stack:
        upstream = fake_upstream(stack, plan.long_tokens, plan.interval_ms, f"fairness-{mode}")
        admin_key = new_admin_key()
        env = {"SPRING_APPLICATION_JSON": json.dumps(props)}
        base = gateway(stack, [upstream], admin_key, f"fairness-{mode}", jar=jar, env=env).url
        keys = {
            "A": create_key(base, admin_key, "flood A", 1),
            "B": create_key(base, admin_key, "interactive B", 1),
            "C": create_key(base, admin_key, "backlogged C", plan.weight_c),
        }
        run = asyncio.run(flood_run(plan, base, admin_key, keys))
    return figures(plan, mode, run)


# ---- report -------------------------------------------------------------------------------------------


def table(results: dict) -> str:
    def cell(v: float | None, fmt: str = "{:,.0f}") -> str:
        return "—" if v is None else fmt.format(v)

    lines = [
        "| admission | key | weight | TTFT p50 (ms) | TTFT p99 (ms) | tokens in window | share "
        "| Jain (A, C weighted) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        r = results["modes"].get(mode)
        if r is None:
            continue
        for name, label in (("A", "A (flood)"), ("B", "B (interactive)"), ("C", "C (backlogged)")):
            k = r["keys"][name]
            jain = cell(r["jain_backlogged_weighted"], "{:.3f}") if name == "A" else ""
            lines.append(
                f"| {mode} | {label} | {k['weight']:g} | {cell(k['ttft_p50_ms'])} | {cell(k['ttft_p99_ms'])} "
                f"| {k['tokens_in_window']:,} | {cell(k['share'], '{:.1%}')} | {jain} |"
            )
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    """Cumulative tokens per key over the run (one panel per mode), and B's TTFT per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in MODES if m in results["modes"]]
    fig, axes = plt.subplots(1, len(modes) + 1, figsize=(4.4 * (len(modes) + 1), 3.6), squeeze=False)
    colors = {"A": "C3", "B": "C2", "C": "C0"}
    plan = results["plan"]
    for col, mode in enumerate(modes):
        ax = axes[0][col]
        r = results["modes"][mode]
        for name, points in r["series"].items():
            if points:
                xs, ys = zip(*points, strict=True)
                label = f"{name} (w {r['keys'][name]['weight']:g}): {r['keys'][name]['share'] or 0:.0%}"
                ax.plot(xs, ys, color=colors[name], label=label)
        ax.axvspan(plan["settle_s"], plan["settle_s"] + plan["window_s"], color="grey", alpha=0.1)
        ax.set_title(
            f"{mode}: tokens served (window shaded); Jain {r['jain_backlogged_weighted']}", fontsize=9
        )
        ax.set_xlabel("seconds from the flood's start", fontsize=8)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    ax = axes[0][len(modes)]
    xs = range(len(modes))
    for offset, q in ((-0.2, 50), (0.2, 99)):
        values = [results["modes"][m]["keys"]["B"][f"ttft_p{q}_ms"] or float("nan") for m in modes]
        bars = ax.bar([x + offset for x in xs], values, width=0.4, label=f"p{q}")
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    idle = results["modes"][modes[0]]["b_idle_ttft_p50_ms"]
    if idle:
        ax.axhline(idle, ls="--", lw=1, color="grey", label=f"idle p50 {idle:.0f} ms")
    ax.set_yscale("log")
    ax.set_xticks(list(xs), modes)
    ax.set_title("B's time to first token during the flood (ms)", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle(
        f"Fair admission vs FIFO: model capped at {plan['cap']} in flight "
        f"({results['machine']}, {results['date']})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller flood and a shorter window")
    parser.add_argument("--jar", type=Path, default=JAR, help="the gateway jar (default: %(default)s)")
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "fairness.json", help="JSON path; .png beside it"
    )
    args = parser.parse_args()
    if not args.jar.is_file():
        parser.error(f"no gateway jar at {args.jar} (make setup-java builds it)")
    plan = QUICK if args.quick else Plan()
    modes = {}
    for mode in MODES:
        print(f"[fairness] {mode}", flush=True)
        modes[mode] = one_mode(plan, mode, args.jar)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores",
        "jar": str(args.jar),
        "plan": asdict(plan),
        "modes": modes,
    }
    fair, fifo = modes["fair"], modes["fifo"]
    checks = [
        {
            "check": "fair: Jain's index of the backlogged keys' weighted tokens >= 0.95",
            "ok": (fair["jain_backlogged_weighted"] or 0) >= 0.95,
            "detail": f"{fair['jain_backlogged_weighted']} (fifo: {fifo['jain_backlogged_weighted']})",
        },
        {
            "check": "fair: B's TTFT p99 below FIFO's",
            "ok": (fair["keys"]["B"]["ttft_p99_ms"] or 1e12) < (fifo["keys"]["B"]["ttft_p99_ms"] or 0),
            "detail": f"{fair['keys']['B']['ttft_p99_ms']} ms against {fifo['keys']['B']['ttft_p99_ms']} ms",
        },
        {
            "check": "fair: every request of B got its first token",
            "ok": fair["keys"]["B"]["started"] == plan.interactive,
            "detail": f"{fair['keys']['B']['started']}/{plan.interactive}",
        },
    ]
    results["checks"] = checks
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    plot(results, args.out.with_suffix(".png"))
    print(table(results))
    for c in checks:
        print(f"  [{'ok' if c['ok'] else 'FAILED'}] {c['check']}: {c['detail']}")
    print(f"wrote {args.out} and {args.out.with_suffix('.png').name}")
    return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
