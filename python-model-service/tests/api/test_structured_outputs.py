"""response_format on /v1/chat/completions: outputs that parse and validate, whole and streamed, and 400s."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from harness import sse
from tests.api.test_errors import assert_envelope
from tests.conftest import TOKEN, LiveServer

HELLO = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"
USER_HELLO = [{"role": "user", "content": "你好"}]
PERSON = {
    "type": "object",
    "properties": {
        "mood": {"enum": ["happy", "sad"]},
        "age": {"type": "integer", "minimum": 0, "maximum": 99},
        "name": {"type": "string", "maxLength": 12},
        "friends": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 2},
    },
    "required": ["mood", "age", "name", "friends"],
    "additionalProperties": False,
}
PERSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}


def chat(client: httpx.Client, **body: Any) -> dict:
    r = client.post("/v1/chat/completions", json={"model": "demo-model", "messages": USER_HELLO, **body})
    assert r.status_code == 200, r.text
    choice: dict = r.json()["choices"][0]
    return choice


def stream(client: httpx.Client, **body: Any) -> tuple[str, str | None]:
    payload = {"model": "demo-model", "messages": USER_HELLO, **body, "stream": True}
    text, reason = "", None
    with client.stream("POST", "/v1/chat/completions", json=payload) as r:
        assert r.status_code == 200
        for p in sse.payloads(sse.events(r)):
            if isinstance(p, dict) and p.get("choices"):
                text += p["choices"][0]["delta"].get("content") or ""
                reason = p["choices"][0]["finish_reason"] or reason
    return text, reason


@pytest.mark.parametrize("temperature", [0, 1.3])
def test_json_schema_replies_validate_whole_and_streamed(client: httpx.Client, temperature: float) -> None:
    body = {"response_format": PERSON_FORMAT, "temperature": temperature, "seed": 8, "max_tokens": 200}
    whole = chat(client, **body)
    assert whole["finish_reason"] == "stop"
    jsonschema.validate(json.loads(whole["message"]["content"]), PERSON)
    text, reason = stream(client, **body)
    assert (text, reason) == (whole["message"]["content"], "stop")


@pytest.mark.parametrize("temperature", [0, 0.8])
def test_json_object_replies_are_objects(client: httpx.Client, temperature: float) -> None:
    # the demo model knows no JSON: a string may run on to max_tokens, but what came out so far is JSON
    choice = chat(
        client, response_format={"type": "json_object"}, temperature=temperature, seed=2, max_tokens=48
    )
    content = choice["message"]["content"]
    assert content.startswith("{")
    if choice["finish_reason"] == "stop":
        assert isinstance(json.loads(content), dict)
    text, _ = stream(
        client, response_format={"type": "json_object"}, temperature=temperature, seed=2, max_tokens=48
    )
    assert text == content


def test_a_closing_object_schema_stops_on_its_own(client: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "flag", "schema": schema}}
    choice = chat(client, response_format=fmt, temperature=0)
    assert choice["finish_reason"] == "stop"
    assert json.loads(choice["message"]["content"]) in ({"ok": True}, {"ok": False})


def test_text_format_is_the_plain_reply(client: httpx.Client) -> None:
    assert chat(client, response_format={"type": "text"}, temperature=0)["message"]["content"] == HELLO


def test_plain_requests_beside_constrained_ones_are_unchanged(server: LiveServer) -> None:
    import concurrent.futures

    def one(constrained: bool) -> str:
        with server.client() as c:
            extra = {"response_format": PERSON_FORMAT, "max_tokens": 200} if constrained else {}
            return str(chat(c, temperature=0, **extra)["message"]["content"])

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(one, [True, False, True, False, True, False]))
    assert replies[1::2] == [HELLO] * 3
    for reply in replies[0::2]:
        jsonschema.validate(json.loads(reply), PERSON)


def nested(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    ("response_format", "words"),
    [
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}, "type must be"),
        (
            {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "array", "uniqueItems": True}},
            },
            "'uniqueItems' is not supported",
        ),
        ({"type": "yaml"}, "'yaml'"),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "schema is required"),
        ({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}, "name is required"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": nested(300)}}, "nested more than"),
        ("json", "response_format"),
    ],
)
def test_bad_response_formats_are_400_and_harmless(
    client: httpx.Client, response_format: Any, words: str
) -> None:
    r = client.post("/v1/chat/completions", json={"messages": USER_HELLO, "response_format": response_format})
    err = assert_envelope(r, 400, "invalid_request_error", "response_format")
    assert words in err["message"]
    assert chat(client, temperature=0)["message"]["content"] == HELLO


def test_a_schema_five_thousand_levels_deep_is_a_fast_400(client: httpx.Client) -> None:
    deep = '{"type":"object","properties":{"a":' * 5000 + '{"type":"string"}' + "}}" * 5000
    raw = '{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema",'
    raw += '"json_schema":{"name":"deep","schema":' + deep + "}}}"
    start = time.perf_counter()
    r = client.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert time.perf_counter() - start < 2
    # too deep for the body parser itself, before the schema is looked at
    err = assert_envelope(r, 400, "invalid_request_error")
    assert "nested too deeply" in err["message"]
    assert chat(client, temperature=0)["message"]["content"] == HELLO


class Pet(BaseModel):
    kind: Literal["cat", "dog", "fish"]
    age: int = Field(ge=0, le=30)
    name: str = Field(max_length=10)


def test_openai_sdk_parse_returns_a_valid_instance(server: LiveServer) -> None:
    oai = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=TOKEN, max_retries=0)
    reply = oai.chat.completions.parse(
        model="demo-model", messages=USER_HELLO, response_format=Pet, temperature=0, max_tokens=100
    )
    pet = reply.choices[0].message.parsed
    assert isinstance(pet, Pet)
    assert reply.choices[0].finish_reason == "stop"
