"""Reading tool calls out of streamed text: however the text is split, the same calls and content."""

from __future__ import annotations

import json

import pytest

from app.demo_model.build import CHAT_TEMPLATE
from app.serving.tools import CALL_BEGIN, CallArguments, CallStart, ToolCallParser, template_tool_format

TWO_CALLS = (
    "Let me check.<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "北京", "when": {"day": 1}}}\n'
    "</tool_call>\n<tool_call>\n"
    '{"name": "get_time", "arguments": {"zone": "Asia/Shanghai"}}\n'
    "</tool_call>\n"
)


def parse(text: str, step: int) -> tuple[str, list[tuple[str, str]], ToolCallParser]:
    parser = ToolCallParser()
    pieces = []
    for i in range(0, len(text), step):
        pieces += parser.feed(text[i : i + step])
    pieces += parser.flush()
    content = "".join(p for p in pieces if isinstance(p, str))
    calls: list[list[str]] = []
    for p in pieces:
        if isinstance(p, CallStart):
            assert p.index == len(calls) and p.id.startswith("call_")
            calls.append([p.name, ""])
        elif isinstance(p, CallArguments):
            calls[p.index][1] += p.text
    return content, [(name, args) for name, args in calls], parser


@pytest.mark.parametrize("step", [1, 2, 3, 5, 8, 13, len(TWO_CALLS)])
def test_every_split_gives_the_same_calls_and_content(step: int) -> None:
    content, calls, parser = parse(TWO_CALLS, step)
    assert content == "Let me check."
    assert calls == [
        ("get_weather", '{"city": "北京", "when": {"day": 1}}'),
        ("get_time", '{"zone": "Asia/Shanghai"}'),
    ]
    assert parser.calls == 2
    assert all(json.loads(args) for _, args in calls)


def test_arguments_stream_before_the_call_ends() -> None:
    parser = ToolCallParser()
    out = parser.feed('<tool_call>\n{"name": "f", "arguments": {"query": "long')
    assert [type(p) for p in out] == [CallStart, CallArguments]
    assert out[1].text == '{"query": "long'  # type: ignore[union-attr]
    assert parser.feed(" text") == [CallArguments(0, " text")]
    # what may be the call's closing brace and tag stays back until it is known
    assert parser.feed('"}') == [CallArguments(0, '"')]
    assert parser.feed("}\n</tool") == [CallArguments(0, "}")]
    assert parser.feed("_call>") == []


def test_text_that_only_looks_like_a_tag_is_content() -> None:
    parser = ToolCallParser()
    assert parser.feed("a <tool") == ["a "]
    assert parser.feed("box> b") == ["<toolbox> b"]
    assert parser.feed(" <tool_") == [" "]
    assert parser.flush() == ["<tool_"]
    assert parser.calls == 0


def test_a_call_the_service_cannot_read_is_given_back_as_content() -> None:
    content, calls, _ = parse("<tool_call>\nnot json at all\n</tool_call>", 4)
    assert calls == []
    assert content == "<tool_call>\nnot json at all\n</tool_call>"


def test_other_key_orders_are_read_whole() -> None:
    content, calls, _ = parse('<tool_call>{"arguments": {"x": [1, 2]}, "name": "g"}</tool_call>', 3)
    assert (content, calls) == ("", [("g", '{"x": [1, 2]}')])


def test_a_call_cut_short_keeps_what_it_had() -> None:
    content, calls, _ = parse('<tool_call>\n{"name": "f", "arguments": {"a": "b', 2)
    assert (content, calls) == ("", [("f", '{"a": "b')])


def test_text_between_and_after_calls_keeps_its_words_not_its_line_breaks() -> None:
    text = '<tool_call>{"name": "f", "arguments": {}}</tool_call>\n\nDone, see above.'
    content, calls, _ = parse(text, 1)
    assert calls == [("f", "{}")]
    assert content == "Done, see above."


def test_markup_never_reaches_content() -> None:
    for step in range(1, 12):
        content, _, _ = parse(TWO_CALLS, step)
        assert CALL_BEGIN not in content and "</tool_call>" not in content and "{" not in content


def test_template_tool_formats() -> None:
    assert template_tool_format(CHAT_TEMPLATE) == "hermes"
    assert template_tool_format(None) is None
    plain = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert template_tool_format(plain) is None
    other = "{% if tools %}{{ tools | tojson }}{% endif %}" + plain
    assert template_tool_format(other) is None  # takes tools, but writes calls in a format not parsed here
    assert template_tool_format("{% if tools %") is None  # a template that does not even parse


def test_a_call_ended_by_a_stop_string_is_whole() -> None:
    # parallel_tool_calls false stops the reply at the first "</tool_call>", which is not passed on
    content, calls, _ = parse('<tool_call>\n{"name": "f", "arguments": {"a": {"b": 1}}}\n', 3)
    assert (content, calls) == ("", [("f", '{"a": {"b": 1}}')])
