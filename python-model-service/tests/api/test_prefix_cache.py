"""Prefix reuse across the turns of a conversation, seen on /metrics, and the same replies without it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.engine import Engine, load_engine
from app.engine.continuous import PAGE_SIZE
from tests.conftest import LiveServer, start_server

SENTENCES = [
    "你是一个乐于助人的助手,回答要简短、礼貌。",
    "You are a helpful assistant: answer briefly and politely.",
    "大语言模型是一种基于Transformer结构的神经网络。",
]


def system_prompt() -> str:
    """A system prompt of a few hundred tokens that no earlier request has sent (fresh cache)."""
    return f"[{uuid.uuid4().hex}] " + " ".join(SENTENCES * 8)


@pytest.fixture(scope="module")
def no_reuse_engine(demo_model_dir: Path) -> Iterator[Engine]:
    """The demo model with prefix reuse turned off (MODEL_PREFIX_CACHE=false)."""
    eng = load_engine(str(demo_model_dir), model_id="demo-model", engine="continuous", prefix_cache=False)
    eng.start()
    yield eng
    eng.stop(10)


@pytest.fixture(scope="module")
def reuse_server(engine: Engine) -> Iterator[LiveServer]:
    """A server of its own (its own metrics) over the shared engine, which reuses prefixes."""
    live = start_server(engine)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def no_reuse_server(no_reuse_engine: Engine) -> Iterator[LiveServer]:
    live = start_server(no_reuse_engine)
    yield live
    live.stop()


def prefix_metrics(client: httpx.Client) -> dict[str, float]:
    """The ``model_prefix_cache_*`` samples of /metrics."""
    values: dict[str, float] = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("model_prefix_cache_"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def chat(client: httpx.Client, messages: list[dict[str, str]]) -> tuple[str, int]:
    """A greedy reply and its prompt token count."""
    r = client.post(
        "/v1/chat/completions",
        json={"model": "demo-model", "messages": messages, "max_tokens": 24, "temperature": 0},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return body["choices"][0]["message"]["content"], body["usage"]["prompt_tokens"]


def two_turns(client: httpx.Client, system: str) -> list[tuple[str, int, dict[str, float]]]:
    """Two turns of one conversation; each turn's reply, prompt length and prefix counters after it."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "介绍一下长城"}]
    turns = []
    for follow_up in ("What is artificial intelligence?", None):
        reply, prompt_tokens = chat(client, messages)
        turns.append((reply, prompt_tokens, prefix_metrics(client)))
        if follow_up:
            messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": follow_up}]
    return turns


def test_the_second_turn_computes_only_what_it_added(reuse_server: LiveServer) -> None:
    with reuse_server.client() as client:
        before = prefix_metrics(client)
        (_, first_len, after_first), (_, second_len, after_second) = two_turns(client, system_prompt())
    computed = "model_prefix_cache_computed_tokens_total"
    reused = "model_prefix_cache_reused_tokens_total"
    assert before["model_prefix_cache_enabled"] == 1
    # a system prompt never seen before: the first turn computes all of it
    assert after_first[computed] - before[computed] == first_len
    assert after_first[reused] == before[reused]
    # the second turn: the tokens it added to the conversation (the reply, the new question, the
    # template's markers), plus at most the part of a page the first turn left unfilled
    added = second_len - first_len
    second_computed = after_second[computed] - after_first[computed]
    assert second_computed <= added + PAGE_SIZE - 1
    assert after_second[reused] - after_first[reused] == second_len - second_computed
    assert 0 < after_second["model_prefix_cache_hit_ratio"] <= 1


def test_replies_are_the_same_with_reuse_on_and_off(
    reuse_server: LiveServer, no_reuse_server: LiveServer
) -> None:
    system = system_prompt()
    with reuse_server.client() as on, no_reuse_server.client() as off:
        with_reuse = two_turns(on, system)
        without = two_turns(off, system)
    assert [reply for reply, _, _ in with_reuse] == [reply for reply, _, _ in without]
    assert all(reply for reply, _, _ in with_reuse)
    metrics_off = without[-1][2]
    assert metrics_off["model_prefix_cache_enabled"] == 0
    assert metrics_off["model_prefix_cache_reused_tokens_total"] == 0
    assert metrics_off["model_prefix_cache_computed_tokens_total"] == sum(n for _, n, _ in without)
