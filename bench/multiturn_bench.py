"""Multi-turn benchmark: time to first token per turn, prefix reuse on and off, beside `transformers serve`.

Several conversations at once (lock-step: every conversation sends turn t together) share a system
prompt of about 1,000 tokens; each turn adds a user message, gets a greedy reply of at most
``--max-tokens`` tokens, and sends the whole conversation again the next turn, as a chat client does.
Without reuse, the time to first token grows with the conversation; with it, each turn should cost only
what it added.

The time to first token of a turn is measured on a probe sent just before the reply: the same request
with ``max_tokens: 1``, timed to its last byte. A streamed reply's first content chunk would be a poor
clock: a character that spans several tokens (Chinese, in byte-level BPE) shows nothing until its last
token, and random-weight models often generate only such fragments. The probe changes no cache:
transformers registers a cache block for reuse after the step that fills it, unless the request ends in
that step, which a one-token request always does.

Systems: ours with MODEL_PREFIX_CACHE=true, ours with false, and `transformers serve` with continuous
batching, all on the same model folder, started as serving_bench starts them. Rounds are interleaved
(each round has a system prompt of its own, so that turn 1 always starts from a cold cache); each
figure is the median over conversations of a round, then over rounds. Writes
bench/results/multiturn.json and multiturn.png.

``--device cuda --dtype bfloat16 --model random-0.5b`` runs it on a GPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from loadgen import RequestTrace, stream_once
from serving_bench import (
    RANDOM_MODELS,
    RESULTS,
    SERVICE,
    Placement,
    Systems,
    add_common_arguments,
    random_model,
)

# name -> (serving_bench system, MODEL_PREFIX_CACHE for ours)
SYSTEMS: dict[str, tuple[str, str | None]] = {
    "ours": ("ours", "true"),
    "ours_no_reuse": ("ours", "false"),
    "transformers_serve": ("transformers_serve", None),
}


def corpus() -> tuple[list[str], list[str]]:
    """The demo corpus's distinct user questions and assistant replies, in order."""
    users: list[str] = []
    replies: list[str] = []
    with (SERVICE / "app" / "demo_model" / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            for m in json.loads(line)["messages"]:
                bucket = users if m["role"] == "user" else replies
                if m["content"] not in bucket:
                    bucket.append(m["content"])
    return users, replies


def system_prompt(tokenizer: Any, tokens: int, tag: str) -> str:
    """About ``tokens`` tokens of instructions and example answers; ``tag`` makes it unique to a round."""
    _, replies = corpus()
    text = f"[{tag}] 你是一个乐于助人的助手。You are a helpful assistant. 以下是一些回答的例子:\n"
    i = 0
    while len(tokenizer.encode(text, add_special_tokens=False)) < tokens:
        text += replies[i % len(replies)] + "\n"
        i += 1
    return text


def questions(conversation: int, turns: int) -> list[str]:
    """The user messages of one conversation, different from the other conversations'."""
    users, _ = corpus()
    return [users[(conversation * turns + t) % len(users)] for t in range(turns)]


def prefix_counters(url: str) -> dict[str, float]:
    """Our service's ``model_prefix_cache_*_total`` counters."""
    values: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("model_prefix_cache_") and "_total " in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


async def converse(
    url: str, model: str, token: str | None, system: str, conversations: int, turns: int, max_tokens: int
) -> tuple[list[list[RequestTrace]], list[dict[str, float]]]:
    """Every conversation, turn by turn in lock-step; each turn's probes, and our counters over them."""
    histories = [[{"role": "system", "content": system}] for _ in range(conversations)]
    asks = [questions(c, turns) for c in range(conversations)]
    per_turn: list[list[RequestTrace]] = []
    counters: list[dict[str, float]] = []
    ours = token is not None
    before = prefix_counters(url) if ours else {}
    for t in range(turns):
        for c, history in enumerate(histories):
            history.append({"role": "user", "content": asks[c][t]})
        bodies = [
            {
                "model": model,
                "messages": list(history),
                "max_tokens": max_tokens,
                "temperature": 0,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            for history in histories
        ]
        probes = await asyncio.gather(*(stream_once(url, {**b, "max_tokens": 1}, token) for b in bodies))
        if ours:
            after = prefix_counters(url)
            counters.append({k: after.get(k, 0.0) - before.get(k, 0.0) for k in after})
        replies = await asyncio.gather(*(stream_once(url, body, token) for body in bodies))
        for trace in [*probes, *replies]:
            if trace.error or trace.status != 200:
                raise RuntimeError(f"turn {t + 1}: HTTP {trace.status}, {trace.error}")
        for history, reply in zip(histories, replies, strict=True):
            history.append({"role": "assistant", "content": reply.text})
        per_turn.append(list(probes))
        if ours:
            before = prefix_counters(url)
    return per_turn, counters


def ttft_ms(probes: list[RequestTrace]) -> float:
    """The median over conversations of a turn's one-token requests, start to last byte."""
    return round(statistics.median((t.end or t.start) - t.start for t in probes) * 1000, 1)


def median_turns(rounds: list[list[float]]) -> list[float]:
    """Per turn, the median over rounds of the per-round figures."""
    return [round(statistics.median(values), 1) for values in zip(*rounds, strict=True)]


def ratios(systems: dict[str, dict], turns: int) -> dict[str, float]:
    """Each peer's time to first token at the last turn over ours: the median, over rounds, of the
    ratio within a round (the two ran minutes apart, at the same machine speed). And how flat ours is
    from turn 2 on: the slowest of its turns over the fastest (1.0 is flat)."""
    out: dict[str, float] = {}
    ours = systems["ours"]["ttft_ms_rounds"]
    for peer in ("transformers_serve", "ours_no_reuse"):
        if peer in systems:
            theirs = systems[peer]["ttft_ms_rounds"]
            paired = [t[-1] / o[-1] for o, t in zip(ours, theirs, strict=False)]
            out[f"{peer}_over_ours_at_turn_{turns}"] = round(statistics.median(paired), 2)
    later = systems["ours"]["ttft_ms"][1:]
    out[f"ours_turns_2_to_{turns}_max_over_min"] = round(max(later) / min(later), 2)
    return out


def plot(results: dict, path: Path) -> None:
    """Time to first token against the turn, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, figures in results["systems"].items():
        values = figures["ttft_ms"]
        ax.plot(range(1, len(values) + 1), values, "o-", label=name)
    ax.set(
        title=(
            f"{results['model']}: {results['conversations']} conversations, "
            f"{results['system_prompt_tokens']}-token system prompt, "
            f"replies of at most {results['max_tokens']} tokens"
        ),
        xlabel="turn",
        ylabel="time to first token, ms (median)",
        yscale="log",
        xticks=list(range(1, results["turns"] + 1)),
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.suptitle(f"Multi-turn chat on {results['machine']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default="demo",
        help="demo (real replies), or a random-weight one: " + ", ".join(RANDOM_MODELS),
    )
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=32, help="most tokens of each reply (greedy)")
    parser.add_argument("--system-tokens", type=int, default=1000, help="length of the shared system prompt")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    add_common_arguments(parser, SYSTEMS, RESULTS / "multiturn.json")
    args = parser.parse_args()
    from app.demo_model.build import build, default_model_dir
    from transformers import AutoTokenizer

    wanted = [s for s in SYSTEMS if s in args.systems.split(",")]
    demo = build(default_model_dir())
    model_dir = demo if args.model == "demo" else random_model(demo, args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    place = Placement(args.device, args.dtype, max_streams=args.conversations)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only"
    if args.device == "cuda":
        import torch

        machine = f"{torch.cuda.get_device_name()}, {os.cpu_count()} CPU cores"

    per_round: dict[str, list[list[float]]] = {s: [] for s in wanted}
    counters: list[list[dict[str, float]]] = []
    with contextlib.ExitStack() as stack:
        servers: dict[str, tuple[str, str, str | None]] = {}
        for name in wanted:
            kind, reuse = SYSTEMS[name]
            # Through the launcher: it does not pass on this process's own MODEL_* variables.
            ours_env = {"MODEL_PREFIX_CACHE": reuse} if reuse is not None else {}
            systems = stack.enter_context(
                Systems(f"multiturn-{name}", model_dir, args.max_tokens, [kind], place, ours_env=ours_env)
            )
            systems.warm()
            servers[name] = systems.http[kind]
            print(f"  started {name} at {servers[name][0]}", flush=True)
        for r in range(args.rounds):
            for name in wanted:
                url, model, token = servers[name]
                system = system_prompt(tokenizer, args.system_tokens, f"round {r + 1}")
                traces, turn_counters = asyncio.run(
                    converse(url, model, token, system, args.conversations, args.turns, args.max_tokens)
                )
                figures = [ttft_ms(turn) for turn in traces]
                per_round[name].append(figures)
                if name == "ours":
                    counters.append(turn_counters)
                print(f"  round {r + 1} {name:<20} ttft ms per turn {figures}", flush=True)

    system_tokens = len(tokenizer.encode(system_prompt(tokenizer, args.system_tokens, "round 1")))
    results: dict[str, Any] = {
        "machine": machine,
        "date": time.strftime("%Y-%m-%d"),
        "model": args.model,
        "conversations": args.conversations,
        "turns": args.turns,
        "max_tokens": args.max_tokens,
        "system_prompt_tokens": system_tokens,
        "rounds": args.rounds,
        "systems": {
            name: {"ttft_ms": median_turns(rounds), "ttft_ms_rounds": rounds}
            for name, rounds in per_round.items()
        },
    }
    if args.device != "cpu" or args.dtype != "auto":
        results["placement"] = {"device": args.device, "dtype": args.dtype}
    if counters:
        # Our service's own count of the prompt tokens each turn computed and reused (all conversations).
        results["ours_prompt_tokens"] = {
            key: [
                statistics.median(rnd[t].get(f"model_prefix_cache_{key}_tokens_total", 0) for rnd in counters)
                for t in range(args.turns)
            ]
            for key in ("computed", "reused")
        }
    if "ours" in results["systems"]:
        results["ratios"] = ratios(results["systems"], args.turns)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    plot(results, args.out.with_suffix(".png"))
    print(json.dumps(results.get("ratios", {}), indent=2))
    print(f"wrote {args.out} and {args.out.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
