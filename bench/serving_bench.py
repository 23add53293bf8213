"""Model-service benchmark: ours vs the in-process engine, `transformers serve` and a naive server.

Every system serves the same model folder and gets the same greedy requests at 1, 8 and 32
concurrent streams, one system at a time (the machine is small: no two compete for its cores).
Writes bench/results/serving.json and serving.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from loadgen import RequestTrace, run_load, summarize

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SERVICE = ROOT / "python-model-service"
RESULTS = BENCH / "results"
CACHE = BENCH / ".cache"
sys.path.insert(0, str(SERVICE))

# Our engine (in process and served) batches as many requests as the highest level has streams,
# as `transformers serve` does by default.
BATCH_REQUESTS = 32

PROMPTS = [
    "你好",
    "介绍一下长城",
    "什么是人工智能?",
    "写一首关于春天的诗",
    "What is artificial intelligence?",
    "Tell me a short story.",
    "什么是流式输出?",
    "为什么天空是蓝色的?",
]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def random_model(tokenizer_dir: Path) -> Path:
    """A larger Qwen2 with random weights (a real architecture, ~30M parameters), built once."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = CACHE / "random-qwen2-30m"
    if (out / "model.safetensors").is_file():
        return out
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=640,
        intermediate_size=1728,
        num_hidden_layers=8,
        num_attention_heads=10,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    staging = out.with_suffix(".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tok.save_pretrained(staging)
    staging.rename(out)
    return out


def bodies(model: str, n: int, max_tokens: int) -> list[dict]:
    """``n`` greedy streaming requests cycling through the prompts."""
    return [
        {
            "model": model,
            "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for i in range(n)
    ]


def wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float = 600) -> None:
    """Polls ``url`` until it answers 200; fails when the process dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready ({url})")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready in {timeout}s")


@contextmanager
def server(cmd: list[str], ready_path: str, port: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """Runs a server process for the duration of the block; yields its base URL."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_ready(proc, f"http://127.0.0.1:{port}{ready_path}")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def warm(url: str, model: str, token: str | None) -> None:
    """A few requests so that lazy initialisation does not count against a system."""
    await run_load(url, bodies(model, 4, 8), 4, token)


def recount(traces: list[RequestTrace], tokenizer: Any) -> list[RequestTrace]:
    """Output tokens as the server reports them (usage), else the streamed text re-tokenized.

    Counting chunks would be wrong: servers pack several tokens into one chunk when a character
    spans tokens or the client is behind.
    """
    for t in traces:
        if not t.reported:
            t.tokens = len(tokenizer.encode(t.text, add_special_tokens=False))
    return traces


def http_system(
    url: str, model: str, token: str | None, levels: list[int], per: int, max_tokens: int, tokenizer: Any
) -> dict:
    """Runs every concurrency level against one HTTP server."""
    asyncio.run(warm(url, model, token))
    results = {}
    for c in levels:
        traces, wall = asyncio.run(run_load(url, bodies(model, max(per, c * 2), max_tokens), c, token))
        results[str(c)] = summarize(recount(traces, tokenizer), wall)
        print(f"    c={c:<3} {results[str(c)]}", flush=True)
    return results


def in_process(model_dir: Path, levels: list[int], per: int, max_tokens: int) -> dict:
    """The limit: our engine driven directly, without HTTP, SSE or detokenization."""
    from app.engine import SamplingParams, load_engine

    engine = load_engine(str(model_dir), device="cpu", max_batch_requests=BATCH_REQUESTS)
    engine.start()

    async def one(i: int) -> RequestTrace:
        prompt = engine.encode_chat([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}])
        trace = RequestTrace(start=time.perf_counter())
        ids: list[int] = []
        params = SamplingParams(max_new_tokens=max_tokens, temperature=0.0)
        async for step in engine.generate(f"bench-{i}-{time.perf_counter_ns()}", prompt, params):
            if step.token_ids:
                now = time.perf_counter()
                trace.first = trace.first or now
                trace.chunks.append(now)
                ids.extend(step.token_ids)
        trace.text = engine.tokenizer.decode(ids, skip_special_tokens=True)
        trace.tokens, trace.reported = len(ids), True
        return trace

    async def level(n: int, c: int) -> tuple[list[RequestTrace], float]:
        sem = asyncio.Semaphore(c)

        async def bounded(i: int) -> RequestTrace:
            async with sem:
                return await one(i)

        start = time.perf_counter()
        traces = await asyncio.gather(*(bounded(i) for i in range(n)))
        return list(traces), time.perf_counter() - start

    async def run_all() -> dict:
        await engine.warmup()
        await level(4, 4)
        out = {}
        for c in levels:
            traces, wall = await level(max(per, c * 2), c)
            out[str(c)] = summarize(recount(traces, engine.tokenizer), wall)
            print(f"    c={c:<3} {out[str(c)]}", flush=True)
        return out

    try:
        return asyncio.run(run_all())
    finally:
        engine.stop()


def bench_model(name: str, model_dir: Path, levels: list[int], per: int, max_tokens: int) -> dict:
    """All four systems on one model."""
    py = sys.executable
    token = secrets.token_urlsafe(32)
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    served = model_dir.name
    out: dict[str, dict] = {}
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)

    print(f"[{name}] in-process engine", flush=True)
    out["in_process"] = in_process(model_dir, levels, per, max_tokens)

    print(f"[{name}] ours (HTTP + SSE)", flush=True)
    port = free_port()
    env = {
        "MODEL_PATH": str(model_dir),
        "MODEL_PORT": str(port),
        "MODEL_SERVICE_TOKEN": token,
        "MODEL_MAX_BATCH_REQUESTS": str(BATCH_REQUESTS),
    }
    cmd = [py, "-m", "app"]
    with server(cmd, "/ready", port, {**env, "PYTHONPATH": str(SERVICE)}, logs / f"{name}-ours.log") as url:
        out["ours"] = http_system(url, served, token, levels, per, max_tokens, tok)

    print(f"[{name}] transformers serve --continuous-batching", flush=True)
    port = free_port()
    cmd = [str(Path(py).parent / "transformers"), "serve", str(model_dir), "--continuous-batching"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    with server(cmd, "/health", port, {}, logs / f"{name}-transformers-serve.log") as url:
        out["transformers_serve"] = http_system(url, str(model_dir), None, levels, per, max_tokens, tok)

    print(f"[{name}] naive one-generate-per-request server", flush=True)
    port = free_port()
    cmd = [py, str(BENCH / "naive_server.py"), str(model_dir), str(port)]
    with server(cmd, "/ready", port, {}, logs / f"{name}-naive.log") as url:
        out["naive"] = http_system(url, served, None, levels, per, max_tokens, tok)
    return out


def ratios(model_results: dict) -> dict:
    """Ours relative to each peer, by tokens/s at each concurrency level."""
    ours = model_results["ours"]
    table: dict[str, dict[str, float]] = {}
    for peer in ("in_process", "transformers_serve", "naive"):
        table[f"ours_vs_{peer}"] = {
            c: round(ours[c]["tokens_per_s"] / model_results[peer][c]["tokens_per_s"], 3)
            for c in ours
            if model_results[peer][c]["tokens_per_s"]
        }
    return table


def plot(results: dict, path: Path) -> None:
    """Tokens/s and TTFT p50 against concurrency, one panel pair per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"])
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 4 * len(models)), squeeze=False)
    for row, name in enumerate(models):
        systems = results["models"][name]["systems"]
        for sys_name, per_level in systems.items():
            levels = [int(c) for c in per_level]
            axes[row][0].plot(
                levels, [per_level[str(c)]["tokens_per_s"] for c in levels], "o-", label=sys_name
            )
            axes[row][1].plot(
                levels, [per_level[str(c)]["ttft_p50_ms"] for c in levels], "o-", label=sys_name
            )
        axes[row][0].set(
            title=f"{name}: output tokens/s", xlabel="concurrent streams", xscale="log", xticks=levels
        )
        axes[row][1].set(
            title=f"{name}: TTFT p50 (ms)", xlabel="concurrent streams", xscale="log", yscale="log"
        )
        for ax in axes[row]:
            ax.set_xticks(levels, [str(c) for c in levels])
            ax.grid(alpha=0.3)
            ax.legend()
    fig.suptitle(f"Model service on {results['machine']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,random", help="comma-separated: demo, random")
    parser.add_argument("--levels", default="1,8,32", help="concurrency levels")
    parser.add_argument("--requests", type=int, default=24, help="minimum requests per level (at least 2x c)")
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    from app.demo_model.build import build, default_model_dir

    levels = [int(c) for c in args.levels.split(",")]
    demo = build(default_model_dir())
    dirs = {"demo": demo, "random": random_model(demo)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only",
        "date": time.strftime("%Y-%m-%d"),
        "max_tokens": args.max_tokens,
        "models": {},
    }
    for name in args.models.split(","):
        systems = bench_model(name, dirs[name], levels, args.requests, args.max_tokens)
        results["models"][name] = {"systems": systems, "ratios": ratios(systems)}
        print(json.dumps(results["models"][name]["ratios"], indent=2), flush=True)
    (RESULTS / "serving.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    plot(results, RESULTS / "serving.png")
    print(f"wrote {RESULTS / 'serving.json'} and serving.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
