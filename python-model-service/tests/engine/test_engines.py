"""Both engines driven directly, as a benchmark would: outputs, seeds, cancelling requests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine import Engine, EngineStep, SamplingParams, load_engine
from app.engine.base import TokenLogprob
from app.engine.continuous import ContinuousBatchingEngine

HELLO = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"


@pytest.fixture(scope="module")
def one_slot_engine(demo_model_dir: Path) -> Iterator[Engine]:
    """A continuous-batching engine that runs one request at a time, so a second one must queue."""
    eng = load_engine(str(demo_model_dir), engine="continuous", max_batch_requests=1)
    eng.start()
    yield eng
    eng.stop(10)


@pytest.fixture(scope="module")
def generate_engine(demo_model_dir: Path) -> Iterator[Engine]:
    eng = load_engine(str(demo_model_dir), engine="generate")
    eng.start()
    yield eng
    eng.stop(10)


async def collect(engine: Engine, rid: str, text: str, params: SamplingParams) -> tuple[str, str | None, int]:
    ids = engine.encode_chat([{"role": "user", "content": text}])
    tokens: list[int] = []
    reason = None
    async for step in engine.generate(rid, ids, params):
        tokens += step.token_ids
        reason = step.finish_reason
    return engine.tokenizer.decode(tokens, skip_special_tokens=True), reason, len(tokens)


def test_engine_kinds(engine: Engine, generate_engine: Engine) -> None:
    assert (engine.kind, generate_engine.kind) == ("continuous", "generate")
    assert engine.model_id == "demo-model"


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "你好"}],
        [
            {"role": "system", "content": "你是一个乐于助人的人工智能助手。"},
            {"role": "user", "content": "介绍一下长城"},
        ],
        [
            {"role": "user", "content": "What is <|im_end|> here?"},
            {"role": "assistant", "content": "A marker 🧱 of 𠀀 rare text."},
            {"role": "user", "content": "  spaces\n\tand tabs  "},
        ],
    ],
)
def test_prompt_ids_match_the_chat_template_tokenized_by_transformers(
    engine: Engine, messages: list[dict[str, str]]
) -> None:
    expected = engine.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if hasattr(expected, "keys"):
        expected = expected["input_ids"]
    assert engine.encode_chat(messages) == list(expected)


@pytest.mark.parametrize("which", ["engine", "generate_engine"])
def test_greedy_and_length(which: str, request: pytest.FixtureRequest) -> None:
    eng: Engine = request.getfixturevalue(which)
    text, reason, n = asyncio.run(collect(eng, f"{which}-g", "你好", SamplingParams(64)))
    # every token of the reply plus the end-of-sequence token
    assert (text, reason, n) == (
        HELLO,
        "stop",
        len(eng.tokenizer.encode(HELLO, add_special_tokens=False)) + 1,
    )
    _, reason, n = asyncio.run(collect(eng, f"{which}-l", "介绍一下长城", SamplingParams(7)))
    assert (reason, n) == ("length", 7)


def test_both_engines_sample_identically_for_a_seed(engine: Engine, generate_engine: Engine) -> None:
    params = SamplingParams(20, temperature=1.8, top_p=0.95, seed=99)
    a = asyncio.run(collect(engine, "seed-cb", "介绍一下长城", params))
    b = asyncio.run(collect(generate_engine, "seed-gen", "介绍一下长城", params))
    assert a == b


def test_concurrent_requests_do_not_disturb_each_other(engine: Engine) -> None:
    sampled = SamplingParams(30, temperature=1.5, top_p=1.0, seed=5)

    async def together() -> list[tuple[str, str | None, int]]:
        return list(
            await asyncio.gather(
                collect(engine, "c1", "介绍一下长城", sampled),
                collect(engine, "c2", "你好", SamplingParams(64)),
                collect(engine, "c3", "介绍一下长城", SamplingParams(30)),
            )
        )

    alone = asyncio.run(collect(engine, "c0", "介绍一下长城", sampled))
    results = asyncio.run(together())
    assert results[0] == alone
    assert results[1][0] == HELLO


@pytest.mark.parametrize("which", ["one_slot_engine", "generate_engine"])
def test_cancel_queued_and_running_requests(which: str, request: pytest.FixtureRequest) -> None:
    eng: Engine = request.getfixturevalue(which)

    async def scenario() -> None:
        ids = eng.encode_chat([{"role": "user", "content": "介绍一下长城"}])
        long = SamplingParams(2000, ignore_eos=True)
        running = eng.generate(f"{which}-run", ids, long)
        first: EngineStep = await anext(running)
        assert first.token_ids
        queued = eng.generate(f"{which}-queued", ids, long)
        waiter = asyncio.ensure_future(anext(queued))
        await asyncio.sleep(0)  # let the waiter submit it; the only slot is taken
        assert eng.stats().tracked == 2
        assert eng.stats().running == 1
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        await queued.aclose()
        assert await asyncio.wait_for(eng.wait_finished(f"{which}-queued"), 60) == "cancelled"
        assert (await anext(running)).token_ids  # the running one is untouched
        await running.aclose()
        assert await asyncio.wait_for(eng.wait_finished(f"{which}-run"), 60) == "cancelled"
        stats = eng.stats()
        assert (stats.running, stats.waiting, stats.tracked) == (0, 0, 0)

    asyncio.run(scenario())


def test_auto_falls_back_to_generate_when_batching_cannot_start(
    demo_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: object, *args: object, **kwargs: object) -> None:
        raise RuntimeError("paged attention unsupported by this modeling code")

    monkeypatch.setattr(ContinuousBatchingEngine, "__init__", refuse)
    assert load_engine(str(demo_model_dir), engine="auto").kind == "generate"
    with pytest.raises(Exception, match="continuous batching cannot serve"):
        load_engine(str(demo_model_dir), engine="continuous")


def test_a_stopped_engine_is_not_ready_and_refuses_work(demo_model_dir: Path) -> None:
    from tests.conftest import start_server

    eng = load_engine(str(demo_model_dir), engine="generate")
    eng.start()
    live = start_server(eng)
    try:
        eng.stop(10)
        assert not eng.healthy()
        with live.client() as c:
            r = c.get("/ready")
            assert r.status_code == 503 and "engine stopped" in r.json()["error"]["message"]
            r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 503 and r.headers["retry-after"]
    finally:
        live.stop()


async def collect_logprobs(
    engine: Engine, rid: str, params: SamplingParams
) -> list[tuple[int, TokenLogprob]]:
    ids = engine.encode_chat([{"role": "user", "content": "介绍一下长城"}])
    out: list[tuple[int, TokenLogprob]] = []
    async for step in engine.generate(rid, ids, params):
        if not step.token_ids:
            continue  # a last step that only ends the request
        assert step.logprobs is not None and len(step.logprobs) == len(step.token_ids)
        out += zip(step.token_ids, step.logprobs, strict=True)
    return out


@pytest.mark.parametrize("which", ["engine", "generate_engine"])
@pytest.mark.parametrize("temperature", [0.0, 1.5])
def test_engines_report_each_chosen_tokens_logprob_and_the_likeliest(
    which: str, temperature: float, request: pytest.FixtureRequest
) -> None:
    eng: Engine = request.getfixturevalue(which)
    params = SamplingParams(12, temperature=temperature, seed=7, ignore_eos=True, logprobs=5)
    steps = asyncio.run(collect_logprobs(eng, f"{which}-lp-{temperature}", params))
    assert len(steps) == 12
    for token, lp in steps:
        assert lp.token_id == token and lp.logprob <= 0
        assert len(lp.top) == 5
        values = [v for _, v in lp.top]
        assert values == sorted(values, reverse=True)
        if temperature == 0:
            assert lp.top[0][0] == token  # greedy picks the likeliest
        if token in dict(lp.top):
            assert dict(lp.top)[token] == pytest.approx(lp.logprob)
        else:
            assert lp.logprob <= values[-1]


def test_both_engines_report_the_same_logprobs(engine: Engine, generate_engine: Engine) -> None:
    params = SamplingParams(10, temperature=1.2, seed=3, logprobs=2)
    a = asyncio.run(collect_logprobs(engine, "lp-cb", params))
    b = asyncio.run(collect_logprobs(generate_engine, "lp-gen", params))
    assert [t for t, _ in a] == [t for t, _ in b]
    assert [lp.logprob for _, lp in a] == pytest.approx([lp.logprob for _, lp in b], abs=1e-3)


def test_requests_without_logprobs_carry_none(engine: Engine) -> None:
    async def steps() -> list[EngineStep]:
        ids = engine.encode_chat([{"role": "user", "content": "你好"}])
        return [s async for s in engine.generate("no-lp", ids, SamplingParams(5))]

    assert all(s.logprobs is None for s in asyncio.run(steps()))
