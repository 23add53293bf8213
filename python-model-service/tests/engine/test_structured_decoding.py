"""Grammar-constrained decoding in both engines: outputs match their schema, plain ones unchanged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from app.engine import Engine, SamplingParams, load_engine
from app.serving.structured import StructuredOutputs

HELLO = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"
PERSON = {
    "type": "object",
    "properties": {
        "mood": {"enum": ["happy", "sad"]},
        "age": {"type": "integer", "minimum": 0, "maximum": 99},
        "name": {"type": "string", "maxLength": 12},
    },
    "required": ["mood", "age", "name"],
}


@pytest.fixture(scope="module")
def generate_engine(demo_model_dir: Path) -> Iterator[Engine]:
    eng = load_engine(str(demo_model_dir), engine="generate")
    eng.start()
    yield eng
    eng.stop(10)


@pytest.fixture(scope="module")
def structured(engine: Engine) -> StructuredOutputs:
    return StructuredOutputs(engine.tokenizer, engine.vocab_size, engine.eos_token_ids)


def person(structured: StructuredOutputs) -> Any:
    return structured.response_format({"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}})


async def run(
    engine: Engine, rid: str, text: str, params: SamplingParams
) -> tuple[str, str | None, list[int]]:
    """The reply's text, finish reason and token ids; checks that every token has its own logprob entry."""
    prompt = engine.encode_chat([{"role": "user", "content": text}])
    tokens: list[int] = []
    reason = None
    async for step in engine.generate(rid, prompt, params):
        if params.logprobs is not None and step.token_ids:
            # one decision per emitted token: the processor ran exactly once for each, the first included
            assert step.logprobs is not None
            assert [lp.token_id for lp in step.logprobs] == step.token_ids
        tokens += step.token_ids
        reason = step.finish_reason
    return engine.tokenizer.decode(tokens, skip_special_tokens=True), reason, tokens


@pytest.mark.parametrize("which", ["engine", "generate_engine"])
@pytest.mark.parametrize("temperature", [0.0, 1.2])
def test_constrained_output_parses_and_validates(
    which: str, temperature: float, structured: StructuredOutputs, request: pytest.FixtureRequest
) -> None:
    eng: Engine = request.getfixturevalue(which)
    params = SamplingParams(96, temperature=temperature, seed=4, grammar=person(structured), logprobs=0)
    text, reason, tokens = asyncio.run(run(eng, f"{which}-struct-{temperature}", "你好", params))
    assert reason == "stop" and tokens[-1] in eng.eos_token_ids
    jsonschema.validate(json.loads(text), PERSON)


def test_both_engines_constrain_identically(
    engine: Engine, generate_engine: Engine, structured: StructuredOutputs
) -> None:
    params = SamplingParams(96, temperature=1.5, top_p=0.9, seed=21, grammar=person(structured))
    a = asyncio.run(run(engine, "same-cb", "介绍一下长城", params))
    b = asyncio.run(run(generate_engine, "same-gen", "介绍一下长城", params))
    assert a == b


@pytest.mark.parametrize("which", ["engine", "generate_engine"])
def test_a_complete_grammar_ends_the_reply_even_with_ignore_eos(
    which: str, structured: StructuredOutputs, request: pytest.FixtureRequest
) -> None:
    eng: Engine = request.getfixturevalue(which)
    params = SamplingParams(200, ignore_eos=True, grammar=person(structured))
    text, reason, _ = asyncio.run(run(eng, f"{which}-ignore-eos", "你好", params))
    assert reason == "stop"
    jsonschema.validate(json.loads(text), PERSON)


def test_a_prompt_prefilled_in_several_chunks_is_constrained_from_its_first_token(
    engine: Engine, structured: StructuredOutputs
) -> None:
    long_prompt = "介绍一下长城。" * 400  # over the test engine's 512-token batch budget
    assert len(engine.encode_chat([{"role": "user", "content": long_prompt}])) > 512
    params = SamplingParams(96, grammar=person(structured), logprobs=0)
    text, reason, _ = asyncio.run(run(engine, "chunked-prefill", long_prompt, params))
    assert reason == "stop"
    jsonschema.validate(json.loads(text), PERSON)


def test_constrained_and_plain_requests_share_a_batch(engine: Engine, structured: StructuredOutputs) -> None:
    grammar = person(structured)
    sampled = SamplingParams(30, temperature=1.5, seed=5)

    async def together() -> list[tuple[str, str | None, list[int]]]:
        return list(
            await asyncio.gather(
                run(engine, "mix-c1", "你好", SamplingParams(96, grammar=grammar)),
                run(engine, "mix-p1", "你好", SamplingParams(64)),
                run(
                    engine,
                    "mix-c2",
                    "介绍一下长城",
                    SamplingParams(96, temperature=0.9, seed=1, grammar=grammar),
                ),
                run(engine, "mix-p2", "介绍一下长城", SamplingParams(30)),
                run(engine, "mix-p3", "介绍一下长城", sampled),
                run(engine, "mix-c3", "什么是人工智能?", SamplingParams(96, grammar=grammar)),
            )
        )

    alone_greedy = asyncio.run(run(engine, "alone-p2", "介绍一下长城", SamplingParams(30)))
    alone_sampled = asyncio.run(run(engine, "alone-p3", "介绍一下长城", sampled))
    before = engine.stats().constrained_tokens
    results = asyncio.run(together())
    assert results[1][0] == HELLO
    assert results[3] == alone_greedy
    assert results[4] == alone_sampled
    for text, reason, _ in (results[0], results[2], results[5]):
        assert reason == "stop"
        jsonschema.validate(json.loads(text), PERSON)
    # every constrained token went through the mask, and only those
    assert engine.stats().constrained_tokens - before == sum(len(results[i][2]) for i in (0, 2, 5))
