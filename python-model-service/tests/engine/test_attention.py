"""The varlen attention: each request scores only its own keys, with the same result as the library's
block-diagonal attention, and it is used only where the model allows it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from app.engine import Engine, SamplingParams, load_engine
from app.engine.attention import (
    VARLEN,
    _packed,
    _packed_is_cheaper,
    _per_request,
    choose_attention,
    supports_varlen,
)
from app.engine.continuous import ContinuousBatchingEngine
from harness.engines import block_diagonal_attention, multiturn_conversations, staggered_replies, step_bounds
from tests.conftest import LiveServer, start_server

# (new tokens, keys) of each request in one step: a fresh prompt, decodes, a turn on a cached prefix
STEP = [(7, 7), (1, 40), (1, 3), (12, 45), (1, 1)]


def library_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_q: list[int], cu_k: list[int]
) -> torch.Tensor:
    """transformers' own way: one attention over the whole pack, with its block-diagonal mask."""
    result: torch.Tensor = block_diagonal_attention(q, k, v, cu_q, cu_k)
    return result


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2), (8, 1)])
@pytest.mark.parametrize("path", [_per_request, _packed])
def test_varlen_attention_equals_the_librarys_block_diagonal_attention(
    path: Callable[..., torch.Tensor], heads: int, kv_heads: int
) -> None:
    torch.manual_seed(0)
    cu_q, cu_k = step_bounds(STEP)
    q = torch.randn(1, heads, cu_q[-1], 32)
    k, v = torch.randn(2, 1, kv_heads, cu_k[-1], 32).unbind(0)
    ours = path(q, k, v, cu_q, cu_k, None, 0.0, heads != kv_heads)
    assert ours.shape == (1, cu_q[-1], heads, 32)
    torch.testing.assert_close(ours, library_reference(q, k, v, cu_q, cu_k), rtol=1e-5, atol=1e-5)


def test_a_step_runs_packed_when_its_waste_costs_less_than_the_calls_it_saves() -> None:
    width = 4 * 64  # the demo model's heads x head size

    def decoding(streams: int, keys: int) -> tuple[list[int], list[int]]:
        return list(range(streams + 1)), [i * keys for i in range(streams + 1)]

    assert _packed_is_cheaper(*decoding(32, 100), width)  # many short streams: one call
    assert not _packed_is_cheaper(*decoding(32, 100), 640)  # unless each score costs more (wider)
    assert not _packed_is_cheaper(*decoding(16, 1300), width)  # long ones: each its own keys
    turns = [0, 25, 50, 75, 100], [0, 1325, 2650, 3975, 5300]  # 4 turns on long conversations
    assert not _packed_is_cheaper(*turns, width)
    assert not _packed_is_cheaper([0, 7], [0, 7], width)  # one request: its own call, causal


def test_a_padding_slot_is_skipped() -> None:
    torch.manual_seed(1)
    q = torch.randn(1, 2, 4, 16)
    k, v = torch.randn(2, 1, 2, 9, 16).unbind(0)
    out = _per_request(q, k, v, [0, 3, 3, 3], [0, 9, 9, 9], None, 0.0, False)
    torch.testing.assert_close(out[:, :3], library_reference(q[:, :, :3], k, v, [0, 3], [0, 9]))
    assert not out[:, 3].any()


def tiny_qwen(**overrides: object) -> Qwen2ForCausalLM:
    config = Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        **overrides,
    )
    return Qwen2ForCausalLM(config).eval()


def test_models_with_sliding_windows_keep_the_librarys_attention(caplog: pytest.LogCaptureFixture) -> None:
    windowed = tiny_qwen(use_sliding_window=True, sliding_window=16, max_window_layers=0)
    assert not supports_varlen(windowed)
    assert choose_attention(windowed, "auto") == "sdpa"
    assert choose_attention(windowed, "varlen") == "sdpa"
    plain = tiny_qwen()
    assert supports_varlen(plain)
    assert choose_attention(plain, "library") == "sdpa"
    assert choose_attention(plain, "varlen") == VARLEN
    assert plain.config._attn_implementation == VARLEN


def test_an_explicit_varlen_request_that_cannot_be_met_is_logged(
    demo_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    windowed = tiny_qwen(use_sliding_window=True, sliding_window=16, max_window_layers=0)
    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    with caplog.at_level(logging.WARNING, logger="app.engine"):
        eng = ContinuousBatchingEngine(windowed, tokenizer, "tiny", 256, attention="varlen")
    assert eng.attention == "sdpa"
    assert "event=attention_fallback requested=varlen using=sdpa" in caplog.text


@pytest.fixture(scope="module")
def library_engine(demo_model_dir: Path) -> Iterator[Engine]:
    """The demo model on transformers' own attention (MODEL_ATTENTION=library)."""
    eng = load_engine(str(demo_model_dir), model_id="demo-model", engine="continuous", attention="library")
    eng.start()
    yield eng
    eng.stop(10)


def conversations() -> list[list[dict[str, str]]]:
    """Conversations that share a long system prompt, at different turns, so that one step mixes
    prefills on a cached prefix, fresh prefills and decodes."""
    return multiturn_conversations(turns=4, system_repeat=12)


async def replies(engine: Engine, batch: list[list[dict[str, str]]]) -> list[list[int]]:
    return await staggered_replies(engine, batch, SamplingParams(24, ignore_eos=True), stagger_s=0.01)


def test_varlen_and_library_attention_give_the_same_greedy_replies(
    engine: Engine, library_engine: Engine
) -> None:
    assert (engine.attention, library_engine.attention) == (VARLEN, "sdpa")
    batch = conversations()
    # twice: the second time, every prompt but its last turn comes from the prefix cache
    for _ in range(2):
        ours, theirs = asyncio.run(replies(engine, batch)), asyncio.run(replies(library_engine, batch))
        assert ours == theirs
        assert all(len(r) == 24 for r in ours)


@pytest.fixture(scope="module")
def library_server(library_engine: Engine) -> Iterator[LiveServer]:
    live = start_server(library_engine)
    yield live
    live.stop()


def engine_info(client: httpx.Client) -> str:
    return next(
        line for line in client.get("/metrics").text.splitlines() if line.startswith("model_engine_info")
    )


def test_metrics_name_the_attention(client: httpx.Client, library_server: LiveServer) -> None:
    assert engine_info(client) == 'model_engine_info{attention="varlen",engine="continuous"} 1.0'
    with library_server.client() as other:
        assert engine_info(other) == 'model_engine_info{attention="sdpa",engine="continuous"} 1.0'
