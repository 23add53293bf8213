"""What business apps build on, through the gateway with the official openai SDK: tool calls (a
whole round trip, streamed and whole), structured outputs parsed into a pydantic model, and
several choices per request, all on the bundled demo model."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel, Field

from harness.stack import Stack

MODEL = "demo-model"
HELLO_REPLY = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "查询一个城市今天的天气",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 10}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
ASK = [{"role": "user", "content": "北京今天天气怎么样?"}]


@pytest.fixture()
def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.gateway_url}/v1", api_key=stack.admin_key, max_retries=0)


def streamed_reply(client: openai.OpenAI, **asked: Any) -> tuple[str, list[dict[str, str]], str | None]:
    """Content, calls and finish reason of a streamed reply, assembled as an SDK user does."""
    content, calls, finish = "", [], None
    for chunk in client.chat.completions.create(**asked, stream=True):
        for choice in chunk.choices:
            content += choice.delta.content or ""
            for frag in choice.delta.tool_calls or []:
                if frag.id is not None:
                    assert frag.index == len(calls) and frag.function and frag.function.name
                    calls.append({"id": frag.id, "name": frag.function.name, "arguments": ""})
                if frag.function and frag.function.arguments:
                    calls[frag.index]["arguments"] += frag.function.arguments
            finish = choice.finish_reason or finish
    return content, calls, finish


@pytest.mark.parametrize(
    "tool_choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_a_tool_round_trip_streamed_and_whole(client: openai.OpenAI, tool_choice: object) -> None:
    asked = {
        "model": MODEL,
        "messages": ASK,
        "tools": [WEATHER],
        "tool_choice": tool_choice,
        "temperature": 0,
    }
    whole = client.chat.completions.create(**asked, max_tokens=200)
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    arguments = json.loads(call.function.arguments)  # valid against the function's schema:
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str) and len(arguments["city"]) <= 10
    assert "<tool_call>" not in (choice.message.content or "")
    assert whole.usage is not None and whole.usage.completion_tokens > 0

    content, calls, finish = streamed_reply(client, **asked, max_tokens=200)
    assert finish == "tool_calls" and content == (choice.message.content or "")
    assert [(c["name"], c["arguments"]) for c in calls] == [(call.function.name, call.function.arguments)]

    # The app runs the tool and sends its result back; the model answers in words.
    history = [
        *ASK,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "晴,25度"},
    ]
    final = client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER], tool_choice="none", temperature=0, max_tokens=48
    )
    answer = final.choices[0]
    assert answer.finish_reason in ("stop", "length") and answer.message.content
    assert not answer.message.tool_calls
    streamed_answer, streamed_calls, _ = streamed_reply(
        client,
        model=MODEL,
        messages=history,
        tools=[WEATHER],
        tool_choice="none",
        temperature=0,
        max_tokens=48,
    )
    assert (streamed_answer, streamed_calls) == (answer.message.content, [])


class CityReport(BaseModel):
    city: str = Field(max_length=12)
    temperature_c: int = Field(ge=-40, le=50)
    sunny: bool


def test_structured_output_parses_into_the_pydantic_model(client: openai.OpenAI) -> None:
    for temperature in (0, 0.8):
        reply = client.chat.completions.parse(
            model=MODEL,
            messages=ASK,
            response_format=CityReport,
            temperature=temperature,
            seed=3,
            max_tokens=96,
        )
        choice = reply.choices[0]
        assert choice.finish_reason == "stop"
        assert isinstance(choice.message.parsed, CityReport)
        assert CityReport.model_validate_json(choice.message.content or "") == choice.message.parsed


def test_json_object_streamed_is_one_json_object(client: openai.OpenAI) -> None:
    content, calls, finish = streamed_reply(
        client,
        model=MODEL,
        messages=ASK,
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=96,
    )
    assert calls == []
    if finish == "stop":
        assert isinstance(json.loads(content), dict)
    else:  # the demo model may write a long string: what it wrote is still a JSON object's beginning
        assert finish == "length" and content.startswith("{")


def test_several_choices_through_the_gateway(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "你好"}], temperature=0, max_tokens=64, n=2
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert [c.message.content for c in reply.choices] == [HELLO_REPLY, HELLO_REPLY]
    one = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "你好"}], temperature=0, max_tokens=64
    )
    assert reply.usage is not None and one.usage is not None
    assert reply.usage.completion_tokens == 2 * one.usage.completion_tokens
    texts: dict[int, str] = {}
    for chunk in client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "你好"}],
        temperature=0,
        max_tokens=64,
        n=2,
        stream=True,
    ):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert texts == {0: HELLO_REPLY, 1: HELLO_REPLY}
