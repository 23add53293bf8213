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
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

from serving_bench import RANDOM_MODELS, SERVICE, random_model  # noqa: E402

sys.path.insert(0, str(SERVICE))

# (new tokens, keys) of each request in one step
STEP = [(7, 7), (1, 40), (1, 300), (12, 45), (1, 1), (64, 1100)]


def kernel_check(device: str, dtype: object) -> tuple[float, float]:
    import torch
    from app.engine.attention import _flash_varlen, _per_request
    from torch.nn import functional as F
    from transformers.generation.continuous_batching.utils import build_attention_mask

    torch.manual_seed(0)
    heads, kv_heads, dim = 14, 2, 64
    cu_q, cu_k = [0], [0]
    for q_len, k_len in STEP:
        cu_q.append(cu_q[-1] + q_len)
        cu_k.append(cu_k[-1] + k_len)
    q = torch.randn(1, heads, cu_q[-1], dim, device=device)
    k, v = torch.randn(2, 1, kv_heads, cu_k[-1], dim, device=device).unbind(0)
    mask = torch.full((1, 1, cu_q[-1], cu_k[-1]), torch.finfo(torch.float32).min, device=device)
    build_attention_mask(mask, cu_q, cu_k)
    rep = heads // kv_heads

    def library(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        m = mask.to(q.dtype)
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m).transpose(1, 2).float()

    reference = library(q, k, v)
    h = [x.to(dtype) for x in (q, k, v)]  # type: ignore[arg-type]
    library_half = library(*h)
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


async def replies(engine: object, conversations: list[list[dict[str, str]]]) -> list[list[int]]:
    from app.engine import SamplingParams

    async def one(i: int, messages: list[dict[str, str]]) -> list[int]:
        await asyncio.sleep(0.02 * i)
        out: list[int] = []
        ids = engine.encode_chat(messages)  # type: ignore[attr-defined]
        async for step in engine.generate(f"check-{uuid.uuid4().hex}", ids, SamplingParams(48)):  # type: ignore[attr-defined]
            out += step.token_ids
        return out

    return list(await asyncio.gather(*(one(i, m) for i, m in enumerate(conversations))))


def conversations() -> list[list[dict[str, str]]]:
    system = f"[{uuid.uuid4().hex}] 你是一个乐于助人的助手,回答要简短、礼貌。" * 30
    asks = ["你好", "介绍一下长城", "What is a large language model?", "讲个笑话", "你是谁", "谢谢"]
    out = []
    for n in range(1, len(asks) + 1):
        messages = [{"role": "system", "content": system}]
        for ask in asks[:n]:
            messages += [{"role": "user", "content": ask}, {"role": "assistant", "content": "好的。"}]
        out.append(messages[:-1])
    return out


def agreement(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def main() -> int:
    import torch
    from app.engine import load_engine

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
        batch = conversations()
        for attempt in ("fresh", "cached"):
            got = {a: asyncio.run(replies(e, batch)) for a, e in engines.items()}
            same = [agreement(x, y) for x, y in zip(got["varlen"], got["library"], strict=True)]
            lengths = [len(x) for x in got["varlen"]]
            print(f"engines ({attempt} prefixes): greedy tokens agreed {same} of {lengths}")
    finally:
        for e in engines.values():
            e.stop(10)
    return 0 if ours_diff <= max(2 * library_diff, 1e-4) else 1


if __name__ == "__main__":
    raise SystemExit(main())
