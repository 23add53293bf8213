"""Structured outputs: OpenAI ``response_format`` and tool-call arguments as grammars the engine enforces.

xgrammar compiles a JSON Schema into a grammar over this model's tokenizer; the engine masks every token
the grammar does not allow (see ``app.engine.grammar``). A schema is checked here first, without
recursion and within fixed bounds, so that a hostile or mistaken one is a quick 400 naming the problem:
JSON Schema features the grammar cannot enforce are refused by name, never silently dropped.

The JSON is compact, as ``json.dumps`` writes it: ", " between items, ": " after keys, and no other
whitespace, so that a small model cannot spend its tokens on spaces.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import xgrammar as xgr

from app.engine.grammar import Grammar, tokenizer_info
from app.serving.errors import invalid

__all__ = ["Grammar", "StructuredOutputs"]

log = logging.getLogger("app.serving")

# Deeper than any real schema needs (each object level is two: "properties", then the name), and far
# below where anything recursive could run out of stack.
MAX_SCHEMA_DEPTH = 64
# JSON values in one schema (objects, arrays, strings, numbers...), and in all the tools of one request.
MAX_SCHEMA_VALUES = 20_000
# Longest minLength/maxLength honoured; longer bounds make large grammars and no sense in one reply.
MAX_STRING_LENGTH = 100_000
# Length bounds up to this become a pattern (see _string_lengths); above it a pattern's mask costs 10-100x
# more per token (xgrammar 0.2.9, measured: 5 us at {0,24}, 455 us at {0,256}), so the library's own
# length rule is kept.
MAX_PATTERN_LENGTH = 64
CACHE_SIZE = 256
SEPARATORS = (", ", ": ")
# OpenAI's rule for json_schema names and function names.
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}
# Formats the grammar enforces; others (idn-email, iri, regex...) it would let through unchecked.
FORMATS = {
    "date", "time", "date-time", "duration", "email", "hostname", "ipv4", "ipv6", "uri", "uri-reference",
    "uri-template", "uuid", "json-pointer", "relative-json-pointer",
}  # fmt: skip
# Keywords whose value is one schema, a list of schemas, or an object of named schemas.
ONE_SCHEMA = {"additionalProperties", "items"}
SCHEMA_LISTS = {"anyOf", "oneOf", "prefixItems"}
SCHEMA_MAPS = {"properties", "$defs", "definitions"}
COUNTS = {"minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"}
NUMBERS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
# Keywords that constrain a value and that the grammar cannot enforce (measured: bench/grammar_bench.py).
UNSUPPORTED = {
    "allOf", "not", "if", "then", "else", "uniqueItems", "patternProperties", "propertyNames",
    "dependentRequired", "dependentSchemas", "dependencies", "contains", "minContains", "maxContains",
    "unevaluatedProperties", "unevaluatedItems", "additionalItems", "$dynamicRef", "$dynamicAnchor",
    "$recursiveRef", "$recursiveAnchor",
}  # fmt: skip
# Any other keyword is an annotation (title, description, default, examples, $schema...): JSON Schema
# ignores keywords it does not know, and so does the grammar.

_LIBRARY_PREFIX = re.compile(r"^\[[0-9:]+\] \S+:[0-9]+: ")


class StructuredOutputs:
    """Compiles response formats and tool calls into grammars for one model's tokenizer; built once per
    service. Compiled grammars are cached (LRU) by the canonical JSON of their schema."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: Iterable[int]) -> None:
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Grammar] = OrderedDict()
        self._compiler: xgr.GrammarCompiler | None = None
        # Why this model cannot constrain its output (a tokenizer xgrammar cannot read), else None.
        self.unavailable: str | None = None
        try:
            info = tokenizer_info(tokenizer, vocab_size, sorted(stop_token_ids))
            # our own LRU bounds the memory; the library's cache would grow with every new schema
            self._compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        except Exception as exc:  # a tokenizer of a kind xgrammar does not know
            self.unavailable = f"{type(exc).__name__}: {exc}"
            log.warning("event=structured_outputs_unavailable reason=%r", self.unavailable)

    def response_format(self, rf: Any) -> Grammar | None:
        """The grammar of an OpenAI ``response_format``; None for plain text; 400 if it cannot be honoured."""
        param = "response_format"
        if rf is None:
            return None
        if not isinstance(rf, dict):
            raise invalid("response_format must be an object", param)
        kind = rf.get("type")
        _only(rf, {"type", "json_schema"} if kind == "json_schema" else {"type"}, "response_format", param)
        if kind == "text":
            return None
        if kind == "json_object":
            return self._compiled("json_object", {"type": "object"}, param, strict=False)
        if kind != "json_schema":
            raise invalid(
                f"response_format.type must be 'text', 'json_object' or 'json_schema', not {kind!r}", param
            )
        spec = rf.get("json_schema")
        if not isinstance(spec, dict):
            raise invalid("response_format.json_schema must be an object with a name and a schema", param)
        _only(spec, {"name", "schema", "strict", "description"}, "response_format.json_schema", param)
        name = spec.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise invalid(
                "response_format.json_schema.name is required: 1 to 64 letters, digits, '_' or '-'", param
            )
        if not isinstance(spec.get("strict", False), bool | None):
            raise invalid("response_format.json_schema.strict must be a boolean", param)
        if not isinstance(spec.get("description", ""), str | None):
            raise invalid("response_format.json_schema.description must be a string", param)
        if "schema" not in spec:
            raise invalid("response_format.json_schema.schema is required", param)
        schema = spec["schema"]
        _check_bounds(schema, "response_format.json_schema.schema", param)
        checked = _checked(schema, "response_format.json_schema.schema", param)
        return self._compiled(f"json_schema {name!r}", checked, param, strict=True)

    def tool_call(
        self, tools: list[dict[str, Any]], begin: str = "<tool_call>\n", end: str = "\n</tool_call>"
    ) -> Grammar:
        """A grammar whose only outputs are one call of one of ``tools``, Hermes/Qwen style:
        ``begin + {"name": "<name>", "arguments": {...}} + end``, then the end of the reply.

        ``tools`` are ``{"name": str, "parameters": JSON Schema}`` (no parameters: an empty object); the
        arguments validate against the named tool's parameters. 400 naming ``tools`` otherwise.
        """
        param = "tools"
        if not isinstance(tools, list) or not tools:
            raise invalid("tools must be a non-empty list", param)
        _check_bounds(tools, "tools", param)
        calls: list[dict[str, Any]] = []
        names: set[str] = set()
        for i, tool in enumerate(tools):
            where = f"tools[{i}]"
            if not isinstance(tool, dict):
                raise invalid(f"{where} must be an object with a name and parameters", param)
            name = tool.get("name")
            if not isinstance(name, str) or not NAME.match(name):
                raise invalid(f"{where}.name must be 1 to 64 letters, digits, '_' or '-'", param)
            if name in names:
                raise invalid(f"{where}.name: the function name {name!r} appears twice", param)
            names.add(name)
            parameters = tool.get("parameters")
            if parameters is None:
                parameters = {"type": "object", "properties": {}}
            checked = _checked(parameters, f"{where}.parameters", param)
            if checked.setdefault("type", "object") != "object":
                raise invalid(f"{where}.parameters must describe an object (type 'object')", param)
            call: dict[str, Any] = {
                "type": "object",
                "properties": {"name": {"const": name}, "arguments": checked},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            calls.append(call)
        key = _canonical(["tool_call", begin, end, calls])

        def build(compiler: xgr.GrammarCompiler) -> xgr.CompiledGrammar:
            alternatives = [
                xgr.Grammar.from_json_schema(
                    json.dumps(call), any_whitespace=False, separators=SEPARATORS, strict_mode=True
                )
                for call in calls
            ]
            one = alternatives[0] if len(alternatives) == 1 else xgr.Grammar.union(*alternatives)
            head, tail = (xgr.Grammar.from_ebnf(f"root ::= {_ebnf(text)}") for text in (begin, end))
            return compiler.compile_grammar(xgr.Grammar.concat(head, one, tail))

        return self._cached(key, "tool call", build, param)

    def _compiled(self, description: str, schema: Any, param: str, strict: bool) -> Grammar:
        text = _canonical(schema)

        def build(compiler: xgr.GrammarCompiler) -> xgr.CompiledGrammar:
            return compiler.compile_json_schema(
                text, any_whitespace=False, separators=SEPARATORS, strict_mode=strict
            )

        return self._cached(f"{strict}:{text}", description, build, param)

    def _cached(self, key: str, description: str, build: Any, param: str) -> Grammar:
        """The cached grammar for ``key``, built (and cached) on a miss; 400 when the library refuses it."""
        if self._compiler is None:
            raise invalid(
                f"{param} is not supported for this model: its tokenizer cannot be constrained "
                f"({self.unavailable})",
                param,
                code="unsupported_parameter",
            )
        with self._lock:
            grammar = self._cache.get(key)
            if grammar is not None:
                self._cache.move_to_end(key)
                return Grammar(grammar.compiled, description)
        try:
            compiled = build(self._compiler)
        except Exception as exc:  # the library's own checks: bad $ref, empty enum, invalid pattern...
            raise invalid(f"{param}: the schema cannot be used: {_library_message(exc)}", param) from exc
        grammar = Grammar(compiled, description)
        with self._lock:
            self._cache[key] = grammar
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return grammar


def _only(obj: dict[str, Any], allowed: set[str], where: str, param: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise invalid(f"{where} has unknown field(s): {', '.join(map(repr, extra))}", param)


def _check_bounds(value: Any, where: str, param: str) -> None:
    """400 when ``value`` is nested deeper or holds more values than any real schema; iterative, so that
    a hostile depth costs no stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_SCHEMA_DEPTH:
            raise invalid(f"{where} is nested more than {MAX_SCHEMA_DEPTH} levels deep", param)
        if count > MAX_SCHEMA_VALUES:
            raise invalid(f"{where} is too large: more than {MAX_SCHEMA_VALUES} JSON values", param)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _checked(schema: Any, where: str, param: str) -> Any:
    """``schema`` checked keyword by keyword (a 400 names the first problem and where it is), rewritten
    where the grammar needs it: a length-bounded string becomes a pattern. Call ``_check_bounds`` first."""
    if not isinstance(schema, dict | bool):
        raise invalid(f"{where} must be a JSON Schema object", param)
    if schema is False:
        raise invalid(f"{where} is `false`: no value can match it", param)
    if schema is True:
        return {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        at = f"{where}.{key}"
        if key in UNSUPPORTED:
            raise invalid(
                f"{at}: the JSON Schema keyword '{key}' is not supported by structured outputs",
                param,
                code="unsupported_schema_feature",
            )
        if key in SCHEMA_MAPS:
            if not isinstance(value, dict):
                raise invalid(f"{at} must be an object of schemas", param)
            out[key] = {k: _checked(v, f"{at}.{k}", param) for k, v in value.items()}
        elif key in SCHEMA_LISTS:
            if not isinstance(value, list) or not value:
                raise invalid(f"{at} must be a non-empty list of schemas", param)
            out[key] = [_checked(v, f"{at}[{i}]", param) for i, v in enumerate(value)]
        elif key in ONE_SCHEMA:
            if key == "items" and isinstance(value, list):
                raise invalid(f"{at}: a list of item schemas is not supported; use prefixItems", param)
            out[key] = value if value is False else _checked(value, at, param)
        else:
            _check_value(key, value, at, param)
            out[key] = value
    return _string_lengths(out, where, param)


def _check_value(key: str, value: Any, at: str, param: str) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if key == "type":
        kinds = value if isinstance(value, list) else [value]
        if not kinds or not all(isinstance(k, str) and k in TYPES for k in kinds):
            raise invalid(f"{at} must be one of {sorted(TYPES)} or a list of them", param)
    elif key == "required" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise invalid(f"{at} must be a list of property names", param)
    elif key == "enum" and not (isinstance(value, list) and value):
        raise invalid(f"{at} must be a non-empty list", param)
    elif key in COUNTS and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise invalid(f"{at} must be a non-negative integer", param)
    elif key in NUMBERS and not number:
        raise invalid(f"{at} must be a number", param)
    elif key == "multipleOf" and value <= 0:
        raise invalid(f"{at} must be greater than 0", param)
    elif key == "pattern" and not isinstance(value, str):
        raise invalid(f"{at} must be a regular expression string", param)
    elif key == "format" and value not in FORMATS:
        raise invalid(
            f"{at}: the string format {value!r} is not supported by structured outputs "
            f"(supported: {', '.join(sorted(FORMATS))})",
            param,
            code="unsupported_schema_feature",
        )
    elif key == "$ref" and not (isinstance(value, str) and value.startswith("#")):
        raise invalid(f"{at}: only references within the schema ('#/...') are supported", param)


def _string_lengths(schema: dict[str, Any], where: str, param: str) -> dict[str, Any]:
    """Short minLength/maxLength bounds as a pattern of the same length that keeps out raw control characters.

    xgrammar 0.2.9 enforces a length bound with a character class that lets a raw tab or control character
    through (invalid JSON to a strict parser) and refuses escapes; a pattern has neither fault, but costs
    far more per token once its bounds are large, so longer bounds keep the library's rule. With a pattern
    or a format of its own, the length would be dropped silently: that is refused instead.
    """
    if "minLength" not in schema and "maxLength" not in schema:
        return schema
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    for other in ("pattern", "format"):
        if other in schema:
            raise invalid(
                f"{where}: minLength/maxLength together with {other} is not supported by structured outputs",
                param,
                code="unsupported_schema_feature",
            )
    if max(low, high or 0) > MAX_STRING_LENGTH:
        raise invalid(f"{where}: string lengths above {MAX_STRING_LENGTH} are not supported", param)
    if high is not None and low > high:
        raise invalid(f"{where}: minLength is greater than maxLength", param)
    if max(low, high or 0) > MAX_PATTERN_LENGTH:
        return schema
    out = {k: v for k, v in schema.items() if k not in ("minLength", "maxLength")}
    out["pattern"] = f'^[^"\\\\\\x00-\\x1f]{{{low},{"" if high is None else high}}}$'
    return out


def _canonical(value: Any) -> str:
    """The cache key of a schema: its JSON without whitespace. Keys keep their order, which is the order
    the properties are generated in."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _ebnf(text: str) -> str:
    """``text`` as an EBNF string literal."""
    return json.dumps(text, ensure_ascii=False)


def _library_message(exc: Exception) -> str:
    """The library's error message, without its timestamp and source location."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return _LIBRARY_PREFIX.sub("", first)
