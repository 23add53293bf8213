"""Variable-length attention for continuous batching: each request attends only to its own keys.

transformers' continuous batching packs a step's requests into one sequence. With its ``sdpa`` path it
then runs one attention over the whole pack, with a block-diagonal mask that it builds every step: each
query is scored against every key of every request in the step, and all but its own are thrown away.
The waste grows with the square of the batch: 4 turns of 25 new tokens on 1,300-token conversations
score 4x the keys they need, 32 decoding streams 32x.

``varlen`` scores each request's queries against that request's keys only, with the causal diagonal
aligned to the end of its keys (its new tokens are the last of them), as flash attention's
variable-length path does; transformers then builds no mask at all.

- On CUDA in half precision, one call of torch's own ``varlen_attn`` (the flash kernel that ships with
  torch) covers the whole step.
- Elsewhere (CPU, or float32), ``scaled_dot_product_attention`` runs once per request, unless the
  step is small enough that one call over the whole step, with a block-diagonal mask built once per
  step (not once per layer), costs less than the calls it saves: 32 decoding streams of 100 tokens
  run faster packed, 16 of 1,300 tokens or 4 turns on 1,300-token conversations per request.

It is registered with transformers' ``AttentionInterface`` and chosen after the continuous batching
manager has checked the model, so the library itself is not changed. Models with sliding windows,
attention sinks or soft caps keep the library's attention.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Literal

import torch
from torch.nn import functional as F
from transformers import AttentionInterface

VARLEN = "varlen"
AttentionChoice = Literal["auto", "varlen", "library"]

varlen_attn: Any
try:  # torch >= 2.9; CUDA only
    from torch.nn.attention.varlen import varlen_attn
except ImportError:  # pragma: no cover - the pinned torch has it
    varlen_attn = None
_VARLEN_PARAMS = frozenset(inspect.signature(varlen_attn).parameters if varlen_attn is not None else ())


def varlen_attention(
    module: torch.nn.Module,
    query: torch.Tensor,  # [1, heads, q_total, head_dim]
    key: torch.Tensor,  # [1, kv_heads, q_total, head_dim]: this step's new keys
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    cache = kwargs.pop("cache", None)
    if cache is None:
        raise ValueError(f"the {VARLEN} attention serves continuous batching only: it needs the paged cache")
    # Writes this step's keys and values, then reads back each request's whole sequence (cached + new),
    # one request after the other; kwargs then hold this layer's cumulative key lengths.
    key, value = cache.update(key_states=key, value_states=value, layer_idx=module.layer_idx, kwargs=kwargs)
    cu_q, cu_k = kwargs["cu_seq_lens_q"], kwargs["cu_seq_lens_k"]
    if query.is_cuda and query.dtype in (torch.float16, torch.bfloat16) and varlen_attn is not None:
        out = _flash_varlen(
            query[0].transpose(0, 1),  # [q_total, heads, head_dim]
            key[0].transpose(0, 1),
            value[0].transpose(0, 1),
            cu_q.to(torch.int32),
            cu_k.to(torch.int32),
            int(kwargs["max_length_q"]),
            int(kwargs["max_length_k"]),
            scaling,
        )
        return out.unsqueeze(0), None
    gqa = query.shape[1] != key.shape[1]
    q_bounds, k_bounds = cu_q.tolist(), cu_k.tolist()
    packed = _packed_is_cheaper(q_bounds, k_bounds, query.shape[1] * query.shape[-1])
    return _sdpa_varlen(query, key, value, q_bounds, k_bounds, scaling, dropout, gqa, packed), None


# A kernel call costs the CPU about as much as this many multiply-adds of attention. Measured in the
# engine: 32 short decoding streams run faster packed on the demo model (256 wide: 0.67x per request)
# and per request on the 30M random one (640 wide: 595 against 531 tokens/s), which puts it between
# 0.8 and 2 million; 16 streams of 1,300 tokens, or 4 turns on 1,300-token conversations, are far
# on the per-request side.
CALL_COST_MACS = 1_000_000


def _packed_is_cheaper(cu_q: list[int], cu_k: list[int], width: int) -> bool:
    """Whether one call over the whole step (scoring every query against every request's keys) costs
    less than one call per request: its wasted scores against the calls it saves."""
    n = len(cu_q) - 1
    if n <= 1:
        return False  # the same one call, and a whole prompt can use the kernel's own causal path
    needed = sum((cu_q[i + 1] - cu_q[i]) * (cu_k[i + 1] - cu_k[i]) for i in range(n))
    wasted = cu_q[-1] * cu_k[-1] - needed
    return wasted * width <= (n - 1) * CALL_COST_MACS


@functools.lru_cache(maxsize=4)  # every layer of a step has the same; tests run several engines
def _step_mask(cu_q: tuple[int, ...], cu_k: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """[q_total, k_total], True where a query may see a key: its own request's keys, up to itself."""
    mask = torch.zeros(cu_q[-1], cu_k[-1], dtype=torch.bool, device=device)
    for i in range(len(cu_q) - 1):
        q_len, k_len = cu_q[i + 1] - cu_q[i], cu_k[i + 1] - cu_k[i]
        mask[cu_q[i] : cu_q[i + 1], cu_k[i] : cu_k[i + 1]] = _tail_causal(q_len, k_len, device)
    return mask


def _tail_causal(q_len: int, k_len: int, device: torch.device) -> torch.Tensor:
    """[q_len, k_len]: the new tokens are the last q_len of the request's keys; each sees up to itself."""
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(k_len - q_len)


def _flash_varlen(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    cu_q: torch.Tensor,
    cu_k: torch.Tensor,
    max_q: int,
    max_k: int,
    scaling: float | None,
) -> torch.Tensor:
    """torch's varlen flash attention, causal and aligned to the end of each request's keys, whatever its
    signature: older releases take ``is_causal``, newer ones a ``window_size``, and ``scale`` and
    ``enable_gqa`` are not in every release (2.11 has no ``enable_gqa``)."""
    kernel: Any = varlen_attn
    causal = {"window_size": (-1, 0)} if "window_size" in _VARLEN_PARAMS else {"is_causal": True}
    options: dict[str, Any] = dict(causal)
    groups = query.shape[1] // key.shape[1]
    if groups > 1 and "enable_gqa" in _VARLEN_PARAMS:
        options["enable_gqa"] = True
    elif groups > 1:
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    if scaling is not None and "scale" in _VARLEN_PARAMS:
        options["scale"] = scaling
    elif scaling is not None:  # without ``scale``, it scales by 1/sqrt(head_dim)
        query = query * (scaling * query.shape[-1] ** 0.5)
    out: torch.Tensor = kernel(query, key, value, cu_q, cu_k, max_q, max_k, **options)
    return out


def _sdpa_varlen(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    cu_q: list[int],
    cu_k: list[int],
    scaling: float | None,
    dropout: float,
    gqa: bool,
    packed: bool,
) -> torch.Tensor:
    """``scaled_dot_product_attention`` once per request, or ``packed``: once over the whole step with
    the block-diagonal mask; [1, q_total, heads, head_dim]."""
    calls = (
        [(slice(0, cu_q[-1]), slice(0, cu_k[-1]), _step_mask(tuple(cu_q), tuple(cu_k), query.device), False)]
        if packed
        else _request_calls(cu_q, cu_k, query.device)
    )
    out = query.new_zeros(query.shape)
    for queries, keys, mask, causal in calls:
        out[:, :, queries] = F.scaled_dot_product_attention(
            query[:, :, queries],
            key[:, :, keys],
            value[:, :, keys],
            attn_mask=mask,
            dropout_p=dropout,
            is_causal=causal,
            scale=scaling,
            enable_gqa=gqa,
        )
    return out.transpose(1, 2).contiguous()


def _request_calls(
    cu_q: list[int], cu_k: list[int], device: torch.device
) -> list[tuple[slice, slice, torch.Tensor | None, bool]]:
    """(queries, keys, mask, causal) of one call per request."""
    calls = []
    for i in range(len(cu_q) - 1):
        q_len, k_len = cu_q[i + 1] - cu_q[i], cu_k[i + 1] - cu_k[i]
        if q_len == 0:
            continue  # a padding slot
        # one new token sees every key; a whole prompt takes the kernel's own causal path
        mask = _tail_causal(q_len, k_len, device) if 1 < q_len < k_len else None
        calls.append((slice(cu_q[i], cu_q[i + 1]), slice(cu_k[i], cu_k[i + 1]), mask, q_len == k_len > 1))
    return calls


_per_request = functools.partial(_sdpa_varlen, packed=False)
_packed = functools.partial(_sdpa_varlen, packed=True)


def supports_varlen(model: Any) -> bool:
    """Causal full attention only: sliding windows, attention sinks and soft caps need the library's masks."""
    config = model.config.get_text_config()
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    if any(t != "full_attention" for t in layer_types):
        return False
    if getattr(config, "sliding_window", None) or getattr(config, "attn_logit_softcapping", None):
        return False
    return not any(hasattr(m, "sinks") for m in model.modules())


def choose_attention(model: Any, choice: AttentionChoice) -> str:
    """Switch ``model`` to the varlen attention where ``choice`` asks for it and the model allows it;
    returns the attention the engine runs with. ``auto`` keeps a flash attention transformers picked."""
    current = str(model.config._attn_implementation)
    if choice == "library" or (choice == "auto" and "flash" in current):
        return current
    if not supports_varlen(model) or not _kernel_runs(model):
        return current
    model.set_attn_implementation(VARLEN)
    return VARLEN


def _kernel_runs(model: Any) -> bool:
    """On CUDA in half precision, whether torch's varlen kernel takes this model's head shape (it has limits
    on the GPU generation and head size); elsewhere the per-request path always runs."""
    if model.device.type != "cuda" or model.dtype not in (torch.float16, torch.bfloat16):
        return True
    if varlen_attn is None:
        return False
    config = model.config.get_text_config()
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    # laid out as the model hands them over: [1, heads, tokens, head_dim], seen as [tokens, heads, head_dim]
    q = torch.zeros(1, heads, 3, head_dim, device=model.device, dtype=model.dtype)[0].transpose(0, 1)
    kv = torch.zeros(1, kv_heads, 5, head_dim, device=model.device, dtype=model.dtype)[0].transpose(0, 1)
    cu_q = torch.tensor([0, 1, 3], dtype=torch.int32, device=model.device)
    cu_k = torch.tensor([0, 2, 5], dtype=torch.int32, device=model.device)
    try:
        with torch.no_grad():
            _flash_varlen(q, kv, kv, cu_q, cu_k, 2, 3, None)
    except Exception:
        return False
    return True


AttentionInterface.register(VARLEN, varlen_attention)
