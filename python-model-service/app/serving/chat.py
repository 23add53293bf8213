"""The chat pipeline: validate -> chat template -> admit -> engine -> detokenize -> stop strings.

``ChatService`` is the front the HTTP handlers use; admission (``admission.py``), the generation
run (``generation.py``) and the access-log record (``record.py``) each have their own module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.core.config import Settings
from app.core.ids import random_hex
from app.engine.base import Engine, SamplingParams, TokenLogprob
from app.engine.grammar import Grammar
from app.protocol import ChatMessage
from app.serving.admission import Admission, Ticket
from app.serving.errors import ApiError, invalid
from app.serving.generation import Finished, Generation, PreparedChat, Replayed, TextDelta
from app.serving.logprobs import TokenTexts
from app.serving.metrics import ServiceMetrics
from app.serving.record import RequestRecord
from app.serving.structured import StructuredOutputs
from app.serving.tools import NO_TOOLS, ToolPlan, template_messages, template_tool_format

__all__ = ["ChatService", "Finished", "PreparedChat", "RequestRecord", "TextDelta", "Ticket", "new_id"]

MAX_STOP_STRINGS = 8


class ChatService:
    """Everything between an HTTP handler and the engine."""

    def __init__(self, engine: Engine, settings: Settings, metrics: ServiceMetrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.model_id = engine.model_id  # resolved once, by the loader (served_model_name)
        self.max_model_len = min(settings.max_model_len or engine.max_model_len, engine.max_model_len)
        self.admission = Admission(engine, settings, metrics)
        metrics.prefix_enabled.set(1 if engine.prefix_caching else 0)
        metrics.engine.info({"engine": engine.kind, "attention": engine.attention})
        self.generation = Generation(engine, settings, metrics)
        self.token_texts = TokenTexts(engine.tokenizer)
        # How this model writes tool calls, read from its chat template (None: it cannot).
        self.tool_format = template_tool_format(getattr(engine.tokenizer, "chat_template", None))
        # response_format and tool-call grammars, compiled for this model's tokenizer
        self.structured = StructuredOutputs(engine.tokenizer, engine.vocab_size, engine.eos_token_ids)

    @property
    def queued(self) -> int:
        return self.admission.queued

    @property
    def running(self) -> int:
        return self.admission.running

    @property
    def draining(self) -> bool:
        return self.admission.draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self.admission.draining = value

    def admit(self) -> Ticket:
        """A place in the queue, or 503 with Retry-After when it is full or the service is draining."""
        return self.admission.admit()

    def update_gauges(self) -> None:
        self.admission.update_gauges()

    def abort_all(self) -> int:
        """End every in-flight generation now (finish_reason ``cancelled``); returns how many."""
        return self.generation.abort_all()

    def run(
        self, prepared: PreparedChat, ticket: Ticket, record: RequestRecord
    ) -> AsyncIterator[TextDelta | Replayed | Finished]:
        """Generate the reply as text deltas followed by one ``Finished``."""
        return self.generation.run(prepared, ticket, record)

    async def complete(
        self, prepared: PreparedChat, ticket: Ticket, record: RequestRecord
    ) -> tuple[str, Finished, list[TokenLogprob] | None]:
        """The whole reply at once, with its tokens' logprobs when the request asked for them."""
        return await self.generation.complete(prepared, ticket, record)

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
        logprobs: int | None = None,
        tools: ToolPlan = NO_TOOLS,
        grammar: Grammar | None = None,
        resumed: list[int] | None = None,
    ) -> PreparedChat:
        """Validate a chat request against the model and turn it into engine input.

        ``resumed``: the tokens of a partial answer to continue (``continue_token_ids``), which count
        against ``max_tokens``.
        """
        plain = template_messages(messages)
        if not any(m["role"] == "user" for m in plain):
            raise invalid("messages must contain at least one user message", "messages")
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if len(stops) > MAX_STOP_STRINGS:
            raise invalid(f"at most {MAX_STOP_STRINGS} stop strings are allowed", "stop")
        if any(not s for s in stops):
            raise invalid("stop strings must not be empty", "stop")
        try:
            prompt_ids = self.engine.encode_chat(plain, tools.render)
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
        resumed = resumed or []
        if resumed:
            if any(t >= self.engine.vocab_size for t in resumed):
                raise invalid("continue_token_ids holds ids outside the vocabulary", "continue_token_ids")
            if len(resumed) >= max_tokens:
                raise invalid(
                    f"continue_token_ids holds {len(resumed)} tokens, but max_tokens is {max_tokens}: "
                    "nothing is left to generate",
                    "continue_token_ids",
                )
        params = SamplingParams(
            max_new_tokens=max_tokens - len(resumed),
            temperature=self.engine.default_temperature if temperature is None else temperature,
            top_p=self.engine.default_top_p if top_p is None else top_p,
            seed=seed,
            ignore_eos=ignore_eos,
            logprobs=logprobs,
            grammar=grammar,
            resumed=tuple(resumed),
        )
        return PreparedChat(request_id, prompt_ids, params, stops, plain, tools)


def new_id(prefix: str) -> str:
    """An OpenAI-style object id."""
    return f"{prefix}-{random_hex(24)}"
