"""Driving a model-service engine directly, and transformers' own attention as a reference: shared by
the engine tests (``python-model-service/tests/engine``) and the GPU checks (``bench/gpu``).

torch and transformers are imported where used, so the rest of the harness does not need them.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

ASKS = ["你好", "介绍一下长城", "What is a large language model?", "讲个笑话", "你是谁", "谢谢"]


def step_bounds(step: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """The cumulative query and key bounds of a step given as (new tokens, keys) per request."""
    cu_q, cu_k = [0], [0]
    for q_len, k_len in step:
        cu_q.append(cu_q[-1] + q_len)
        cu_k.append(cu_k[-1] + k_len)
    return cu_q, cu_k


def block_diagonal_attention(q: Any, k: Any, v: Any, cu_q: list[int], cu_k: list[int]) -> Any:
    """transformers' own way for a packed step ([1, heads, tokens, head_dim] in): one attention over the
    whole pack, with the block-diagonal mask its continuous batching builds; [1, q_total, heads, head_dim]."""
    import torch
    from torch.nn import functional as F
    from transformers.generation.continuous_batching.utils import build_attention_mask

    # filled as the library resets it before each step
    mask = torch.full((1, 1, cu_q[-1], cu_k[-1]), torch.finfo(torch.float32).min, device=q.device)
    build_attention_mask(mask, cu_q, cu_k)
    groups = q.shape[1] // k.shape[1]
    k, v = (x.repeat_interleave(groups, dim=1) for x in (k, v))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype)).transpose(1, 2)


def multiturn_conversations(turns: int, system_repeat: int) -> list[list[dict[str, str]]]:
    """Conversations that share a long system prompt (new to any cache), at turns 1 to ``turns``: sent
    together, one engine step mixes prefills on a cached prefix, fresh prefills and decodes."""
    system = f"[{uuid.uuid4().hex}] 你是一个乐于助人的助手,回答要简短、礼貌。" * system_repeat
    out = []
    for n in range(1, turns + 1):
        messages = [{"role": "system", "content": system}]
        for ask in ASKS[:n]:
            messages += [{"role": "user", "content": ask}, {"role": "assistant", "content": "好的。"}]
        out.append(messages[:-1])
    return out


async def staggered_replies(
    engine: Any, conversations: list[list[dict[str, str]]], params: Any, stagger_s: float
) -> list[list[int]]:
    """Each conversation's reply tokens from ``engine`` (an ``app.engine.Engine``), the i-th sent
    ``i * stagger_s`` seconds after the first, so later prompts join while earlier ones decode."""

    async def one(i: int, messages: list[dict[str, str]]) -> list[int]:
        await asyncio.sleep(stagger_s * i)
        tokens: list[int] = []
        async for step in engine.generate(
            f"staggered-{uuid.uuid4().hex}", engine.encode_chat(messages), params
        ):
            tokens += step.token_ids
        return tokens

    return list(await asyncio.gather(*(one(i, m) for i, m in enumerate(conversations))))
