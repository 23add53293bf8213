"""Tool calling through the HTTP API: the tools rendered by the model's template, the calls in its
reply sent as OpenAI's ``tool_calls``, streamed and whole, and the requests that cannot work refused.

The model's words come from a scripted engine here, so that every shape of reply can be tried; the
demo model's own calls (forced by ``tool_choice``) are tested in ``test_structured.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.engine import Engine, EngineStep, SamplingParams
from harness import sse
from tests.api.test_errors import assert_envelope
from tests.api.test_fake_engine import ScriptedEngineBase
from tests.conftest import LiveServer, start_server

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "今天的天气",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 10}},
            "required": ["city"],
        },
    },
}
CITY = '{"city": "北京"}'
ASK = [{"role": "user", "content": "北京天气怎么样?"}]
REPLY = (
    "我来查一下。<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "北京"}}\n'
    "</tool_call>\n<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "上海"}}\n'
    "</tool_call>"
)


class TextEngine(ScriptedEngineBase):
    """Writes ``reply`` one token per step, and keeps the last prompt it was given."""

    kind = "scripted"

    def __init__(self, real: Engine, template: str | None = None) -> None:
        tokenizer = real.tokenizer
        if template is not None:
            tokenizer = copy.deepcopy(tokenizer)
            tokenizer.chat_template = template
        super().__init__(real.model, tokenizer, "demo-model", real.max_model_len)
        self.reply = REPLY
        self.prompt = ""

    async def generate(
        self, request_id: str, prompt_ids: list[int], params: SamplingParams
    ) -> AsyncIterator[EngineStep]:
        self.prompt = self.tokenizer.decode(prompt_ids)
        ids = self.tokenizer.encode(self.reply, add_special_tokens=False)
        for i, token in enumerate(ids):
            yield EngineStep([token], "stop" if i == len(ids) - 1 else None)


@pytest.fixture(scope="module")
def scripted(engine: Engine) -> Iterator[tuple[TextEngine, LiveServer]]:
    text_engine = TextEngine(engine)
    live = start_server(text_engine)
    yield text_engine, live
    live.stop()


@pytest.fixture()
def tool_client(scripted: tuple[TextEngine, LiveServer]) -> Iterator[httpx.Client]:
    engine, live = scripted
    engine.reply = REPLY
    with live.client() as c:
        yield c


def post(client: httpx.Client, **body: object) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"model": "demo-model", **body})


def stream_chunks(client: httpx.Client, **body: object) -> list[dict]:
    with client.stream(
        "POST", "/v1/chat/completions", json={"model": "demo-model", "stream": True, **body}
    ) as r:
        assert r.status_code == 200, r.read()
        return [c for c in sse.payloads(sse.events(r)) if isinstance(c, dict)]


def gather_stream(chunks: list[dict]) -> tuple[str, list[dict], list[str]]:
    """Content, calls (id, name, arguments) and finish reasons, as an SDK would assemble them."""
    content, calls, finishes = "", [], []
    for chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for frag in delta.get("tool_calls") or []:
                if "id" in frag:
                    assert frag["index"] == len(calls)
                    assert frag["type"] == "function" and frag["function"]["arguments"] == ""
                    calls.append({"id": frag["id"], "name": frag["function"]["name"], "arguments": ""})
                else:
                    assert set(frag) == {"index", "function"} and set(frag["function"]) == {"arguments"}
                    calls[frag["index"]]["arguments"] += frag["function"]["arguments"]
            if choice["finish_reason"]:
                finishes.append(choice["finish_reason"])
    return content, calls, finishes


def test_streamed_calls_arrive_as_tool_call_deltas_and_never_as_content(tool_client: httpx.Client) -> None:
    chunks = stream_chunks(tool_client, messages=ASK, tools=[WEATHER])
    content, calls, finishes = gather_stream(chunks)
    assert content == "我来查一下。"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("get_weather", {"city": "北京"}),
        ("get_weather", {"city": "上海"}),
    ]
    assert len({c["id"] for c in calls}) == 2 and all(c["id"].startswith("call_") for c in calls)
    assert finishes == ["tool_calls"]
    fragments = [f for c in chunks for ch in c["choices"] for f in ch["delta"].get("tool_calls") or []]
    assert len(fragments) > 4, "arguments are streamed in pieces as they are generated"


def test_whole_reply_carries_the_same_calls(tool_client: httpx.Client) -> None:
    streamed = gather_stream(stream_chunks(tool_client, messages=ASK, tools=[WEATHER]))
    r = post(tool_client, messages=ASK, tools=[WEATHER])
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == streamed[0]
    whole = [(c["type"], c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]]
    assert whole == [("function", c["name"], c["arguments"]) for c in streamed[1]]


def test_a_reply_of_calls_only_has_null_content(tool_client: httpx.Client, scripted: tuple) -> None:
    scripted[0].reply = REPLY.removeprefix("我来查一下。")
    message = post(tool_client, messages=ASK, tools=[WEATHER]).json()["choices"][0]["message"]
    assert message["content"] is None and len(message["tool_calls"]) == 2


def test_without_tools_the_same_words_are_plain_content(tool_client: httpx.Client) -> None:
    r = post(tool_client, messages=ASK)
    choice = r.json()["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": REPLY}
    assert choice["finish_reason"] == "stop"


def test_tools_are_rendered_by_the_chat_template(tool_client: httpx.Client, scripted: tuple) -> None:
    post(tool_client, messages=ASK, tools=[WEATHER])
    prompt = scripted[0].prompt
    assert "<tools>" in prompt and '"name": "get_weather"' in prompt and "今天的天气" in prompt
    # tool_choice none: the model does not see the tools, and its text is not read for calls
    r = post(tool_client, messages=ASK, tools=[WEATHER], tool_choice="none")
    assert "<tools>" not in scripted[0].prompt
    assert r.json()["choices"][0]["message"]["content"] == REPLY


def test_a_round_trip_renders_the_call_and_its_result(tool_client: httpx.Client, scripted: tuple) -> None:
    scripted[0].reply = "北京今天晴。"
    history = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "北京"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "晴,25度"},
    ]
    r = post(tool_client, messages=history, tools=[WEATHER])
    assert r.json()["choices"][0]["message"]["content"] == "北京今天晴。"
    prompt = scripted[0].prompt
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call>' in prompt
    assert "<tool_response>\n晴,25度\n</tool_response>" in prompt


BAD_TOOL_REQUESTS = [
    ({"tools": [{"type": "function", "function": {"name": "not a name!"}}]}, "tools.0.function.name"),
    ({"tools": [{"type": "function", "function": {"name": "x" * 65}}]}, "tools.0.function.name"),
    ({"tools": [{"type": "retrieval", "function": {"name": "f"}}]}, "tools.0.type"),
    ({"tools": [{"type": "function"}]}, "tools.0.function"),
    ({"tools": [WEATHER] * 2}, "tools"),
    ({"tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(129)]}, "tools"),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    (
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "bad name"}}},
        "tool_choice",
    ),
    ({"messages": [*ASK, {"role": "tool", "content": "晴"}]}, "messages.1"),
    ({"messages": [{"role": "user", "content": "hi", "tool_calls": []}]}, "messages.0"),
    ({"messages": [*ASK, {"role": "assistant", "content": None}]}, "messages.1.content"),
    (
        {
            "messages": [
                *ASK,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                    ],
                },
            ]
        },
        "messages[1].tool_calls[0].function.arguments",
    ),
]


@pytest.mark.parametrize(("body", "param"), BAD_TOOL_REQUESTS)
def test_bad_tool_requests_are_400(tool_client: httpx.Client, body: dict, param: str) -> None:
    r = post(tool_client, **{"messages": ASK, **body})
    assert_envelope(r, 400, "invalid_request_error", param)
    assert post(tool_client, messages=ASK).status_code == 200  # and the service is unharmed


@pytest.fixture(scope="module")
def no_tools_server(engine: Engine) -> Iterator[LiveServer]:
    plain = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}assistant: "
    live = start_server(TextEngine(engine, template=plain))
    yield live
    live.stop()


def test_a_model_whose_template_has_no_tools_refuses_them(no_tools_server: LiveServer) -> None:
    with no_tools_server.client() as c:
        err = assert_envelope(post(c, messages=ASK, tools=[WEATHER]), 400, "invalid_request_error", "tools")
        assert err["code"] == "unsupported_parameter" and "tool" in err["message"]
        history = [*ASK, {"role": "tool", "tool_call_id": "c", "content": "x"}]
        assert_envelope(post(c, messages=history), 400, "invalid_request_error", "messages")
        assert post(c, messages=ASK).status_code == 200


def test_parallel_tool_calls_false_ends_the_reply_with_its_first_call(tool_client: httpx.Client) -> None:
    for stream in (False, True):
        if stream:
            _, calls, finishes = gather_stream(
                stream_chunks(tool_client, messages=ASK, tools=[WEATHER], parallel_tool_calls=False)
            )
        else:
            choice = post(tool_client, messages=ASK, tools=[WEATHER], parallel_tool_calls=False).json()[
                "choices"
            ][0]
            calls = [c["function"] for c in choice["message"]["tool_calls"]]
            finishes = [choice["finish_reason"]]
        assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [("get_weather", {"city": "北京"})]
        assert finishes == ["tool_calls"]


TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {
                "zone": {"enum": ["Asia/Shanghai", "Europe/Paris"]},
                "hours": {"type": "integer", "minimum": 0, "maximum": 23},
            },
            "required": ["zone"],
        },
    },
}


@pytest.mark.parametrize(
    ("choice", "names"),
    [
        ("required", {"get_weather", "get_time"}),
        ({"type": "function", "function": {"name": "get_time"}}, {"get_time"}),
    ],
)
def test_a_forced_choice_makes_the_demo_model_call_with_valid_arguments(
    client: httpx.Client, choice: object, names: set[str]
) -> None:
    asked = {
        "messages": ASK,
        "tools": [WEATHER, TIME],
        "tool_choice": choice,
        "temperature": 0,
        "max_tokens": 200,
    }
    whole = post(client, **asked).json()["choices"][0]
    assert whole["finish_reason"] == "tool_calls"
    (call,) = whole["message"]["tool_calls"]
    assert call["function"]["name"] in names
    arguments = json.loads(call["function"]["arguments"])
    if call["function"]["name"] == "get_time":
        assert arguments["zone"] in ("Asia/Shanghai", "Europe/Paris")
        assert set(arguments) <= {"zone", "hours"} and isinstance(arguments.get("hours", 0), int)
    else:
        assert set(arguments) == {"city"} and isinstance(arguments["city"], str)
    content, calls, finishes = gather_stream(stream_chunks(client, **asked))
    assert (content or None, finishes) == (whole["message"]["content"], ["tool_calls"])
    assert [(c["name"], c["arguments"]) for c in calls] == [
        (call["function"]["name"], call["function"]["arguments"])
    ]


def test_a_forced_choice_and_a_response_format_cannot_both_hold(client: httpx.Client) -> None:
    r = post(
        client,
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        response_format={"type": "json_object"},
    )
    assert_envelope(r, 400, "invalid_request_error", "response_format")
