"""Gateway benchmark: relay overhead against calling the upstream directly, and open-stream capacity.

A paced fake upstream (bench/fake_upstream.py) stands in for the model service so that only the
gateway's cost is measured. Side by side in one run, at 1, 32 and 256 concurrent streams: output
tokens/s and TTFT through the gateway vs direct. Then the capacity run: 2,000 slow streams held
open through the gateway at once, with the gateway's resident memory.
Writes bench/results/gateway.json and gateway.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadgen import run_load, summarize
from serving_bench import RESULTS, ROOT, free_port, server

BENCH = Path(__file__).resolve().parent
JAR = ROOT / "java-gateway" / "target" / "gateway.jar"


def java() -> str:
    home = os.environ.get("JAVA_RUN_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def bodies(n: int) -> list[dict]:
    return [
        {
            "model": "demo-model",
            "messages": [{"role": "user", "content": "你好"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for _ in range(n)
    ]


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


def gateway_pid(port: int) -> int | None:
    """The pid of the java process listening on ``port`` (for memory sampling)."""
    target = f":{port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[1].endswith(target) and parts[3] == "0A":
                inodes.add(parts[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


# Requests sent through the gateway before measuring. The JIT compiles the per-request path (filters,
# Spring MVC, request parsing, the upstream call) by invocation count, and each request runs it once:
# after a few hundred requests it is still interpreted and adds ~3 ms to TTFT; after ~2,000 it is
# compiled. The per-chunk path is hot much sooner (64 chunks per request).
WARMUP_REQUESTS = 3000


@contextmanager
def fake_and_gateway(tokens: int, interval_ms: int, tag: str) -> Iterator[tuple[str, str, str, int]]:
    """A paced fake upstream and a gateway in front of it; yields (direct, gateway, key, port)."""
    up_port, gw_port, key = free_port(), free_port(), "sk-bench-" + secrets.token_urlsafe(16)
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    fake_env = {"FAKE_TOKENS": str(tokens), "FAKE_INTERVAL_MS": str(interval_ms)}
    with tempfile.TemporaryDirectory() as work:
        gw_env = {
            "GATEWAY_PORT": str(gw_port),
            "GATEWAY_UPSTREAMS": f"http://127.0.0.1:{up_port}",
            "ADMIN_API_KEY": key,
            "MODEL_SERVICE_TOKEN": secrets.token_urlsafe(32),
            "GATEWAY_DB_URL": f"jdbc:h2:file:{work}/db",
        }
        fake = [sys.executable, str(BENCH / "fake_upstream.py"), str(up_port)]
        gateway = [java(), "-jar", str(JAR)]
        with (
            server(fake, "/ready", up_port, fake_env, logs / f"fake-upstream-{tag}.log") as direct,
            server(gateway, "/actuator/health", gw_port, gw_env, logs / f"gateway-{tag}.log") as gw,
        ):
            yield direct, gw, key, gw_port


def relay_overhead(levels: list[int], tokens: int, interval_ms: int, warmup: int = WARMUP_REQUESTS) -> dict:
    """Direct vs through-the-gateway, same fake upstream, same requests, one level at a time."""
    out: dict = {}
    with fake_and_gateway(tokens, interval_ms, "relay") as (direct, gw, key, _):
        # Steady state, not start-up, is measured: let the JIT compile the hot path first.
        asyncio.run(run_load(gw, bodies(warmup), 128, key))
        for c in levels:
            n = max(32, 2 * c)
            d_traces, d_wall = asyncio.run(run_load(direct, bodies(n), c))
            g_traces, g_wall = asyncio.run(run_load(gw, bodies(n), c, key))
            d, g = summarize(d_traces, d_wall), summarize(g_traces, g_wall)
            out[str(c)] = {
                "direct": d,
                "gateway": g,
                "tokens_per_s_ratio": round(g["tokens_per_s"] / d["tokens_per_s"], 4),
                "added_ttft_p50_ms": round(g["ttft_p50_ms"] - d["ttft_p50_ms"], 2),
                "added_ttft_p99_ms": round(g["ttft_p99_ms"] - d["ttft_p99_ms"], 2),
            }
            print(
                f"  c={c:<4} ratio={out[str(c)]['tokens_per_s_ratio']} "
                f"added TTFT p50={out[str(c)]['added_ttft_p50_ms']} ms "
                f"p99={out[str(c)]['added_ttft_p99_ms']} ms errors={g['errors']}",
                flush=True,
            )
    return out


def capacity(streams: int, tokens: int, interval_ms: int) -> dict:
    """Holds ``streams`` slow streams open through the gateway at once."""
    with fake_and_gateway(tokens, interval_ms, "capacity") as (_, gw, key, gw_port):
        pid = gateway_pid(gw_port)
        asyncio.run(run_load(gw, bodies(8), 8, key))
        with RssSampler(pid or os.getpid()) as rss:
            traces, wall = asyncio.run(run_load(gw, bodies(streams), streams, key))
        s = summarize(traces, wall)
        result = {
            "streams": streams,
            "completed": s["requests"] - s["errors"],
            "errors": s["errors"],
            "stream_seconds": tokens * interval_ms / 1000,
            "wall_s": s["wall_s"],
            "gateway_peak_rss_mib": round(rss.peak_kb / 1024, 1) if pid else None,
            "ttft_p99_ms": s["ttft_p99_ms"],
        }
        print(f"  capacity: {result}", flush=True)
        return result


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [int(c) for c in results["relay"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for who in ("direct", "gateway"):
        a.plot(levels, [results["relay"][str(c)][who]["tokens_per_s"] for c in levels], "o-", label=who)
        b.plot(levels, [results["relay"][str(c)][who]["ttft_p50_ms"] for c in levels], "o-", label=who)
    a.set(title="output tokens/s (paced fake upstream)", xlabel="concurrent streams", xscale="log")
    b.set(title="TTFT p50 (ms)", xlabel="concurrent streams", xscale="log")
    for ax in (a, b):
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,32,256")
    parser.add_argument("--streams", type=int, default=2000, help="open streams in the capacity run")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    print("[gateway] relay overhead", flush=True)
    relay = relay_overhead([int(c) for c in args.levels.split(",")], tokens=64, interval_ms=20)
    print("[gateway] capacity", flush=True)
    cap = capacity(args.streams, tokens=20, interval_ms=1000)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores",
        "relay": relay,
        "capacity": cap,
    }
    (RESULTS / "gateway.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, RESULTS / "gateway.png")
    print(f"wrote {RESULTS / 'gateway.json'} and gateway.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
