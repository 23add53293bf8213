"""OpenAI chat completions against a live server with the demo model."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator

import httpx
import pytest

from app.engine import Engine
from app.protocol import ChatCompletionChunk
from harness import sse
from tests.conftest import TEST_BATCH_TOKENS, TOKEN, start_server

HELLO = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"
USER_HELLO = [{"role": "user", "content": "你好"}]
GREAT_WALL = [{"role": "user", "content": "介绍一下长城"}]
TOKEN_FRAGMENT = TOKEN[:12]


def chat(client: httpx.Client, **body: object) -> httpx.Response:
    body.setdefault("model", "demo-model")
    return client.post("/v1/chat/completions", json=body)


def stream(client: httpx.Client, **body: object) -> list[object]:
    body.setdefault("model", "demo-model")
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return sse.payloads(sse.events(r))


def test_greedy_hello(client: httpx.Client) -> None:
    r = chat(client, messages=USER_HELLO, temperature=0)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "demo-model"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": HELLO}
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert r.headers["x-request-id"]


def test_system_and_assistant_turns_go_through_the_template(client: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "你是一个有用的助手。"},
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": HELLO},
        {"role": "user", "content": "你好"},
    ]
    r = chat(client, messages=messages, temperature=0, max_tokens=20)
    assert r.status_code == 200
    assert (
        r.json()["usage"]["prompt_tokens"]
        > chat(client, messages=USER_HELLO, max_tokens=1).json()["usage"]["prompt_tokens"]
    )


def test_stream_has_role_content_finish_usage_and_done_last(client: httpx.Client) -> None:
    events = stream(client, messages=USER_HELLO, temperature=0, stream_options={"include_usage": True})
    assert events[-1] == "[DONE]"
    for e in events[:-1]:
        ChatCompletionChunk.model_validate(e)
        assert e["choices"] == [] or e["choices"][0]["finish_reason"] is not None or e["choices"][0]["delta"]  # type: ignore[index]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"  # type: ignore[index]
    assert "".join(sse.chunk_texts(events)) == HELLO
    finish = [e for e in events if isinstance(e, dict) and e["choices"] and e["choices"][0]["finish_reason"]]
    assert [f["choices"][0]["finish_reason"] for f in finish] == ["stop"]
    usage_chunk = events[-2]
    assert isinstance(usage_chunk, dict) and usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] > 0


def test_stream_without_include_usage_has_no_usage_chunk(client: httpx.Client) -> None:
    events = stream(client, messages=USER_HELLO, temperature=0)
    assert all(e == "[DONE]" or e["usage"] is None for e in events)  # type: ignore[index]


def test_chinese_stream_equals_non_stream_for_the_same_seed(client: httpx.Client) -> None:
    params = {"messages": GREAT_WALL, "temperature": 0.9, "top_p": 0.95, "seed": 1234, "max_tokens": 120}
    whole = chat(client, **params).json()["choices"][0]["message"]["content"]
    events = stream(client, **params)
    pieces = sse.chunk_texts(events)
    assert len(whole) > 30
    assert "".join(pieces) == whole
    assert all("\ufffd" not in p for p in pieces)
    assert len(pieces) > 5  # really streamed, piece by piece


def test_same_seed_same_output_and_other_seeds_differ(client: httpx.Client) -> None:
    params = {"messages": GREAT_WALL, "temperature": 2.0, "top_p": 1.0, "max_tokens": 24}
    first = chat(client, seed=7, **params).json()["choices"][0]["message"]["content"]
    again = chat(client, seed=7, **params).json()["choices"][0]["message"]["content"]
    assert first == again
    others = {chat(client, seed=s, **params).json()["choices"][0]["message"]["content"] for s in (8, 9, 10)}
    assert others - {first}


def test_temperature_zero_is_greedy_whatever_the_seed(client: httpx.Client) -> None:
    outs = {
        chat(client, messages=USER_HELLO, temperature=0, seed=s).json()["choices"][0]["message"]["content"]
        for s in (1, 2)
    }
    assert outs == {HELLO}


def test_max_tokens_ends_with_length(client: httpx.Client) -> None:
    body = chat(client, messages=GREAT_WALL, temperature=0, max_tokens=5).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5


def test_ignore_eos_generates_exactly_max_tokens(client: httpx.Client) -> None:
    body = chat(client, messages=USER_HELLO, temperature=0, max_tokens=30, ignore_eos=True).json()
    assert body["usage"]["completion_tokens"] == 30
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"].startswith(HELLO)


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("人工智能", "你好!我是"),  # inside one token
        (["!我", "never"], "你好"),  # spans two tokens: the pre-tokenizer splits at punctuation
        ("我是人工智能助手,很高兴", "你好!"),
        ("。", "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题"),
    ],
)
def test_stop_strings_never_leak(client: httpx.Client, stop: object, expected: str) -> None:
    body = chat(client, messages=USER_HELLO, temperature=0, stop=stop).json()
    assert body["choices"][0]["message"]["content"] == expected
    assert body["choices"][0]["finish_reason"] == "stop"
    events = stream(client, messages=USER_HELLO, temperature=0, stop=stop)
    assert "".join(sse.chunk_texts(events)) == expected
    assert events[-1] == "[DONE]"


def test_models_lists_the_served_model(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()
    assert [m["id"] for m in body["data"]] == ["demo-model"]


def test_incoming_request_id_is_honoured(client: httpx.Client) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={"messages": USER_HELLO, "max_tokens": 2},
        headers={"X-Request-Id": "abc-123"},
    )
    assert r.headers["x-request-id"] == "abc-123"


def test_text_content_parts_are_accepted(client: httpx.Client) -> None:
    parts = [{"type": "text", "text": "你"}, {"type": "text", "text": "好"}]
    body = chat(client, messages=[{"role": "user", "content": parts}], temperature=0).json()
    assert body["choices"][0]["message"]["content"] == HELLO
    r = chat(
        client, messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"].startswith("messages.0.content")


class AccessLog(logging.Handler):
    """Collects access lines; ``wait`` blocks until the line of a request id arrives."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: dict[str, str] = {}
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.lines[getattr(record, "request_id", "-")] = record.getMessage()
            self.cond.notify_all()

    def wait(self, request_id: str) -> str:
        with self.cond:
            assert self.cond.wait_for(lambda: request_id in self.lines, timeout=60)
            return self.lines[request_id]


@pytest.fixture()
def access_log() -> Iterator[AccessLog]:
    handler = AccessLog()
    logger = logging.getLogger("app.access")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_access_log_has_the_figures_and_no_text_by_default(
    client: httpx.Client, access_log: AccessLog
) -> None:
    client.post(
        "/v1/chat/completions",
        json={"messages": USER_HELLO, "temperature": 0},
        headers={"X-Request-Id": "log-check-1"},
    )
    line = access_log.wait("log-check-1")
    for field in (
        "status=200",
        "model=demo-model",
        "ttft_ms=",
        "duration_ms=",
    ):
        assert field in line
    assert re.search(r"prompt_tokens=\d+ completion_tokens=\d+ ttft_ms=[\d.]+ duration_ms=[\d.]+", line)
    assert "finish_reason=stop" in line
    assert "你好" not in line and TOKEN_FRAGMENT not in line


def test_prompt_logging_when_enabled(engine: Engine, access_log: AccessLog) -> None:
    live = start_server(engine, log_prompts=True)
    try:
        with live.client() as c:
            c.post(
                "/v1/chat/completions",
                json={"messages": USER_HELLO, "temperature": 0},
                headers={"X-Request-Id": "log-check-2"},
            )
        line = access_log.wait("log-check-2")
        assert "prompt=" in line and "reply=" in line and "你好" in line
    finally:
        live.stop()


def test_prompt_longer_than_the_batch_token_budget_is_prefilled_in_parts(client: httpx.Client) -> None:
    text = " ".join(str(i) for i in range(700))  # well over the test engine's batch token budget
    body = chat(
        client, messages=[{"role": "user", "content": text}], temperature=0.5, seed=3, max_tokens=6
    ).json()
    assert body["usage"]["prompt_tokens"] > TEST_BATCH_TOKENS
    assert body["usage"]["completion_tokens"] == 6 or body["choices"][0]["finish_reason"] == "stop"
