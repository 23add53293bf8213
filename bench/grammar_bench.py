"""Structured outputs: what grammar-constrained decoding costs, and which library does it best.

Two parts (``--part``):

- ``serving`` (what ``make bench`` runs): tokens/s of ``json_schema`` requests against the same requests
  unconstrained, at 1, 8 and 32 concurrent streams, on the demo and the 30M random models, in process
  (our continuous-batching engine driven directly, as serving_bench's ``in_process`` system), in
  interleaved rounds; each ratio is the median over rounds of the ratio within a round. Both kinds of
  request produce exactly ``--max-tokens`` tokens (unconstrained ones ignore EOS, the schema's summary
  is long enough never to close first), so the ratio is the constraint's cost alone. The engine's own
  clock of the grammar work (mask fill, apply, matcher advance) gives the mask time per token.
  Writes bench/results/grammar.json and grammar.png.
- ``libraries``: xgrammar, llguidance and outlines-core, whichever are installed (the service pins only
  xgrammar; ``pip install llguidance==1.9.1 outlines-core==0.2.14`` to compare), on the demo model's
  tokenizer and on a synthetic 151k byte-level BPE vocabulary (Qwen2's own cannot be downloaded here):
  the per-token cost of the mask (fill the allowed-token bitmask of each row, apply it to the logits row,
  advance the matcher with the chosen token) with 32 concurrent streams, schema compile time, and which
  JSON Schema features each enforces. Writes bench/results/grammar-libraries.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import harness_path  # noqa: F401  (the repository root on sys.path, for serving_bench's harness import)
import torch
from grammar_libs import (
    ADAPTERS,
    LARGE_MODEL_VOCAB,
    Adapter,
    installed,
    synthetic_tokenizer,
    version,
)
from serving_bench import CACHE, PROMPTS, RESULTS, SERVICE, random_model

sys.path.insert(0, str(SERVICE))

# What an extraction job asks for: bounded strings, enums, numbers with ranges, a nested object, an array.
EXTRACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "email": {"type": "string", "maxLength": 32},
        "tags": {"type": "array", "items": {"enum": ["new", "vip", "churned", "trial"]}, "maxItems": 3},
        "address": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 16},
                "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
            },
            "required": ["city", "zip"],
            "additionalProperties": False,
        },
        "active": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["name", "age", "email", "tags", "address", "active", "score"],
    "additionalProperties": False,
}
WORKLOADS: dict[str, dict[str, Any]] = {"extraction": EXTRACTION_SCHEMA, "json_object": {"type": "object"}}

# (feature, schema of one field "v", a valid output, an invalid one): enforced = the first is a complete
# output of the grammar and the second is not.
FEATURES: list[tuple[str, dict[str, Any], str, str]] = [
    ("integer minimum/maximum", {"type": "integer", "minimum": 1, "maximum": 10}, "7", "11"),
    ("exclusiveMinimum", {"type": "integer", "exclusiveMinimum": 0}, "1", "0"),
    ("number minimum/maximum", {"type": "number", "minimum": 0, "maximum": 1}, "0.5", "1.5"),
    ("multipleOf", {"type": "integer", "multipleOf": 5}, "10", "7"),
    ("string maxLength", {"type": "string", "maxLength": 3}, '"abc"', '"abcd"'),
    ("string minLength", {"type": "string", "minLength": 2}, '"ab"', '"a"'),
    ("pattern", {"type": "string", "pattern": "^[0-9]{3}$"}, '"123"', '"12a"'),
    ("format: date", {"type": "string", "format": "date"}, '"2024-01-31"', '"yesterday"'),
    ("format: email", {"type": "string", "format": "email"}, '"a@b.co"', '"nope"'),
    ("enum", {"enum": ["red", "green"]}, '"red"', '"blue"'),
    ("const", {"const": "x"}, '"x"', '"y"'),
    ("type list (nullable)", {"type": ["string", "null"]}, "null", "1"),
    ("anyOf", {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}, "true", '"s"'),
    ("oneOf", {"oneOf": [{"type": "integer"}, {"type": "boolean"}]}, "true", '"s"'),
    ("allOf", {"allOf": [{"type": "integer"}, {"minimum": 5}]}, "7", "3"),
    (
        "array minItems/maxItems",
        {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
        "[1,2]",
        "[1,2,3]",
    ),
    ("uniqueItems", {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "[1,2]", "[1,1]"),
    (
        "prefixItems",
        {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
        '[1,"a"]',
        '["a",1]',
    ),
    (
        "required",
        {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
        '{"a":1}',
        "{}",
    ),
    (
        "additionalProperties: false",
        {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
        '{"a":1}',
        '{"a":1,"z":2}',
    ),
    (
        "additionalProperties: schema",
        {"type": "object", "additionalProperties": {"type": "integer"}},
        '{"k":1}',
        '{"k":"s"}',
    ),
    (
        "patternProperties",
        {"type": "object", "patternProperties": {"^x_": {"type": "integer"}}, "additionalProperties": False},
        '{"x_a":1}',
        '{"y":1}',
    ),
    (
        "minProperties",
        {"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 1},
        '{"a":1}',
        "{}",
    ),
    ("not", {"not": {"type": "string"}}, "1", '"s"'),
    (
        "if/then/else",
        {"if": {"type": "integer"}, "then": {"minimum": 5}, "else": {"type": "string"}},
        "7",
        "3",
    ),
    (
        "$ref recursion",
        {
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {"c": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                    "required": ["c"],
                    "additionalProperties": False,
                }
            },
            "$ref": "#/$defs/node",
        },
        '{"c":[{"c":[]}]}',
        '{"c":[{"d":1}]}',
    ),
]


def in_field(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as the one required property "v" of an object (with its $defs kept at the root)."""
    inner = dict(schema)
    defs = inner.pop("$defs", None)
    if defs is not None:
        inner = {"$ref": inner["$ref"]}  # the definitions move to the root, where the reference points
    root: dict[str, Any] = {
        "type": "object",
        "properties": {"v": inner},
        "required": ["v"],
        "additionalProperties": False,
    }
    if defs is not None:
        root["$defs"] = defs
    return root


def feature_table(lib: Adapter) -> dict[str, str]:
    """Each feature: enforced, not enforced (compiles, lets an invalid output through), or rejected."""
    table: dict[str, str] = {}
    for feature, schema, good, bad in FEATURES:
        try:
            compiled = lib.compile(in_field(schema))
        except Exception as exc:
            table[feature] = f"rejected: {str(exc).splitlines()[0][:100]}"
            continue
        try:
            ok, leak = lib.accepts(compiled, f'{{"v":{good}}}'), lib.accepts(compiled, f'{{"v":{bad}}}')
        except Exception as exc:
            table[feature] = f"error: {str(exc).splitlines()[0][:100]}"
            continue
        table[feature] = "enforced" if ok and not leak else "not enforced" if ok else "refuses valid output"
    return table


def compile_times(lib: Adapter, repeats: int = 3) -> dict[str, float]:
    """Milliseconds to compile each workload schema cold and compute its first mask (best of ``repeats``)."""
    out: dict[str, float] = {}
    bitmask = torch.zeros((1, (lib.vocab_size + 31) // 32), dtype=torch.int32)
    for name, schema in WORKLOADS.items():
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            m = lib.matcher(lib.compile(schema))
            lib.fill([m], bitmask)
            best = min(best, time.perf_counter() - start)
        out[name] = round(best * 1000, 2)
    return out


def mask_cost(
    lib: Adapter, schema: dict[str, Any], streams: int, steps: int, seed: int = 0
) -> dict[str, float]:
    """Microseconds per token of fill, apply and advance with ``streams`` concurrent matchers.

    Each step picks every row's token as the argmax of random logits under its mask (so the streams walk
    through strings, numbers and structure as real output does); a matcher that finishes starts over.
    """
    compiled = lib.compile(schema)
    matchers = [lib.matcher(compiled) for _ in range(streams)]
    vocab = lib.vocab_size
    bitmask = torch.zeros((streams, (vocab + 31) // 32), dtype=torch.int32)
    gen = torch.Generator().manual_seed(seed)
    fill = apply = advance = 0.0
    restarts = 0
    for step in range(steps + 5):  # the first five steps warm caches up and are not counted
        logits = torch.rand((streams, vocab), generator=gen)
        t0 = time.perf_counter()
        lib.fill(matchers, bitmask)
        t1 = time.perf_counter()
        lib.apply(logits, bitmask)
        t2 = time.perf_counter()
        tokens = logits.argmax(dim=-1).tolist()
        t3 = time.perf_counter()
        lib.advance(matchers, tokens)
        t4 = time.perf_counter()
        for i, m in enumerate(matchers):
            if lib.finished(m):
                matchers[i] = lib.reset(m)
                restarts += 1
        if step >= 5:
            fill, apply, advance = fill + t1 - t0, apply + t2 - t1, advance + t4 - t3
    per = 1e6 / (steps * streams)
    return {
        "fill_us": round(fill * per, 2),
        "apply_us": round(apply * per, 2),
        "advance_us": round(advance * per, 2),
        "total_us": round((fill + apply + advance) * per, 2),
        "step_ms": round((fill + apply + advance) * 1000 / steps, 3),
        "outputs_finished": restarts,
    }


def bench_libraries(args: argparse.Namespace) -> dict[str, Any]:
    """Every installed library on the demo tokenizer and the synthetic 151k one."""
    from app.demo_model.build import build, default_model_dir
    from transformers import AutoTokenizer

    demo_dir = build(default_model_dir())
    demo_tok = AutoTokenizer.from_pretrained(demo_dir)
    vocabs: dict[str, tuple[Any, int, int]] = {}
    if "demo" in args.vocabs.split(","):
        vocabs["demo"] = (demo_tok, len(demo_tok), int(demo_tok.eos_token_id))
    if "synthetic-151k" in args.vocabs.split(","):
        large = synthetic_tokenizer(CACHE / "synthetic-bpe-151k")
        vocabs["synthetic-151k"] = (large, LARGE_MODEL_VOCAB, int(large.eos_token_id))
    libs = [n for n in installed() if n in args.libraries.split(",")]
    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only",
        "date": time.strftime("%Y-%m-%d"),
        "streams": args.streams,
        "versions": {n: version(n) for n in libs},
        "vocabularies": {},
    }
    for vname, (tok, vocab_size, eos) in vocabs.items():
        steps = args.steps if vname == "demo" else max(args.steps // 4, 20)
        per_vocab: dict[str, Any] = {
            "model_vocab_size": vocab_size,
            "tokenizer_size": len(tok),
            "libraries": {},
        }
        for name in libs:
            entry: dict[str, Any] = {}
            for threads in (1, 2):
                start = time.perf_counter()
                lib = ADAPTERS[name](tok, vocab_size, eos, threads)
                setup = time.perf_counter() - start
                if threads == 1:
                    entry["tokenizer_setup_ms"] = round(setup * 1000, 1)
                    entry["apply_with"] = lib.apply_note
                    entry["compile_and_first_mask_ms"] = compile_times(lib)
                    if vname == "demo":
                        entry["features"] = feature_table(lib)
                costs = {w: mask_cost(lib, s, args.streams, steps) for w, s in WORKLOADS.items()}
                entry[f"mask_cost_{threads}_thread{'s' if threads > 1 else ''}"] = costs
                print(f"  [{vname}] {name} threads={threads} setup={setup * 1000:.0f} ms {costs}", flush=True)
            per_vocab["libraries"][name] = entry
        results["vocabularies"][vname] = per_vocab
    return results


# The serving part's json_schema requests: a short title, a few tags, then a summary too long to close
# within --max-tokens, so that constrained requests run exactly as long as the unconstrained ones.
SERVING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 24},
        "tags": {"type": "array", "items": {"enum": ["history", "science", "travel", "food"]}, "maxItems": 3},
        "summary": {"type": "string", "minLength": 2000},
    },
    "required": ["title", "tags", "summary"],
    "additionalProperties": False,
}
KINDS = ("plain", "json_schema")


async def load(engine: Any, grammar: Any, n: int, c: int, max_tokens: int) -> tuple[int, float]:
    """``n`` greedy requests at concurrency ``c``, each ``max_tokens`` long: (tokens, wall seconds)."""
    from app.engine import SamplingParams

    params = (
        SamplingParams(max_tokens, grammar=grammar)
        if grammar is not None
        else SamplingParams(max_tokens, ignore_eos=True)
    )
    sem = asyncio.Semaphore(c)

    async def one(i: int) -> int:
        async with sem:
            prompt = engine.encode_chat([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}])
            count = 0
            async for step in engine.generate(f"grammar-{i}-{time.perf_counter_ns()}", prompt, params):
                count += len(step.token_ids)
            return count

    start = time.perf_counter()
    counts = await asyncio.gather(*(one(i) for i in range(n)))
    return sum(counts), time.perf_counter() - start


def bench_serving_model(name: str, model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Plain and json_schema requests on one model, interleaved rounds at each level."""
    from app.engine import load_engine
    from app.serving.structured import StructuredOutputs
    from serving_bench import BATCH_REQUESTS, BATCH_TOKENS

    engine = load_engine(str(model_dir), max_batch_requests=BATCH_REQUESTS, max_batch_tokens=BATCH_TOKENS)
    engine.start()
    try:
        structured = StructuredOutputs(engine.tokenizer, engine.vocab_size, engine.eos_token_ids)
        fmt = {"type": "json_schema", "json_schema": {"name": "article", "schema": SERVING_SCHEMA}}
        grammars = {"plain": None, "json_schema": structured.response_format(fmt)}
        levels = [int(c) for c in args.levels.split(",")]
        for kind in KINDS:  # warm-up: the first batches of each kind are slow
            asyncio.run(load(engine, grammars[kind], 8, 8, 8))
        runs: dict[str, dict[str, list[dict[str, float]]]] = {k: {str(c): [] for c in levels} for k in KINDS}
        for r in range(args.rounds):
            for c in levels:
                for kind in KINDS:
                    before = engine.stats()
                    n = max(args.requests, args.waves * c)
                    tokens, wall = asyncio.run(load(engine, grammars[kind], n, c, args.max_tokens))
                    after = engine.stats()
                    masked = after.constrained_tokens - before.constrained_tokens
                    spent = after.mask_seconds - before.mask_seconds
                    run = {
                        "tokens": tokens,
                        "wall_s": round(wall, 3),
                        "tokens_per_s": round(tokens / wall, 1),
                    }
                    if kind != "plain":
                        run["mask_us_per_token"] = round(spent * 1e6 / max(masked, 1), 1)
                        run["mask_share_of_wall"] = round(spent / wall, 4)
                    runs[kind][str(c)].append(run)
                    print(f"  [{name}] round {r + 1} c={c:<3} {kind:<12} {run}", flush=True)
    finally:
        engine.stop(10)
    figures: dict[str, Any] = {}
    for c in levels:
        plain, constrained = runs["plain"][str(c)], runs["json_schema"][str(c)]
        ratios = [b["tokens_per_s"] / a["tokens_per_s"] for a, b in zip(plain, constrained, strict=True)]
        figures[str(c)] = {
            "plain_tokens_per_s": statistics.median(x["tokens_per_s"] for x in plain),
            "json_schema_tokens_per_s": statistics.median(x["tokens_per_s"] for x in constrained),
            "ratio": round(statistics.median(ratios), 3),
            "ratio_rounds": [round(x, 3) for x in ratios],
            "mask_us_per_token": statistics.median(x["mask_us_per_token"] for x in constrained),
            "mask_share_of_wall": statistics.median(x["mask_share_of_wall"] for x in constrained),
        }
    return {"vocab_size": engine.vocab_size, "levels": figures, "runs": runs}


def bench_serving(args: argparse.Namespace) -> dict[str, Any]:
    """The demo and the 30M random models, one after the other."""
    from app.demo_model.build import build, default_model_dir

    demo = build(default_model_dir())
    dirs = {"demo": demo, "random": random_model(demo, "random")}
    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only",
        "date": time.strftime("%Y-%m-%d"),
        "library": f"xgrammar {version('xgrammar')}",
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "schema": SERVING_SCHEMA,
        "models": {},
    }
    for name in args.models.split(","):
        results["models"][name] = bench_serving_model(name, dirs[name], args)
        print(json.dumps({c: v["ratio"] for c, v in results["models"][name]["levels"].items()}), flush=True)
    return results


def plot(results: dict[str, Any], path: Path) -> None:
    """Tokens/s of plain and json_schema requests against concurrency, and their ratio, per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"])
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(5 * (len(models) + 1), 4), squeeze=False)
    for i, name in enumerate(models):
        levels = results["models"][name]["levels"]
        xs = [int(c) for c in levels]
        ax = axes[0][i]
        for kind in KINDS:
            ax.plot(xs, [levels[str(c)][f"{kind}_tokens_per_s"] for c in xs], "o-", label=kind)
        ax.set(title=f"{name}: output tokens/s", xlabel="concurrent streams", xscale="log")
        ax.set_xticks(xs, [str(c) for c in xs])
        ax.grid(alpha=0.3)
        ax.legend()
        axes[0][-1].plot(xs, [levels[str(c)]["ratio"] for c in xs], "o-", label=name)
    ax = axes[0][-1]
    ax.axhline(0.9, color="grey", linestyle="--", label="goal 0.9")
    ax.set(title="json_schema / plain tokens/s", xlabel="concurrent streams", xscale="log", ylim=(0, 1.2))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.suptitle(f"Structured outputs ({results['library']}) on {results['machine']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="serving", choices=["serving", "libraries"])
    parser.add_argument("--libraries", default=",".join(ADAPTERS), help="comma-separated subset: %(default)s")
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument(
        "--steps", type=int, default=200, help="decoding steps per library (a quarter on 151k)"
    )
    parser.add_argument("--vocabs", default="demo,synthetic-151k", help="comma-separated subset: %(default)s")
    parser.add_argument("--models", default="demo,random", help="serving: comma-separated, of demo,random")
    parser.add_argument("--levels", default="1,8,32", help="serving: concurrency levels")
    parser.add_argument("--requests", type=int, default=8, help="serving: minimum requests per run")
    parser.add_argument("--waves", type=int, default=1, help="serving: at least this many times c requests")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3, help="serving: interleaved rounds; medians reported")
    parser.add_argument(
        "--out", type=Path, help="JSON path (default: bench/results/grammar[-libraries].json)"
    )
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.part == "libraries":
        out = args.out or RESULTS / "grammar-libraries.json"
        results = bench_libraries(args)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {out}")
        return 0
    out = args.out or RESULTS / "grammar.json"
    results = bench_serving(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
