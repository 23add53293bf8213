"""Business apps and server-side callers get the model's exact output through the gateway."""

from __future__ import annotations

import json
import time

import httpx
import openai

from harness import sse
from harness.stack import Stack

HELLO_REPLY = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"
MODEL = "demo-model"


def _openai_stream_text(client: httpx.Client, body: dict) -> tuple[str, list[str]]:
    """The content of a chat-completions stream and the raw data lines, [DONE] included."""
    text, datas = [], []
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        for ev in sse.events(resp):
            datas.append(ev.data)
            if ev.data == "[DONE]":
                continue
            for choice in json.loads(ev.data).get("choices", []):
                text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text), datas


def test_chinese_stream_through_gateway_equals_direct_stream(stack: Stack) -> None:
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "你是一个乐于助人的人工智能助手。"},
            {"role": "user", "content": "介绍一下长城"},
        ],
        "max_tokens": 96,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 42,
    }
    with stack.model_client() as direct, stack.gateway_client() as gateway:
        direct_text, _ = _openai_stream_text(direct, body)
        relayed_text, relayed_events = _openai_stream_text(gateway, body)
        whole = gateway.post("/v1/chat/completions", json=body).json()
    assert direct_text, "the model service streamed nothing"
    assert "长城" in direct_text
    assert "\ufffd" not in relayed_text, "a UTF-8 character was cut in half"
    assert relayed_text == direct_text
    assert relayed_events[-1] == "[DONE]" and relayed_events.count("[DONE]") == 1
    assert whole["choices"][0]["message"]["content"] == direct_text


def test_official_openai_client_through_gateway(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{stack.gateway_url}/v1", api_key=stack.admin_key)
    messages = [{"role": "user", "content": "你好"}]
    reply = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=64)
    assert reply.choices[0].message.content == HELLO_REPLY
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0

    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=messages,
            temperature=0,
            max_tokens=64,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == HELLO_REPLY
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == reply.usage.completion_tokens
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_logprobs_through_gateway_equal_the_model_services_streamed_and_whole(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{stack.gateway_url}/v1", api_key=stack.admin_key)
    asked = {
        "model": MODEL,
        # A system message of its own, so that the gateway adds none and both tiers see one prompt.
        "messages": [
            {"role": "system", "content": "你是一个乐于助人的人工智能助手。"},
            {"role": "user", "content": "你好"},
        ],
        "temperature": 0,
        "max_tokens": 64,
        "logprobs": True,
        "top_logprobs": 3,
    }
    whole = client.chat.completions.create(**asked)  # type: ignore[call-overload]
    entries = whole.choices[0].logprobs.content
    assert "".join(e.token for e in entries) == whole.choices[0].message.content == HELLO_REPLY
    for entry in entries:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        # Greedy: the chosen token is the most likely one.
        assert entry.top_logprobs[0].token == entry.token
    chunks = list(client.chat.completions.create(**asked, stream=True))  # type: ignore[call-overload]
    streamed = [
        e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content
    ]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in entries]
    with stack.model_client() as model:
        direct = model.post("/v1/chat/completions", json=asked).json()["choices"][0]["logprobs"]["content"]
    assert [(e["token"], e["logprob"]) for e in direct] == [(e.token, e.logprob) for e in entries]


def test_gateway_refuses_a_wrong_key_and_the_model_service_refuses_no_token(stack: Stack) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "你好"}]}
    bad = httpx.post(
        f"{stack.gateway_url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer nope"}
    )
    assert bad.status_code == 401
    assert bad.json()["error"]["type"]
    direct = httpx.post(f"{stack.model_url}/v1/chat/completions", json=body)
    assert direct.status_code == 401
    assert "error" in direct.json()


def test_product_stream_is_stored_as_the_conversation_history(stack: Stack) -> None:
    with stack.gateway_client() as gw:
        conversation = gw.post("/api/conversations", json={}).json()["id"]
        body = {"conversationId": conversation, "model": MODEL, "query": "你好"}
        with gw.stream("POST", "/api/chat/messages", json=body) as resp:
            assert resp.status_code == 200, resp.read()
            events = list(sse.events(resp))
        deltas = [e for e in events if e.event == "message"]
        assert deltas, events
        assert [int(e.id or 0) for e in deltas] == list(range(1, len(deltas) + 1))
        finish = [e for e in events if e.event == "finish"]
        assert len(finish) == 1 and events[-1] is finish[0]
        text = "".join(json.loads(e.data)["text"] for e in deltas)
        assert text.strip()
        stored = gw.get(f"/api/conversations/{conversation}/messages").json()
        stored = stored if isinstance(stored, list) else stored["data"]
        assert [m["role"] for m in stored] == ["user", "assistant"]
        assert stored[0]["content"] == "你好"
        assert stored[1]["content"] == text


def _metric(client: httpx.Client, name: str) -> float:
    """Sum of a Prometheus series' samples (all label sets) on the model service."""
    total, found = 0.0, False
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"{name} is not exported"
    return total


def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_client_disconnect_through_gateway_frees_the_model_slot(stack: Stack) -> None:
    cancelled = 'model_generations_total{finish_reason="cancelled"}'
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "介绍一下长城"}],
        "max_tokens": 1024,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
    }
    with stack.model_client() as direct, stack.gateway_client() as gateway:
        cancelled_before = _metric(direct, cancelled)
        with gateway.stream("POST", "/v1/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            for ev in sse.events(resp):
                if ev.data != "[DONE]" and json.loads(ev.data)["choices"][0]["delta"].get("content"):
                    break
            assert _metric(direct, "model_engine_running_requests") == 1
        # The client has gone: the gateway must cancel upstream and the engine free the slot.
        _wait_for(
            lambda: _metric(direct, "model_engine_running_requests") == 0, "the engine slot to be freed"
        )
        _wait_for(
            lambda: _metric(direct, cancelled) >= cancelled_before + 1, "the cancellation to be counted"
        )


def test_browser_stream_resumes_exactly_after_a_dropped_connection(stack: Stack) -> None:
    with stack.gateway_client() as gw:
        conversation = gw.post("/api/conversations", json={}).json()["id"]
        started = gw.post(
            f"/api/conversations/{conversation}/messages", json={"model": MODEL, "query": "介绍一下长城"}
        ).json()
        first: list = []
        with gw.stream("GET", started["streamUrl"], headers={"Accept": "text/event-stream"}) as resp:
            assert resp.status_code == 200
            for ev in sse.events(resp):
                first.append(ev)
                if len(first) == 3:
                    break  # the browser's connection drops here
        assert all(e.event == "message" for e in first), first
        last_id = first[-1].id
        rest: list = []
        with gw.stream(
            "GET",
            started["streamUrl"],
            headers={"Accept": "text/event-stream", "Last-Event-ID": str(last_id)},
        ) as resp:
            assert resp.status_code == 200
            rest = list(sse.events(resp))
        events = first + rest
        ids = [int(e.id or 0) for e in events]
        assert ids == list(range(1, len(events) + 1)), "an event was lost or repeated across the reconnect"
        assert events[-1].event == "finish"
        text = "".join(json.loads(e.data)["text"] for e in events if e.event == "message")
        stored = gw.get(f"/api/conversations/{conversation}/messages").json()
        stored = stored if isinstance(stored, list) else stored["data"]
        assert stored[-1]["role"] == "assistant"
        assert stored[-1]["content"] == text
        assert "长城" in text
