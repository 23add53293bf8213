"""The generation of one admitted request: engine steps, detokenizing, stop strings, and the
metrics of each step."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from app.core.config import Settings
from app.core.ids import random_hex
from app.engine.base import Engine, EngineStep, SamplingParams, TokenLogprob
from app.serving.admission import Ticket
from app.serving.detokenize import IncrementalDetokenizer
from app.serving.logprobs import LogprobAligner
from app.serving.metrics import ServiceMetrics
from app.serving.record import RequestRecord
from app.serving.stop import StopMatcher
from app.serving.tools import NO_TOOLS, ToolPlan

log = logging.getLogger("app.serving")


@dataclass
class PreparedChat:
    """A validated request, ready for the engine."""

    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    stops: list[str]
    messages: list[dict[str, Any]]
    tools: ToolPlan = NO_TOOLS


@dataclass
class TextDelta:
    """New text for the client, with the logprobs of the tokens it completes when they were asked for.

    ``token_ids`` are the tokens decoded since the previous delta (their text may still be held back,
    e.g. a character's first bytes or the start of a possible stop string).
    """

    text: str
    logprobs: list[TokenLogprob] | None = None
    token_ids: list[int] = field(default_factory=list)


@dataclass
class Replayed:
    """A continued answer's earlier part (``continue_token_ids``) as the client already has it: not to be
    sent again, but to bring text-reading state (the tool-call parser) to where the answer stands."""

    text: str


@dataclass
class Finished:
    """The end of a generation, with its counts."""

    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None
    # tokens decoded after the last delta (the end-of-sequence token, or text a stop string cut)
    token_ids: list[int] = field(default_factory=list)


async def _no_steps() -> AsyncIterator[EngineStep]:
    return
    yield  # an async generator that ends at once


class Generation:
    """Runs admitted requests on the engine and turns its token steps into text."""

    def __init__(self, engine: Engine, settings: Settings, metrics: ServiceMetrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.active: set[str] = set()

    def abort_all(self) -> int:
        """End every in-flight generation now (finish_reason ``cancelled``); returns how many."""
        active = list(self.active)
        for engine_id in active:
            self.engine.abort(engine_id)
        return len(active)

    def run(
        self, prepared: PreparedChat, ticket: Ticket, record: RequestRecord
    ) -> AsyncIterator[TextDelta | Replayed | Finished]:
        """Generate the reply as text deltas followed by one ``Finished`` (a continued answer: after one
        ``Replayed``)."""
        gen = self._run(prepared, ticket, record)
        # A stream the server never starts iterating must still give back its queue place.
        weakref.finalize(gen, ticket.release)
        return gen

    async def _run(
        self, prepared: PreparedChat, ticket: Ticket, record: RequestRecord
    ) -> AsyncIterator[TextDelta | Replayed | Finished]:
        m = self.metrics
        record.model = self.engine.model_id
        record.prompt_tokens = len(prepared.prompt_ids)
        if self.settings.log_prompts:
            record.prompt_text = repr(prepared.messages)
        m.prompt_tokens.inc(len(prepared.prompt_ids))
        detok = IncrementalDetokenizer(self.engine.tokenizer, skip_ids=self.engine.eos_token_ids)
        matcher = StopMatcher(prepared.stops)
        resumed = list(prepared.params.resumed)
        if resumed:
            # The decoder and the stop strings take the earlier part as they did on the first replica: what
            # they still hold back (a character's first bytes, a stop string's possible start) is sent by
            # this continuation, the rest was sent before.
            yield Replayed(matcher.feed("".join(detok.step(t) for t in resumed)))
        prompt = prepared.prompt_ids + resumed
        engine_id = f"{prepared.request_id}-{random_hex(8)}"
        # an earlier part that already ends in a stop string has nothing left to generate
        steps = _no_steps() if matcher.stopped else self.engine.generate(engine_id, prompt, prepared.params)
        generated = len(resumed)
        first_text_at: float | None = None
        last_token_at: float | None = None
        finish_reason = "stop" if matcher.stopped else "cancelled"
        error: str | None = None
        aligner = LogprobAligner(matcher.held) if prepared.params.logprobs is not None else None
        eos = self.engine.eos_token_ids
        ids: list[int] = []  # decoded since the last delta
        self.active.add(engine_id)
        try:
            try:
                async for step in steps:
                    now = time.perf_counter()
                    if not ticket.started:
                        ticket.mark_started()
                        m.queue_time.observe(now - ticket.admitted_at)
                        # the first step ends the prefill (an early cancel or error has none)
                        if step.token_ids or step.finish_reason in ("stop", "length"):
                            m.observe_prefill(len(prompt), step.cached_tokens)
                    if step.token_ids and last_token_at is not None:
                        per_token = (now - last_token_at) / len(step.token_ids)
                        for _ in step.token_ids:
                            m.tpot.observe(per_token)
                    if step.token_ids:
                        last_token_at = now
                    # one delta per engine step: a step carries several tokens when the client fell behind
                    parts: list[str] = []
                    for i, token in enumerate(step.token_ids):
                        generated += 1
                        ids.append(token)
                        piece = detok.step(token)
                        if aligner is not None and step.logprobs is not None and token not in eos:
                            aligner.feed(step.logprobs[i], piece)  # OpenAI reports no end-of-text token
                        text = matcher.feed(piece)
                        if text:
                            parts.append(text)
                        if matcher.stopped:
                            break
                    released: list[TokenLogprob] | None = None
                    if aligner is not None:
                        released = aligner.emit(sum(map(len, parts)))
                        if matcher.stopped:
                            released += aligner.cut()
                    if parts or released:
                        text = "".join(parts)
                        if first_text_at is None:
                            first_text_at = now
                            ttft = now - ticket.admitted_at
                            m.ttft.observe(ttft)
                            if record.ttft_s is None:  # several choices share one record
                                record.ttft_s = ttft
                        if self.settings.log_prompts:
                            record.reply_text.append(text)
                        yield TextDelta(text, released, ids)
                        ids = []
                    if matcher.stopped:
                        finish_reason = "stop"
                        break
                    if step.finish_reason is not None:
                        finish_reason = "stop" if step.finish_reason == "stop" else step.finish_reason
                        error = step.error
                        break
            except Exception as exc:  # an engine failure ends this request, not the server
                finish_reason, error = "error", f"{type(exc).__name__}: {exc}"
            if finish_reason in ("stop", "length", "cancelled"):
                tail = matcher.flush()
                released = aligner.flush() if aligner is not None else None
                if tail or released:
                    yield TextDelta(tail, released, ids)
                    ids = []
            if finish_reason == "error":
                log.error("event=engine_error request_id=%s detail=%r", prepared.request_id, error)
            yield Finished(finish_reason, len(prepared.prompt_ids), generated, error, ids)
        finally:
            # Closing the engine stream cancels the request there when it has not finished (stop string,
            # client gone); this is what frees its slot within one decoding step.
            await steps.aclose()  # type: ignore[attr-defined]
            self.active.discard(engine_id)
            ticket.release()
            record.completion_tokens = (record.completion_tokens or 0) + generated
            record.finish_reason = finish_reason
            m.completion_tokens.inc(generated - len(resumed))
            m.finished.labels(finish_reason=finish_reason).inc()

    async def complete(
        self, prepared: PreparedChat, ticket: Ticket, record: RequestRecord
    ) -> tuple[str, Finished, list[TokenLogprob] | None]:
        """The whole reply at once, with its tokens' logprobs when the request asked for them."""
        parts: list[str] = []
        logprobs: list[TokenLogprob] | None = [] if prepared.params.logprobs is not None else None
        finished = Finished("cancelled", len(prepared.prompt_ids), 0)
        async for event in self.run(prepared, ticket, record):
            if isinstance(event, TextDelta):
                parts.append(event.text)
                if logprobs is not None and event.logprobs:
                    logprobs.extend(event.logprobs)
            elif isinstance(event, Finished):
                finished = event
        return "".join(parts), finished, logprobs
