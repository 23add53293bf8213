"""Drives an OpenAI-compatible streaming endpoint at a fixed concurrency and measures it."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class RequestTrace:
    """Client-side timings of one streamed request."""

    start: float
    first: float | None = None
    chunks: list[float] = field(default_factory=list)
    text: str = ""
    tokens: int = 0
    reported: bool = False  # tokens came from the server's usage chunk
    error: str | None = None


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize(traces: list[RequestTrace], wall: float) -> dict[str, float | int]:
    """Throughput and latency figures over a run's traces."""
    # A stream that ended cleanly with no visible text (a random-weight model can generate only
    # special tokens) is not an error; it just has no TTFT.
    ok = [t for t in traces if t.error is None]
    ttft = [(t.first - t.start) * 1000 for t in ok if t.first is not None]
    itl = [(b - a) * 1000 for t in ok for a, b in zip(t.chunks, t.chunks[1:], strict=False)]
    tokens = sum(t.tokens for t in ok)
    return {
        "requests": len(traces),
        "errors": len(traces) - len(ok),
        "output_tokens": tokens,
        "wall_s": round(wall, 3),
        "tokens_per_s": round(tokens / wall, 2) if wall > 0 else 0.0,
        "ttft_p50_ms": round(percentile(ttft, 50), 2),
        "ttft_p99_ms": round(percentile(ttft, 99), 2),
        "itl_p50_ms": round(percentile(itl, 50), 2),
        "itl_mean_ms": round(statistics.fmean(itl), 2) if itl else float("nan"),
    }


async def _one(client: httpx.AsyncClient, url: str, body: dict, headers: dict[str, str]) -> RequestTrace:
    trace = RequestTrace(start=time.perf_counter())
    try:
        async with client.stream("POST", url, json=body, headers=headers) as resp:
            if resp.status_code != 200:
                trace.error = f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}"
                return trace
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    trace.tokens = int(chunk["usage"].get("completion_tokens") or trace.tokens)
                    trace.reported = True
                for choice in chunk.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        now = time.perf_counter()
                        trace.first = trace.first or now
                        trace.chunks.append(now)
                        trace.text += content
    except httpx.HTTPError as e:
        trace.error = repr(e)
    if not trace.tokens:
        # Servers that send no usage chunk: one content chunk is one token for them.
        trace.tokens = len(trace.chunks)
    return trace


async def run_load(
    base_url: str,
    bodies: list[dict],
    concurrency: int,
    token: str | None = None,
) -> tuple[list[RequestTrace], float]:
    """Sends ``bodies`` with at most ``concurrency`` in flight; returns traces and wall time."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:

        async def bounded(body: dict) -> RequestTrace:
            async with sem:
                return await _one(client, f"{base_url}/v1/chat/completions", body, headers)

        start = time.perf_counter()
        traces = await asyncio.gather(*(bounded(b) for b in bodies))
        return list(traces), time.perf_counter() - start
