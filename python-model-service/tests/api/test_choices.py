"""``n`` choices per request: each one as its own sampled answer, streamed interleaved and whole,
with usage counting every choice, and a client that leaves freeing every choice's engine slot."""

from __future__ import annotations

import time

import httpx

from app.engine import Engine
from harness import sse
from tests.api.test_chat_completions import GREAT_WALL, HELLO, USER_HELLO, chat
from tests.conftest import LiveServer


def stream_choices(client: httpx.Client, **body: object) -> tuple[dict[int, str], dict[int, list[str]], dict]:
    body = {"model": "demo-model", "stream": True, "stream_options": {"include_usage": True}, **body}
    texts: dict[int, str] = {}
    finishes: dict[int, list[str]] = {}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200, r.read()
        chunks = [c for c in sse.payloads(sse.events(r)) if isinstance(c, dict)]
    for chunk in chunks[:-1]:
        (choice,) = chunk["choices"]
        i = choice["index"]
        texts[i] = texts.get(i, "") + (choice["delta"].get("content") or "")
        if choice["finish_reason"]:
            finishes.setdefault(i, []).append(choice["finish_reason"])
    assert chunks[-1]["choices"] == []
    return texts, finishes, chunks[-1]["usage"]


def test_greedy_choices_are_all_the_greedy_answer(client: httpx.Client) -> None:
    r = chat(client, messages=USER_HELLO, temperature=0, n=3)
    body = r.json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert [c["message"]["content"] for c in body["choices"]] == [HELLO] * 3
    one = chat(client, messages=USER_HELLO, temperature=0).json()["usage"]
    assert body["usage"]["prompt_tokens"] == one["prompt_tokens"]
    assert body["usage"]["completion_tokens"] == 3 * one["completion_tokens"]


def test_seeded_choices_are_the_answers_of_consecutive_seeds(client: httpx.Client) -> None:
    sampling = {"messages": GREAT_WALL, "temperature": 2.0, "max_tokens": 24, "seed": 41}
    body = chat(client, n=3, **sampling).json()
    whole = [c["message"]["content"] for c in body["choices"]]
    alone = [
        chat(client, **{**sampling, "seed": 41 + i}).json()["choices"][0]["message"]["content"]
        for i in range(3)
    ]
    assert whole == alone
    assert len(set(whole)) > 1, "different seeds give different answers"
    texts, finishes, usage = stream_choices(client, n=3, **sampling)
    assert [texts[i] for i in range(3)] == whole
    assert all(len(finishes[i]) == 1 for i in range(3))
    assert usage["completion_tokens"] == body["usage"]["completion_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_leaving_a_stream_of_several_choices_frees_every_slot(
    engine: Engine, client: httpx.Client, server: LiveServer
) -> None:
    service = server.app.state.service  # type: ignore[attr-defined]
    body = {"messages": USER_HELLO, "max_tokens": 3000, "ignore_eos": True, "n": 4, "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        seen: set[int] = set()
        for event in sse.events(r):
            chunk = event.json()
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                seen.add(chunk["choices"][0]["index"])
            if len(seen) == 4:
                break  # every choice is generating: leave
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (service.running or engine.stats().tracked):
        time.sleep(0.05)
    assert (service.running, service.queued, engine.stats().tracked) == (0, 0, 0)
