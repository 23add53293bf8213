"""Tool calling: the request's tools rendered by the model's own chat template, and the calls the
model writes parsed back out of its text.

Models learn one way to write a call from their chat template. The Hermes format that Qwen2.5
(and the demo model) use is understood here: each call is a JSON object
``{"name": ..., "arguments": {...}}`` between ``<tool_call>`` and ``</tool_call>``. A template that
renders ``tools`` in another format, or none at all, makes a request with tools a clear 400 rather
than an answer whose calls nobody parses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import jinja2
import jinja2.meta

from app.core.ids import random_hex
from app.protocol import ChatMessage, NamedToolChoice, Tool, ToolChoice
from app.serving.errors import invalid

CALL_BEGIN = "<tool_call>"
CALL_END = "</tool_call>"

# The head of a call written as Hermes models write it; once it is complete, the arguments that
# follow can be streamed as they are generated.
_CALL_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*')


def template_tool_format(template: str | None) -> str | None:
    """``"hermes"`` when the chat template renders ``tools`` in the Hermes format, else None.

    A template that takes ``tools`` but writes calls in another format (Llama 3.1's JSON, Mistral's
    ``[TOOL_CALLS]``, ...) is reported as None too: its calls could not be parsed.
    """
    if not template:
        return None
    try:
        variables = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(template))
    except jinja2.TemplateError:
        return None
    if "tools" in variables and CALL_BEGIN in template:
        return "hermes"
    return None


@dataclass(frozen=True)
class ToolPlan:
    """What a request's tools mean for this generation.

    ``render`` goes to the chat template; ``parse`` says whether the reply is read for calls;
    ``forced`` lists the functions (name and parameters schema) one of which the reply must call,
    for ``tool_choice`` ``required`` or a named function.
    """

    render: list[dict[str, Any]] | None = None
    parse: bool = False
    forced: list[dict[str, Any]] | None = None


NO_TOOLS = ToolPlan()


def plan_tools(
    tools: list[Tool] | None,
    choice: ToolChoice | None,
    messages: list[ChatMessage],
    tool_format: str | None,
) -> ToolPlan:
    """Check the request's tools against each other and the model; say how to generate with them."""
    uses_history = any(m.role == "tool" or m.tool_calls for m in messages)
    if (tools or uses_history) and tool_format is None:
        param = "tools" if tools else "messages"
        raise invalid(
            "this model's chat template does not support tool calling in a format this service can "
            "parse (the Hermes <tool_call> format, as Qwen2.5 uses)",
            param,
            code="unsupported_parameter",
        )
    if not tools:
        if choice is not None and choice != "none":
            raise invalid("tool_choice needs tools", "tool_choice")
        return NO_TOOLS
    names = [t.function.name for t in tools]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise invalid(f"two tools are named '{duplicate}'; function names must be unique", "tools")
    rendered = [t.model_dump(exclude_none=True) for t in tools]
    if choice == "none":
        # The model is not to call anything: it does not see the tools, so it does not write calls.
        return NO_TOOLS
    functions = [{"name": t.function.name, "parameters": t.function.parameters or {}} for t in tools]
    if isinstance(choice, NamedToolChoice):
        name = choice.function.name
        if name not in names:
            raise invalid(f"tool_choice names '{name}', which is not one of the tools", "tool_choice")
        return ToolPlan(rendered, True, [f for f in functions if f["name"] == name])
    if choice == "required":
        return ToolPlan(rendered, True, functions)
    return ToolPlan(rendered, True, None)


def template_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """The messages as chat templates take them: call arguments as objects, as the templates dump them."""
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        msg: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            calls = []
            for j, call in enumerate(m.tool_calls):
                param = f"messages[{i}].tool_calls[{j}].function.arguments"
                try:
                    arguments = json.loads(call.function.arguments) if call.function.arguments.strip() else {}
                except ValueError as exc:
                    raise invalid(f"the call's arguments are not valid JSON: {exc}", param) from exc
                calls.append(
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": arguments},
                    }
                )
            msg["tool_calls"] = calls
        if m.tool_call_id is not None:
            msg["tool_call_id"] = m.tool_call_id
        out.append(msg)
    return out


def new_call_id() -> str:
    """An OpenAI-style tool call id."""
    return f"call_{random_hex(12)}"


@dataclass(frozen=True)
class CallStart:
    """A call begins: its index in the reply, its id and the function's name."""

    index: int
    id: str
    name: str


@dataclass(frozen=True)
class CallArguments:
    """More of a call's arguments, as JSON text."""

    index: int
    text: str


Piece = str | CallStart | CallArguments  # a str is content


def _held_prefix(text: str, marker: str) -> int:
    """The length of the longest suffix of ``text`` that is a proper prefix of ``marker``."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:n]):
            return n
    return 0


@dataclass
class _OpenCall:
    body: str = ""
    started: CallStart | None = None
    args_at: int = 0  # where the arguments begin in ``body``, once the head was read
    sent: int = 0  # how much of the arguments was streamed


@dataclass
class ToolCallParser:
    """Splits a streamed reply into content and tool calls, never letting call markup into content.

    Content that might be the start of ``<tool_call>`` is held back until it is known not to be.
    A call's head (its name) is announced as soon as it is complete, and its arguments are streamed
    as they come, holding back only what may be the closing brace and tag. A call whose JSON cannot
    be read is given back as the content the model wrote.
    """

    calls: int = 0
    _after_call: bool = False  # no content since the last call closed
    _pending: str = ""
    _open: _OpenCall | None = None
    _out: list[Piece] = field(default_factory=list)

    def feed(self, text: str) -> list[Piece]:
        """The content and call fragments that ``text`` completes."""
        if self._open is None:
            self._pending += text
        else:
            self._open.body += text
        self._advance(final=False)
        out, self._out = self._out, []
        return out

    def flush(self) -> list[Piece]:
        """Everything held back, at the end of the reply (a call cut short keeps what it had)."""
        self._advance(final=True)
        if self._open is not None:
            # A call whose JSON is whole was ended by a stop string (parallel_tool_calls false).
            self._close(self._open, complete=_parse_call(self._open.body) is not None)
            self._open = None
        elif self._pending:
            self._content(self._pending)
            self._pending = ""
        out, self._out = self._out, []
        return out

    def _advance(self, final: bool) -> None:
        while True:
            if self._open is None:
                at = self._pending.find(CALL_BEGIN)
                if at < 0:
                    keep = 0 if final else _held_prefix(self._pending, CALL_BEGIN)
                    self._content(self._pending[: len(self._pending) - keep])
                    self._pending = self._pending[len(self._pending) - keep :]
                    return
                self._content(self._pending[:at])
                self._open = _OpenCall(body=self._pending[at + len(CALL_BEGIN) :])
                self._pending = ""
            call = self._open
            end = call.body.find(CALL_END)
            if end < 0:
                self._stream_arguments(call)
                return
            self._pending = call.body[end + len(CALL_END) :]
            call.body = call.body[:end]
            self._after_call = self._close(call, complete=True)
            self._open = None

    def _content(self, text: str) -> None:
        if self._after_call:
            # Between and after calls, models write line breaks that are not content.
            text = text.lstrip()
        if text:
            self._after_call = False
            self._out.append(text)

    def _start(self, call: _OpenCall, name: str) -> None:
        call.started = CallStart(self.calls, new_call_id(), name)
        self.calls += 1
        self._out.append(call.started)

    def _stream_arguments(self, call: _OpenCall) -> None:
        if call.started is None:
            head = _CALL_HEAD.match(call.body)
            if head is None:
                return
            try:
                name = json.loads(f'"{head.group(1)}"')
            except ValueError:
                return
            self._start(call, name)
            call.args_at = head.end()
        self._skip_leading_space(call)
        tail = call.body[call.args_at :]
        # Hold back what may yet turn out to be the end of the call: a partial closing tag, the space
        # before it and the brace that closes the call's object.
        tail = tail[: len(tail) - _held_prefix(tail, CALL_END)].rstrip()
        if tail.endswith("}"):
            tail = tail[:-1].rstrip()
        if len(tail) > call.sent:
            self._arguments(call, tail[call.sent :])
            call.sent = len(tail)

    @staticmethod
    def _skip_leading_space(call: _OpenCall) -> None:
        """The arguments start at their first non-space character, however the head was split."""
        if call.sent == 0:
            while call.args_at < len(call.body) and call.body[call.args_at].isspace():
                call.args_at += 1

    def _arguments(self, call: _OpenCall, text: str) -> None:
        assert call.started is not None
        self._out.append(CallArguments(call.started.index, text))

    def _close(self, call: _OpenCall, complete: bool) -> bool:
        """Ends a call; False when it could not be read and was given back as content."""
        if call.started is None:
            parsed = _parse_call(call.body)
            if parsed is None:
                # Not a call this service can read: the model's own words, markup included.
                closing = CALL_END if complete else ""
                self._content(CALL_BEGIN + call.body + closing)
                return False
            self._start(call, parsed[0])
            self._arguments(call, parsed[1])
            return True
        self._skip_leading_space(call)
        tail = call.body[call.args_at :].rstrip()
        if complete and tail.endswith("}"):
            tail = tail[:-1].rstrip()
        if len(tail) > call.sent:
            self._arguments(call, tail[call.sent :])
            call.sent = len(tail)
        return True


def _parse_call(body: str) -> tuple[str, str] | None:
    """The name and arguments (as JSON text) of a whole call's JSON, or None when it is not one."""
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    arguments = obj.get("arguments", obj.get("parameters", {}))
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return obj["name"], text
