"""The varlen attention on a device against transformers' own: the kernel alone, then whole engines.

Run: ``python bench/gpu/check_attention.py [DEVICE [MODEL]]`` (default cuda, the demo model). On CUDA in
half precision the varlen attention is torch's flash varlen kernel, which the CPU test suite cannot
reach; this is its check. It prints:

- the kernel's largest difference from the library's block-diagonal attention (computed in float32) on
  one step that mixes a fresh prompt, decodes and a turn on a cached prefix, next to the library's own
  half-precision difference from the same reference;
- for staggered multi-turn conversations run twice (the second time from the prefix cache), how many
  greedy tokens the varlen engine and the library engine agree on before they part. Half precision
  rounds differently in different kernels, so a random-weight model may part early; the demo model's
  replies have margins.

Exits 1 when the kernel's difference is more than twice the library's own.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

import harness_path  # noqa: E402, F401
from serving_bench import RANDOM_MODELS, SERVICE, random_model  # noqa: E402

from harness.engines import (  # noqa: E402
    block_diagonal_attention,
    multiturn_conversations,
    staggered_replies,
    step_bounds,
)

sys.path.insert(0, str(SERVICE))

# (new tokens, keys) of each request in one step
STEP = [(7, 7), (1, 40), (1, 300), (12, 45), (1, 1), (64, 1100)]


def kernel_check(device: str, dtype: object) -> tuple[float, float]:
    import torch
    from app.engine.attention import _flash_varlen, _per_request

    torch.manual_seed(0)
    heads, kv_heads, dim = 14, 2, 64
    cu_q, cu_k = step_bounds(STEP)
    q = torch.randn(1, heads, cu_q[-1], dim, device=device)
    k, v = torch.randn(2, 1, kv_heads, cu_k[-1], dim, device=device).unbind(0)
    reference = block_diagonal_attention(q, k, v, cu_q, cu_k)
    h = [x.to(dtype) for x in (q, k, v)]  # type: ignore[arg-type]
    library_half = block_diagonal_attention(*h, cu_q, cu_k).float()
    if device == "cuda":
        ours = _flash_varlen(
            h[0][0].transpose(0, 1),
            h[1][0].transpose(0, 1),
            h[2][0].transpose(0, 1),
            torch.tensor(cu_q, dtype=torch.int32, device=device),
            torch.tensor(cu_k, dtype=torch.int32, device=device),
            max(b - a for a, b in itertools.pairwise(cu_q)),
            max(b - a for a, b in itertools.pairwise(cu_k)),
            None,
        ).unsqueeze(0)
    else:
        ours = _per_request(*h, cu_q, cu_k, None, 0.0, True)
    return (ours.float() - reference).abs().max().item(), (library_half - reference).abs().max().item()


def agreement(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def main() -> int:
    import torch
    from app.engine import SamplingParams, load_engine

    device = sys.argv[1] if len(sys.argv) > 1 else "cuda"
    model_dir = sys.argv[2] if len(sys.argv) > 2 else str(SERVICE / ".cache" / "demo-model")
    if model_dir in RANDOM_MODELS:
        model_dir = str(random_model(SERVICE / ".cache" / "demo-model", model_dir))
    dtype = "bfloat16" if device == "cuda" else "auto"
    ours_diff, library_diff = kernel_check(device, torch.bfloat16 if device == "cuda" else torch.float32)
    print(f"kernel: varlen max |diff| {ours_diff:.4f}, library sdpa (same precision) {library_diff:.4f}")
    engines = {
        a: load_engine(model_dir, device=device, dtype=dtype, attention=a) for a in ("varlen", "library")
    }
    try:
        for e in engines.values():
            e.start()
        print("attention:", {a: e.attention for a, e in engines.items()})
        batch = multiturn_conversations(turns=6, system_repeat=30)
        params = SamplingParams(48)
        for attempt in ("fresh", "cached"):
            got = {a: asyncio.run(staggered_replies(e, batch, params, 0.02)) for a, e in engines.items()}
            same = [agreement(x, y) for x, y in zip(got["varlen"], got["library"], strict=True)]
            lengths = [len(x) for x in got["varlen"]]
            print(f"engines ({attempt} prefixes): greedy tokens agreed {same} of {lengths}")
    finally:
        for e in engines.values():
            e.stop(10)
    return 0 if ours_diff <= max(2 * library_diff, 1e-4) else 1


if __name__ == "__main__":
    raise SystemExit(main())
