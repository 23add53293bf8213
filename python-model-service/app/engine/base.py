"""The engine interface shared by the continuous-batching and plain-generate engines."""

from __future__ import annotations

import abc
import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from app.engine.grammar import Grammar

FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(frozen=True)
class SamplingParams:
    """How one request is decoded; temperature 0 means greedy."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    ignore_eos: bool = False
    # None: no log-probabilities; k >= 0: each token's logprob and the k likeliest alternatives.
    logprobs: int | None = None
    # The grammar the output must match (structured outputs, tool calls); None: unconstrained. A grammar
    # decides where the reply ends: the end-of-sequence token is allowed once it is complete and is then
    # the only token allowed, whatever ``ignore_eos`` says.
    grammar: Grammar | None = None
    # A continued answer's tokens, generated before (by this request on another replica) and placed at the
    # end of the prompt: the sampler replays its draws and the grammar over them, so that the continuation
    # goes on as the uninterrupted request would have. ``max_new_tokens`` counts only the new ones.
    resumed: tuple[int, ...] = ()

    @property
    def stops_at_eos(self) -> bool:
        """True when the end-of-sequence token ends the reply."""
        return not self.ignore_eos or self.grammar is not None


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token's log-probability and the likeliest alternatives, as (token id, logprob)."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass
class EngineStep:
    """What one decoding step produced for a request: the new token ids, and the end when it came."""

    token_ids: list[int]
    finish_reason: FinishReason | None = None
    error: str | None = None
    # On a request's first step: how many prompt tokens came from the prefix cache instead of being computed.
    cached_tokens: int = 0
    # One entry per token of ``token_ids`` when the request asked for logprobs, else None.
    logprobs: list[TokenLogprob] | None = None


@dataclass
class EngineStats:
    """A snapshot of the engine's own bookkeeping."""

    running: int
    waiting: int
    tracked: int
    # Grammar-constrained tokens decided so far, and the seconds spent masking them (fill, apply, advance).
    constrained_tokens: int = 0
    mask_seconds: float = 0.0


class EngineError(RuntimeError):
    """The engine could not take or finish a request."""


class Engine(abc.ABC):
    """Turns prompt token ids into a stream of generated token ids, many requests at once."""

    kind: str = "abstract"
    # True when prompts that share a prefix with earlier ones reuse its cache instead of recomputing it.
    prefix_caching: bool = False

    def __init__(self, model: Any, tokenizer: Any, model_id: str, max_model_len: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.max_model_len = max_model_len
        # The attention implementation the model runs with (transformers' name, or ours: ``varlen``).
        self.attention = str(getattr(model.config, "_attn_implementation", None) or "eager")
        self.eos_token_ids = _eos_ids(model, tokenizer)
        # The width of a logits row, which may exceed the tokenizer's length (padded output layers).
        self.vocab_size = _vocab_size(model, tokenizer)
        gen = getattr(model, "generation_config", None)
        do_sample = bool(getattr(gen, "do_sample", False))
        # Requests that leave temperature/top_p unset get the model's own recommended values.
        self.default_temperature = float(getattr(gen, "temperature", None) or 1.0) if do_sample else 0.0
        self.default_top_p = float(getattr(gen, "top_p", None) or 1.0) if do_sample else 1.0
        self._finished: dict[str, str] = {}
        # Called (from any thread) with (request_id, how) whenever the engine releases a request.
        self.finish_listeners: list[Callable[[str, str], None]] = []
        self._finish_waiters: dict[str, list[asyncio.Future[str]]] = {}

    @abc.abstractmethod
    def start(self) -> None:
        """Start the background decoding loop."""

    async def warmup(self) -> None:
        """Run short generations so the first real request does not pay for lazy initialisation."""
        prompt = self.encode_chat([{"role": "user", "content": "hello"}])

        async def one(temperature: float) -> None:
            params = SamplingParams(32, temperature=temperature, top_p=0.9, seed=0, ignore_eos=True)
            async for _ in self.generate(f"warmup-{uuid.uuid4().hex}", prompt, params):
                pass

        # a batch of two, greedy and sampled, a few dozen steps: the paths real traffic takes first
        await asyncio.gather(one(0.0), one(0.7))

    @abc.abstractmethod
    def stop(self, timeout: float | None = None) -> None:
        """Stop the decoding loop; in-flight requests end with an error."""

    @abc.abstractmethod
    def generate(
        self, request_id: str, prompt_ids: list[int], params: SamplingParams
    ) -> AsyncIterator[EngineStep]:
        """Stream the steps of one request; closing the iterator early cancels the request."""

    @abc.abstractmethod
    def healthy(self) -> bool:
        """True while the decoding loop is alive and can take requests."""

    @abc.abstractmethod
    def abort(self, request_id: str) -> None:
        """End a request early from any thread: its stream yields a last ``cancelled`` step."""

    @abc.abstractmethod
    def stats(self) -> EngineStats:
        """Counts of running, waiting and tracked requests."""

    def encode_chat(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> list[int]:
        """Render messages and tools with the tokenizer's chat template (plain concatenation without one)."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
            return self.encode_text(str(text), add_special_tokens=False)  # the template has them
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        return self.encode_text(text, add_special_tokens=True)

    def encode_text(self, text: str, add_special_tokens: bool) -> list[int]:
        """Token ids of ``text``.

        A fast tokenizer's own ``encode`` is called directly. The Python tokenizer's ``__call__``
        goes through ``encode_batch``, which releases the GIL; the engine thread then takes it, and
        the event loop waits milliseconds to get it back, on every request.
        """
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            return list(backend.encode(text, add_special_tokens=add_special_tokens).ids)
        return [int(i) for i in self.tokenizer.encode(text, add_special_tokens=add_special_tokens)]

    def _record_finish(self, request_id: str, reason: str) -> None:
        """Remember how a request left the engine (kept bounded) and wake whoever waits for it."""
        self._finished[request_id] = reason
        if len(self._finished) > 1024:
            self._finished.pop(next(iter(self._finished)))
        for listener in list(self.finish_listeners):
            listener(request_id, reason)
        for fut in self._finish_waiters.pop(request_id, []):
            fut.get_loop().call_soon_threadsafe(_set_result_once, fut, reason)

    async def wait_finished(self, request_id: str) -> str:
        """Wait until the engine has released a request; returns how it ended."""
        if request_id in self._finished:
            return self._finished[request_id]
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._finish_waiters.setdefault(request_id, []).append(fut)
        if request_id in self._finished:  # finished while registering
            return self._finished[request_id]
        return await fut


def _set_result_once(fut: asyncio.Future[str], value: str) -> None:
    if not fut.done():
        fut.set_result(value)


def _vocab_size(model: Any, tokenizer: Any) -> int:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    if weight is not None:
        return int(weight.shape[0])
    return int(getattr(model.config, "vocab_size", None) or len(tokenizer))


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None), tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    return ids
