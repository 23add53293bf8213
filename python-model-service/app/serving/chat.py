"""The chat pipeline: validate -> chat template -> admit -> engine -> detokenize -> stop strings."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from app.core.config import Settings
from app.core.ids import random_hex
from app.engine.base import Engine, SamplingParams
from app.protocol import ChatMessage
from app.serving.detokenize import IncrementalDetokenizer
from app.serving.errors import ApiError, invalid, overloaded
from app.serving.metrics import ServiceMetrics
from app.serving.stop import StopMatcher

log = logging.getLogger("app.serving")

MAX_STOP_STRINGS = 8


@dataclass
class PreparedChat:
    """A validated request, ready for the engine."""

    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    stops: list[str]
    messages: list[dict[str, str]]


@dataclass
class TextDelta:
    """New text for the client."""

    text: str


@dataclass
class Finished:
    """The end of a generation, with its counts."""

    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None


@dataclass
class RequestRecord:
    """What the access log line reports about a request; filled in as the request goes."""

    request_id: str
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    finish_reason: str | None = None
    prompt_text: str | None = None
    reply_text: list[str] = field(default_factory=list)


class Ticket:
    """One admitted request's place in the queue; released exactly once."""

    def __init__(self, service: ChatService) -> None:
        self._service = service
        self.admitted_at = time.perf_counter()
        self.started = False
        self.released = False

    def mark_started(self) -> None:
        """The first engine step arrived: the request moves from queued to running."""
        if not self.started and not self.released:
            self.started = True
            self._service.queued -= 1
            self._service.running += 1
            self._service.update_gauges()

    def release(self) -> None:
        """Leave the queue or the running set."""
        if self.released:
            return
        self.released = True
        if self.started:
            self._service.running -= 1
        else:
            self._service.queued -= 1
        self._service.update_gauges()


class ChatService:
    """Everything between an HTTP handler and the engine."""

    def __init__(self, engine: Engine, settings: Settings, metrics: ServiceMetrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.model_id = engine.model_id  # resolved once, by the loader (served_model_name)
        self.max_model_len = min(settings.max_model_len or engine.max_model_len, engine.max_model_len)
        self.queued = 0
        self.running = 0
        self.draining = False
        self._active: set[str] = set()

    def abort_all(self) -> int:
        """End every in-flight generation now (finish_reason ``cancelled``); returns how many."""
        active = list(self._active)
        for engine_id in active:
            self.engine.abort(engine_id)
        return len(active)

    def update_gauges(self) -> None:
        """Refresh the queue and running gauges (service and engine views)."""
        self.metrics.queue_depth.set(self.queued)
        self.metrics.running.set(self.running)
        stats = self.engine.stats()
        self.metrics.engine_running.set(stats.running)
        self.metrics.engine_waiting.set(stats.waiting)

    def check_model(self, model: str | None) -> None:
        """404 for a model this service does not serve."""
        if model is not None and model != self.model_id:
            raise ApiError(
                404,
                f"The model '{model}' does not exist; this service serves '{self.model_id}'",
                param="model",
                code="model_not_found",
            )

    def prepare(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int | None,
        temperature: float | None,
        top_p: float | None,
        seed: int | None,
        stop: str | list[str] | None,
        ignore_eos: bool,
        request_id: str,
    ) -> PreparedChat:
        """Validate a chat request against the model and turn it into engine input."""
        plain = [{"role": m.role, "content": m.content} for m in messages]
        if not any(m["role"] == "user" for m in plain):
            raise invalid("messages must contain at least one user message", "messages")
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if len(stops) > MAX_STOP_STRINGS:
            raise invalid(f"at most {MAX_STOP_STRINGS} stop strings are allowed", "stop")
        if any(not s for s in stops):
            raise invalid("stop strings must not be empty", "stop")
        try:
            prompt_ids = self.engine.encode_chat(plain)
        except Exception as exc:
            raise invalid(f"the chat template rejected these messages: {exc}", "messages") from exc
        prompt_len = len(prompt_ids)
        limit = self.max_model_len
        if prompt_len >= limit:
            raise invalid(
                f"The prompt is {prompt_len} tokens long, but this model's maximum context length "
                f"(max_model_len) is {limit} tokens.",
                "messages",
                code="context_length_exceeded",
            )
        room = limit - prompt_len
        if max_tokens is None:
            max_tokens = min(self.settings.default_max_tokens, room)
        elif max_tokens > room:
            raise invalid(
                f"max_tokens is {max_tokens}, but the prompt is {prompt_len} tokens and max_model_len is "
                f"{limit}: at most {room} tokens can be generated.",
                "max_tokens",
                code="context_length_exceeded",
            )
        params = SamplingParams(
            max_new_tokens=max_tokens,
            temperature=self.engine.default_temperature if temperature is None else temperature,
            top_p=self.engine.default_top_p if top_p is None else top_p,
            seed=seed,
            ignore_eos=ignore_eos,
        )
        return PreparedChat(request_id, prompt_ids, params, stops, plain)

    def admit(self) -> Ticket:
        """A place in the queue, or 503 with Retry-After when it is full or the service is draining."""
        retry = self.settings.retry_after_s
        if self.draining:
            raise overloaded("The service is shutting down", retry)
        if not self.engine.healthy():
            raise overloaded("The inference engine is not running", retry)
        if self.queued >= self.settings.max_queued_requests:
            self.metrics.rejected.inc()
            raise overloaded("The request queue is full; retry later", retry)
        self.queued += 1
        self.update_gauges()
        return Ticket(self)

    def run(
        self, prepared: PreparedChat, ticket: Ticket, record: RequestRecord
    ) -> AsyncIterator[TextDelta | Finished]:
        """Generate the reply as text deltas followed by one ``Finished``."""
        gen = self._run(prepared, ticket, record)
        # A stream the server never starts iterating must still give back its queue place.
        weakref.finalize(gen, ticket.release)
        return gen

    async def _run(
        self, prepared: PreparedChat, ticket: Ticket, record: RequestRecord
    ) -> AsyncIterator[TextDelta | Finished]:
        m = self.metrics
        record.model = self.model_id
        record.prompt_tokens = len(prepared.prompt_ids)
        if self.settings.log_prompts:
            record.prompt_text = repr(prepared.messages)
        m.prompt_tokens.inc(len(prepared.prompt_ids))
        detok = IncrementalDetokenizer(self.engine.tokenizer, skip_ids=self.engine.eos_token_ids)
        matcher = StopMatcher(prepared.stops)
        engine_id = f"{prepared.request_id}-{random_hex(8)}"
        steps = self.engine.generate(engine_id, prepared.prompt_ids, prepared.params)
        generated = 0
        first_text_at: float | None = None
        last_token_at: float | None = None
        finish_reason = "cancelled"
        error: str | None = None
        self._active.add(engine_id)
        try:
            try:
                async for step in steps:
                    now = time.perf_counter()
                    if not ticket.started:
                        ticket.mark_started()
                        m.queue_time.observe(now - ticket.admitted_at)
                    if step.token_ids and last_token_at is not None:
                        per_token = (now - last_token_at) / len(step.token_ids)
                        for _ in step.token_ids:
                            m.tpot.observe(per_token)
                    if step.token_ids:
                        last_token_at = now
                    # one delta per engine step: a step carries several tokens when the client fell behind
                    parts: list[str] = []
                    for token in step.token_ids:
                        generated += 1
                        text = matcher.feed(detok.step(token))
                        if text:
                            parts.append(text)
                        if matcher.stopped:
                            break
                    if parts:
                        text = "".join(parts)
                        if first_text_at is None:
                            first_text_at = now
                            record.ttft_s = now - ticket.admitted_at
                            m.ttft.observe(record.ttft_s)
                        if self.settings.log_prompts:
                            record.reply_text.append(text)
                        yield TextDelta(text)
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
                if tail:
                    yield TextDelta(tail)
            if finish_reason == "error":
                log.error("event=engine_error request_id=%s detail=%r", prepared.request_id, error)
            yield Finished(finish_reason, len(prepared.prompt_ids), generated, error)
        finally:
            # Closing the engine stream cancels the request there when it has not finished (stop string,
            # client gone); this is what frees its slot within one decoding step.
            await steps.aclose()  # type: ignore[attr-defined]
            self._active.discard(engine_id)
            ticket.release()
            record.completion_tokens = generated
            record.finish_reason = finish_reason
            m.completion_tokens.inc(generated)
            m.finished.labels(finish_reason=finish_reason).inc()

    async def complete(
        self, prepared: PreparedChat, ticket: Ticket, record: RequestRecord
    ) -> tuple[str, Finished]:
        """The whole reply at once."""
        parts: list[str] = []
        finished = Finished("cancelled", len(prepared.prompt_ids), 0)
        async for event in self.run(prepared, ticket, record):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            else:
                finished = event
        return "".join(parts), finished


def new_id(prefix: str) -> str:
    """An OpenAI-style object id."""
    return f"{prefix}-{random_hex(24)}"
