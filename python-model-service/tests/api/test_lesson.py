"""The lesson's own API: POST /chat/new/message/."""

from __future__ import annotations

import itertools

import httpx

from harness import sse

HELLO = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"


def test_non_streaming_returns_response_and_extended_history(client: httpx.Client) -> None:
    history = [{"role": "user", "content": "介绍一下长城"}, {"role": "assistant", "content": "长城很长。"}]
    r = client.post("/chat/new/message/", json={"prompt": "你好", "history": history, "temperature": 0})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"response", "history", "status", "time"}
    assert body["status"] == 200
    assert body["response"]
    assert body["history"][:2] == history
    assert body["history"][2:] == [
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": body["response"]},
    ]


def test_delta_stream_concatenates_to_the_reply(client: httpx.Client) -> None:
    whole = client.post("/chat/new/message/", json={"prompt": "你好", "temperature": 0}).json()["response"]
    assert whole == HELLO
    with client.stream(
        "POST", "/chat/new/message/", json={"prompt": "你好", "temperature": 0, "stream": True}
    ) as r:
        events = sse.payloads(sse.events(r))
    assert events[-1] == "[DONE]"
    data = events[:-1]
    assert len({e["message_id"] for e in data}) == 1
    assert "".join(e["text"] for e in data) == whole
    assert data[-1]["finish_reason"] == "stop"


def test_cumulative_stream_grows_to_the_reply(client: httpx.Client) -> None:
    body = {
        "prompt": "介绍一下长城",
        "temperature": 0,
        "stream": True,
        "mode": "cumulative",
        "max_tokens": 60,
    }
    with client.stream("POST", "/chat/new/message/", json=body) as r:
        events = sse.payloads(sse.events(r))
    texts = [e["text"] for e in events[:-1]]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    whole = client.post("/chat/new/message/", json={**body, "stream": False}).json()["response"]
    assert texts[-1] == whole


def test_lesson_validation_uses_the_envelope(client: httpx.Client) -> None:
    for body, param in (
        ({"prompt": ""}, "prompt"),
        ({"prompt": "hi", "history": [{"role": "wizard", "content": "x"}]}, "history.0.role"),
        ({"prompt": "hi", "mode": "sideways"}, "mode"),
        ({"prompt": "hi", "top_p": 0}, "top_p"),
        ({"prompt": "hi", "seed": 2**64}, "seed"),
    ):
        r = client.post("/chat/new/message/", json=body)
        assert r.status_code == 400
        assert r.json()["error"]["param"] == param
