"""StructuredOutputs on the demo tokenizer: what response formats and tool calls compile to, and the 400s."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch
import xgrammar as xgr
from transformers import AutoTokenizer

from app.engine.grammar import Grammar
from app.serving.errors import ApiError
from app.serving.structured import MAX_SCHEMA_DEPTH, StructuredOutputs

EOS = 2
WEATHER = {
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["c", "f"]}},
        "required": ["city", "unit"],
    },
}
ADD = {
    "name": "add",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 9}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    },
}


@pytest.fixture(scope="module")
def tokenizer(demo_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(demo_model_dir)


@pytest.fixture(scope="module")
def structured(tokenizer: Any) -> StructuredOutputs:
    # a logits row wider than the tokenizer, as padded output layers have
    return StructuredOutputs(tokenizer, len(tokenizer) + 13, [EOS])


def walk(tokenizer: Any, grammar: Grammar, seed: int, limit: int = 400) -> str:
    """What the grammar lets random logits produce, up to and without the stop token."""
    matcher = grammar.matcher()
    width = len(tokenizer) + 13
    bitmask = xgr.allocate_token_bitmask(1, width)
    gen = torch.Generator().manual_seed(seed)
    out: list[int] = []
    while not matcher.is_terminated():
        assert len(out) < limit, tokenizer.decode(out)
        matcher.fill_next_token_bitmask(bitmask, 0)
        logits = torch.rand((1, width), generator=gen)
        xgr.apply_token_bitmask_inplace(logits, bitmask)
        token = int(logits.argmax())
        assert token < len(tokenizer)  # the padding past the tokenizer is never allowed
        assert matcher.accept_token(token)
        out.append(token)
    assert out[-1] == EOS
    return str(tokenizer.decode(out[:-1]))


def json_schema(schema: Any, name: str = "answer") -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def test_text_and_absent_formats_are_unconstrained(structured: StructuredOutputs) -> None:
    assert structured.response_format(None) is None
    assert structured.response_format({"type": "text"}) is None


@pytest.mark.parametrize("seed", range(4))
def test_json_schema_outputs_validate_and_are_compact(
    structured: StructuredOutputs, tokenizer: Any, seed: int
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "mood": {"enum": ["happy", "sad"]},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "name": {"type": "string", "minLength": 1, "maxLength": 8},
            "tags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 2},
            "home": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/place"}]},
        },
        "required": ["mood", "age", "name", "tags", "home"],
        "$defs": {
            "place": {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{3}$"}}}
        },
    }
    grammar = structured.response_format(json_schema(schema))
    assert grammar is not None
    text = walk(tokenizer, grammar, seed)
    value = json.loads(text)
    jsonschema.validate(value, schema)
    assert list(value) == ["mood", "age", "name", "tags", "home"]  # the schema's order
    assert text == json.dumps(value, ensure_ascii=False)  # ", " and ": ", and no other whitespace


def test_json_object_is_any_object(structured: StructuredOutputs, tokenizer: Any) -> None:
    grammar = structured.response_format({"type": "json_object"})
    assert grammar is not None
    matcher = grammar.matcher()
    assert matcher.accept_string('{"a": [1, {"b": null}], "c": "d"}')
    assert not grammar.matcher().accept_string("[1]")
    assert not grammar.matcher().accept_string('{ "a": 1}')  # no free whitespace


def test_length_bounded_strings_keep_raw_control_characters_out(structured: StructuredOutputs) -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string", "maxLength": 4}}, "required": ["s"]}
    grammar = structured.response_format(json_schema(schema))
    assert grammar is not None
    assert grammar.matcher().accept_string('{"s": "ab你好"}')
    assert not grammar.matcher().accept_string('{"s": "a\tb"}')
    assert not grammar.matcher().accept_string('{"s": "abcde"}')


def test_compiled_grammars_are_cached_by_schema(structured: StructuredOutputs) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    a = structured.response_format(json_schema(schema, "a"))
    b = structured.response_format(json_schema(dict(schema), "b"))
    assert a is not None and b is not None
    assert a.compiled is b.compiled
    assert (a.description, b.description) == ("json_schema 'a'", "json_schema 'b'")


@pytest.mark.parametrize("seed", range(3))
def test_tool_call_is_one_call_in_hermes_format(
    structured: StructuredOutputs, tokenizer: Any, seed: int
) -> None:
    grammar = structured.tool_call([WEATHER, ADD])
    text = walk(tokenizer, grammar, seed)
    assert text.startswith("<tool_call>\n") and text.endswith("\n</tool_call>")
    call = json.loads(text.removeprefix("<tool_call>\n").removesuffix("\n</tool_call>"))
    assert list(call) == ["name", "arguments"]
    tool = {"get_weather": WEATHER, "add": ADD}[call["name"]]
    jsonschema.validate(call["arguments"], tool["parameters"])


def test_a_single_named_tool_is_always_the_one_called(structured: StructuredOutputs, tokenizer: Any) -> None:
    grammar = structured.tool_call([ADD], begin="", end="")
    for seed in range(3):
        call = json.loads(walk(tokenizer, grammar, seed))
        assert call["name"] == "add"
        jsonschema.validate(call["arguments"], ADD["parameters"])


def test_a_tool_without_parameters_takes_an_empty_object(structured: StructuredOutputs) -> None:
    grammar = structured.tool_call([{"name": "now"}])
    assert grammar.matcher().accept_string('<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>')
    assert not grammar.matcher().accept_string('<tool_call>\n{"name": "then", "arguments": {}}\n</tool_call>')


def deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    ("rf", "words"),
    [
        ("json", "must be an object"),
        ({"type": "xml"}, "'xml'"),
        ({"type": "json_schema"}, "name and a schema"),
        ({"type": "json_schema", "json_schema": {"schema": {}}}, "name is required"),
        ({"type": "json_schema", "json_schema": {"name": "has space", "schema": {}}}, "name is required"),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "schema is required"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "strict": "yes"}}, "strict"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "extra": 1}}, "'extra'"),
        (json_schema({"type": 5}), "schema.type must be one of"),
        (json_schema({"type": "object", "properties": []}), "properties must be an object"),
        (json_schema({"type": "object", "required": [1]}), "required must be a list"),
        (json_schema({"enum": []}), "enum must be a non-empty list"),
        (json_schema({"type": "string", "maxLength": -1}), "maxLength must be a non-negative"),
        (json_schema({"$ref": "#/$defs/missing"}), "Cannot find"),
        (json_schema({"$ref": "https://example.com/s.json"}), "only references within the schema"),
        (json_schema({"type": "string", "pattern": "(("}), "parenthesis"),
        (json_schema(False), "no value can match"),
        (json_schema(deep_schema(MAX_SCHEMA_DEPTH)), "nested more than"),
        (json_schema({"enum": list(range(30_000))}), "too large"),
    ],
)
def test_invalid_response_formats_are_400(structured: StructuredOutputs, rf: Any, words: str) -> None:
    with pytest.raises(ApiError) as err:
        structured.response_format(rf)
    assert (err.value.status, err.value.param) == (400, "response_format")
    assert words in err.value.message


@pytest.mark.parametrize(
    ("schema", "feature"),
    [
        ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "uniqueItems"),
        ({"not": {"type": "string"}}, "not"),
        ({"allOf": [{"type": "integer"}, {"minimum": 3}]}, "allOf"),
        ({"if": {"type": "integer"}, "then": {"minimum": 3}}, "if"),
        ({"type": "object", "patternProperties": {"^x": {"type": "integer"}}}, "patternProperties"),
        ({"type": "string", "format": "idn-email"}, "idn-email"),
        ({"type": "string", "pattern": "^[a-z]+$", "maxLength": 3}, "together with pattern"),
        ({"type": "string", "format": "email", "maxLength": 30}, "together with format"),
    ],
)
def test_features_the_grammar_cannot_enforce_are_named(
    structured: StructuredOutputs, schema: dict[str, Any], feature: str
) -> None:
    nested = {"type": "object", "properties": {"field": schema}}
    with pytest.raises(ApiError) as err:
        structured.response_format(json_schema(nested))
    assert (err.value.status, err.value.param, err.value.code) == (
        400,
        "response_format",
        "unsupported_schema_feature",
    )
    assert feature in err.value.message and "properties.field" in err.value.message


def test_a_schema_five_thousand_levels_deep_is_refused_at_once(structured: StructuredOutputs) -> None:
    schema = deep_schema(5000)
    start = time.perf_counter()
    with pytest.raises(ApiError) as err:
        structured.response_format(json_schema(schema))
    assert time.perf_counter() - start < 0.5
    assert err.value.param == "response_format"
    # and tools just as well
    with pytest.raises(ApiError) as err:
        structured.tool_call([{"name": "f", "parameters": schema}])
    assert err.value.param == "tools"


@pytest.mark.parametrize(
    ("tools", "words"),
    [
        ([], "non-empty list"),
        (["f"], "must be an object"),
        ([{"name": "not an identifier"}], "name must be"),
        ([{"name": "f"}, {"name": "f"}], "appears twice"),
        ([{"name": "f", "parameters": {"type": "string"}}], "must describe an object"),
        ([{"name": "f", "parameters": {"type": "object", "properties": {"x": {"not": {}}}}}], "'not'"),
    ],
)
def test_invalid_tools_are_400(structured: StructuredOutputs, tools: Any, words: str) -> None:
    with pytest.raises(ApiError) as err:
        structured.tool_call(tools)
    assert (err.value.status, err.value.param) == (400, "tools")
    assert words in err.value.message


def test_a_tokenizer_xgrammar_cannot_read_makes_formats_a_clear_400() -> None:
    structured = StructuredOutputs(object(), 100, [0])
    assert structured.unavailable
    with pytest.raises(ApiError) as err:
        structured.response_format({"type": "json_object"})
    assert (err.value.param, err.value.code) == ("response_format", "unsupported_parameter")
    assert structured.response_format({"type": "text"}) is None
