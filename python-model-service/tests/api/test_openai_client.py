"""The official openai client works against the service unchanged."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import TOKEN, LiveServer

HELLO = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"


@pytest.fixture()
def oai(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=TOKEN, max_retries=0)


def test_non_streaming(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="demo-model", messages=[{"role": "user", "content": "你好"}], temperature=0
    )
    assert reply.choices[0].message.content == HELLO
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_streaming_with_usage(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="demo-model",
            messages=[{"role": "user", "content": "你好"}],
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == HELLO
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0


def test_models_and_errors(oai: openai.OpenAI, server: LiveServer) -> None:
    assert [m.id for m in oai.models.list()] == ["demo-model"]
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="demo-model", messages=[{"role": "user", "content": "hi"}], n=17)
    assert info.value.param == "n"
    bad = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="wrong-key-0123456789", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_logprobs_parse_in_the_sdk(oai: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "你好"}]
    reply = oai.chat.completions.create(
        model="demo-model",
        messages=messages,
        temperature=0,
        logprobs=True,
        top_logprobs=3,  # type: ignore[arg-type]
    )
    lp = reply.choices[0].logprobs
    assert lp is not None and lp.content
    assert "".join(t.token for t in lp.content) == HELLO
    assert all(len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token for t in lp.content)
    chunks = list(
        oai.chat.completions.create(
            model="demo-model",
            messages=messages,
            temperature=0,
            logprobs=True,
            top_logprobs=3,
            stream=True,  # type: ignore[arg-type]
        )
    )
    streamed = [
        t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content or []
    ]
    assert [t.token for t in streamed] == [t.token for t in lp.content]
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="demo-model", messages=messages, top_logprobs=3)  # type: ignore[arg-type]
    assert info.value.param == "top_logprobs"
