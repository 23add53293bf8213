"""Model-service benchmark: ours vs the in-process engine, `transformers serve` and a naive server.

Every system serves the same model folder and gets the same greedy requests at 1, 8 and 32
concurrent streams, one system at a time (the machine is small: no two compete for its cores), in
interleaved rounds. Each system's figures are its median round; each ratio is the median of the
ratios within a round. Writes bench/results/serving.json and serving.png.

``--device cuda`` (with ``--dtype``, ``--batch-requests``, ``--demo-dir``, ``--time-budget``) runs the
same measurement on a GPU; bench/gpu/run_gpu_bench.sh is the script that did so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import time
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import harness_path  # noqa: F401  (the repository root on sys.path, for the harness)
from loadgen import RequestTrace, run_load, summarize

from harness.stack import Stack, free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SERVICE = ROOT / "python-model-service"
RESULTS = BENCH / "results"
CACHE = BENCH / ".cache"
sys.path.insert(0, str(SERVICE))

# Our engine (in process and served) batches as many requests as the highest level has streams,
# as `transformers serve` does by default.
BATCH_REQUESTS = 32
BATCH_TOKENS = 2048  # the service's default batch token budget, for both of our engine's runs
SYSTEMS = ("in_process", "ours", "transformers_serve", "naive")

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


# Random-weight Qwen2 recipes, on the demo model's tokenizer: (folder, shape, dtype of the saved weights).
# "random-0.5b" has the transformer body of Qwen2.5-0.5B (896 wide, 24 layers, 14 heads, 2 KV heads);
# with the demo's 2,147-token vocabulary it has ~360M parameters. It is for GPUs.
RANDOM_MODELS: dict[str, tuple[str, dict[str, int], str]] = {
    "random": (
        "random-qwen2-30m",
        {
            "hidden_size": 640,
            "intermediate_size": 1728,
            "num_hidden_layers": 8,
            "num_attention_heads": 10,
            "num_key_value_heads": 2,
        },
        "float32",
    ),
    "random-0.5b": (
        "random-qwen2-0.5b",
        {
            "hidden_size": 896,
            "intermediate_size": 4864,
            "num_hidden_layers": 24,
            "num_attention_heads": 14,
            "num_key_value_heads": 2,
        },
        "bfloat16",
    ),
}


def random_model(tokenizer_dir: Path, recipe: str = "random") -> Path:
    """A Qwen2 with random weights (a real architecture, ``RANDOM_MODELS[recipe]``), built once."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    folder, shape, dtype = RANDOM_MODELS[recipe]
    out = CACHE / folder
    if (out / "model.safetensors").is_file():
        return out
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen2Config(
        vocab_size=len(tok),
        **shape,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = Qwen2ForCausalLM(config).eval()
    if dtype != "float32":
        model = model.to(getattr(torch, dtype))
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


def recount(traces: list[RequestTrace], tokenizer: Any) -> list[RequestTrace]:
    """Output tokens as the server reports them (usage), else the streamed text re-tokenized.

    Counting chunks would be wrong: servers pack several tokens into one chunk when a character
    spans tokens or the client is behind.
    """
    for t in traces:
        if not t.reported:
            t.tokens = len(tokenizer.encode(t.text, add_special_tokens=False))
    return traces


@dataclass(frozen=True)
class Placement:
    """Where the systems run: device and dtype ("auto": each system's own default), batch size and the
    most concurrent streams of the run (the service must admit that many waiting requests)."""

    device: str = "cpu"
    dtype: str = "auto"
    batch_requests: int = BATCH_REQUESTS
    max_streams: int = 32


class Systems:
    """Every system under test for one model, all started up front so that rounds can interleave."""

    def __init__(
        self,
        name: str,
        model_dir: Path,
        max_tokens: int,
        wanted: list[str],
        place: Placement | None = None,
        ours_env: Mapping[str, str] | None = None,
    ) -> None:
        from transformers import AutoTokenizer

        self.name, self.model_dir, self.max_tokens = name, model_dir, max_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.wanted = wanted
        self.place = place or Placement()
        # more settings of our service (the launcher drops inherited MODEL_* variables)
        self.ours_env = dict(ours_env or {})
        self.stack = ExitStack()
        self.http: dict[str, tuple[str, str, str | None]] = {}  # system -> (url, model name, token)
        self.engine: Any = None

    def __enter__(self) -> Systems:
        py = sys.executable
        place = self.place
        if "in_process" in self.wanted:
            from app.engine import load_engine

            limits = {"max_batch_requests": place.batch_requests, "max_batch_tokens": BATCH_TOKENS}
            self.engine = load_engine(str(self.model_dir), device=place.device, dtype=place.dtype, **limits)
            self.engine.start()
            self.stack.callback(self.engine.stop)
        # Loading a large model on a busy host can take minutes.
        servers = self.stack.enter_context(Stack(logs=RESULTS / "logs", ready_timeout=600))
        if "ours" in self.wanted:
            port, token = free_port(), secrets.token_urlsafe(32)
            env = {
                "MODEL_PATH": str(self.model_dir),
                "MODEL_MAX_BATCH_REQUESTS": str(place.batch_requests),
                "MODEL_MAX_BATCH_TOKENS": str(BATCH_TOKENS),
            }
            if place.device != "cpu":
                env["MODEL_DEVICE"] = place.device
            if place.dtype != "auto":
                env["MODEL_DTYPE"] = place.dtype
            if place.max_streams > 64:  # the service's default admission queue
                env["MODEL_MAX_QUEUED_REQUESTS"] = str(place.max_streams)
            env.update(self.ours_env)
            ours = servers.add_model_service(env=env, port=port, token=token, name=f"{self.name}-ours")
            self.http["ours"] = (ours.url, self.model_dir.name, token)
        if "transformers_serve" in self.wanted:
            port = free_port()
            script = Path(py).parent / "transformers"
            cmd = [str(script)] if script.exists() else [py, "-m", "transformers.cli.transformers"]
            cmd += ["serve", str(self.model_dir), "--continuous-batching"]
            cmd += ["--host", "127.0.0.1", "--port", str(port), "--device", place.device]
            if place.dtype != "auto":
                cmd += ["--dtype", place.dtype]
            serve = servers.start(f"{self.name}-transformers-serve", cmd, port=port, ready="/health")
            self.http["transformers_serve"] = (serve.url, str(self.model_dir), None)
        if "naive" in self.wanted:
            port = free_port()
            cmd = [py, str(BENCH / "naive_server.py"), str(self.model_dir), str(port)]
            naive = servers.start(f"{self.name}-naive", cmd, port=port, ready="/ready")
            self.http["naive"] = (naive.url, self.model_dir.name, None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def warm(self) -> None:
        """A few requests each, so that lazy initialisation does not count against a system.

        On a GPU also one short wave at the highest level, so that the first round's large batches
        do not pay for the memory allocator's growth."""
        for system in self.wanted:
            self.run(system, 4, 4, max_tokens=8)
            if self.place.device != "cpu":
                self.run(system, self.place.max_streams, self.place.max_streams, max_tokens=8)

    def run(self, system: str, n: int, c: int, max_tokens: int | None = None) -> dict:
        """``n`` requests at concurrency ``c`` against one system; its summary."""
        max_tokens = max_tokens or self.max_tokens
        if system == "in_process":
            traces, wall = asyncio.run(in_process_load(self.engine, n, c, max_tokens))
        else:
            url, model, token = self.http[system]
            traces, wall = asyncio.run(run_load(url, bodies(model, n, max_tokens), c, token))
        return summarize(recount(traces, self.tokenizer), wall)


async def in_process_load(engine: Any, n: int, c: int, max_tokens: int) -> tuple[list[RequestTrace], float]:
    """The limit: our engine driven directly, without HTTP, SSE or detokenization."""
    from app.engine import SamplingParams

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

    sem = asyncio.Semaphore(c)

    async def bounded(i: int) -> RequestTrace:
        async with sem:
            return await one(i)

    start = time.perf_counter()
    traces = await asyncio.gather(*(bounded(i) for i in range(n)))
    return list(traces), time.perf_counter() - start


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput, with every round's throughput alongside."""
    ordered = sorted(runs, key=lambda r: r["tokens_per_s"])
    return {**ordered[len(ordered) // 2], "tokens_per_s_rounds": [r["tokens_per_s"] for r in runs]}


def bench_model(
    name: str,
    model_dir: Path,
    levels: list[int],
    sizes: dict[int, int],
    max_tokens: int,
    rounds: int,
    wanted: list[str],
    place: Placement | None = None,
    deadline: float = 0.0,
) -> tuple[dict, int]:
    """Every system on one model: ``rounds`` interleaved rounds, each level run once per system per round.

    The machine's speed drifts (shared host); interleaving puts every system through the same drift,
    and the median round is reported. The naive server runs in the first round only: it is several
    times slower, and its figure only has to show that. With a ``deadline`` (``time.monotonic()``), no
    round starts that would not end before it, at the pace of the rounds so far (the first always runs).
    Returns the systems' figures and the number of rounds run.
    """
    runs: dict[str, dict[str, list[dict]]] = {s: {str(c): [] for c in levels} for s in wanted}
    done = 0
    with Systems(name, model_dir, max_tokens, wanted, place) as systems:
        systems.warm()
        started = time.monotonic()
        for r in range(rounds):
            now = time.monotonic()
            if deadline and r > 0 and now + (now - started) / r > deadline:
                print(f"  [{name}] time budget: stopping after {r} rounds", flush=True)
                break
            for c in levels:
                for system in wanted:
                    if system == "naive" and r > 0:
                        continue
                    result = systems.run(system, sizes[c], c)
                    runs[system][str(c)].append(result)
                    print(f"  [{name}] round {r + 1} c={c:<3} {system:<18} {result}", flush=True)
            done = r + 1
    figures = {s: {c: median_run(rs) for c, rs in per_level.items()} for s, per_level in runs.items()}
    return figures, done


def ratios(model_results: dict) -> dict:
    """Ours relative to each peer at each concurrency level: the median over rounds of the ratio
    within a round, where the two ran minutes apart at most and so on the same machine speed."""
    ours = model_results.get("ours")
    table: dict[str, dict[str, float]] = {}
    if ours is None:
        return table
    for peer in [p for p in SYSTEMS if p != "ours" and p in model_results]:
        table[f"ours_vs_{peer}"] = {}
        for c, mine in ours.items():
            theirs = model_results[peer][c]["tokens_per_s_rounds"]
            paired = [a / b for a, b in zip(mine["tokens_per_s_rounds"], theirs, strict=False) if b]
            if paired:
                table[f"ours_vs_{peer}"][c] = round(statistics.median(paired), 3)
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


def add_common_arguments(parser: argparse.ArgumentParser, systems: Iterable[str], out: Path) -> None:
    """The arguments every model-service benchmark takes: which systems, where, and the output."""
    parser.add_argument("--systems", default=",".join(systems), help="comma-separated subset of: %(default)s")
    parser.add_argument("--out", type=Path, default=out, help="JSON path; the PNG goes beside it")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where every system runs")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "float16", "bfloat16"],
        help="every system's dtype; auto: each system's own default",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default="demo,random", help="comma-separated: demo, " + ", ".join(RANDOM_MODELS)
    )
    parser.add_argument("--levels", default="1,8,32", help="concurrency levels")
    parser.add_argument("--requests", type=int, default=24, help="minimum requests per level")
    parser.add_argument("--waves", type=int, default=4, help="at least this many times c requests per level")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is reported")
    add_common_arguments(parser, SYSTEMS, RESULTS / "serving.json")
    parser.add_argument(
        "--batch-requests", type=int, default=BATCH_REQUESTS, help="our engine's requests per batch"
    )
    parser.add_argument(
        "--demo-dir", type=Path, help="use this demo model folder as it is (no fingerprint check or build)"
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=0.0,
        help="seconds for the whole run, start-up included; 0: no limit",
    )
    args = parser.parse_args()
    deadline = time.monotonic() + args.time_budget if args.time_budget else 0.0
    wanted = [s for s in SYSTEMS if s in args.systems.split(",")]
    from app.demo_model.build import build, default_model_dir

    levels = [int(c) for c in args.levels.split(",")]
    names = args.models.split(",")
    demo = args.demo_dir.resolve() if args.demo_dir else build(default_model_dir())
    dirs = {"demo": demo, **{n: random_model(demo, n) for n in names if n in RANDOM_MODELS}}
    place = Placement(args.device, args.dtype, args.batch_requests, max(levels))
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only"
    if args.device == "cuda":
        import torch

        machine = f"{torch.cuda.get_device_name()}, {os.cpu_count()} CPU cores"
    results: dict = {
        "machine": machine,
        "date": time.strftime("%Y-%m-%d"),
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "models": {},
    }
    if args.device != "cpu" or args.dtype != "auto" or args.batch_requests != BATCH_REQUESTS:
        results["placement"] = {**asdict(place), "max_batch_tokens": BATCH_TOKENS}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        # The demo model's replies are short and fast: more requests give it runs long enough to measure.
        scale = 4 if name == "demo" else 1
        sizes = {c: scale * max(args.requests, args.waves * c) for c in levels}
        systems, done = bench_model(
            name, dirs[name], levels, sizes, args.max_tokens, args.rounds, wanted, place, deadline
        )
        results["models"][name] = {"systems": systems, "ratios": ratios(systems)}
        if done != args.rounds:
            results["models"][name]["rounds"] = done
        print(json.dumps(results["models"][name]["ratios"], indent=2), flush=True)
        # Written after each model, so that a later model's failure keeps the earlier figures.
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
