"""Per-request sampling with its own seeded generator, shared by both engines.

Continuous batching samples every row from one global RNG, so a request's output would depend on
its neighbours and seeds could not be honoured; and its per-request temperature divides by zero
for greedy requests. Instead the engines decode with argmax and this module turns each sampled
row into a one-hot score row, drawn from the request's own ``torch.Generator``.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field

import torch

from app.engine.base import SamplingParams, TokenLogprob

_SYSTEM_RANDOM = random.SystemRandom()

# Below this a temperature decodes as argmax anyway, and dividing scores by it can overflow to inf
# (which would poison the whole batch): such requests are decoded greedily.
MIN_TEMPERATURE = 1e-4


@dataclass
class RowSampler:
    """The sampling state of one request."""

    temperature: float
    top_p: float
    generator: torch.Generator | None
    # None: the request did not ask for logprobs; else how many alternatives it wants per token.
    logprobs: int | None = None
    # Filled on the engine thread, one entry per decoded token, drained by the request's consumer.
    recorded: deque[TokenLogprob] = field(default_factory=deque)

    @classmethod
    def from_params(cls, params: SamplingParams) -> RowSampler:
        """A sampler for ``params``; greedy requests need no generator."""
        if params.temperature < MIN_TEMPERATURE:
            return cls(0.0, 1.0, None, params.logprobs)
        gen = torch.Generator(device="cpu")
        gen.manual_seed(params.seed if params.seed is not None else _SYSTEM_RANDOM.getrandbits(63))
        return cls(params.temperature, params.top_p, gen, params.logprobs)

    def decide(self, scores: torch.Tensor) -> int | None:
        """Like ``choose``, and records the chosen token's logprobs when the request asked for them."""
        token = self.choose(scores)
        if self.logprobs is not None:
            chosen = token if token is not None else int(torch.argmax(scores).item())
            self.recorded.append(token_logprob(scores, chosen, self.logprobs))
        return token

    def take(self, count: int) -> list[TokenLogprob]:
        """The oldest ``count`` recorded entries (fewer only if the engine recorded fewer)."""
        return [self.recorded.popleft() for _ in range(min(count, len(self.recorded)))]

    def choose(self, scores: torch.Tensor) -> int | None:
        """The sampled token for a 1-D score row, or None for greedy (argmax applies)."""
        if self.generator is None:
            return None
        probs = torch.softmax(scores.float().cpu() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            # keep the smallest prefix whose mass reaches top_p; the first token always stays, also
            # when top_p is too small for float32 and compares as 0
            drop = cumulative - sorted_probs >= self.top_p
            drop[0] = False
            sorted_probs = sorted_probs.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
        return int(torch.multinomial(probs, 1, generator=self.generator).item())


def token_logprob(scores: torch.Tensor, token: int, top: int) -> TokenLogprob:
    """``token``'s log-probability and the ``top`` likeliest tokens for a 1-D row of raw logits.

    As OpenAI does, these are the model's own distribution: the log-softmax of the raw logits, before
    temperature and top_p, so they do not depend on how the request samples.
    """
    logp = torch.log_softmax(scores.float(), dim=-1)
    best: tuple[tuple[int, float], ...] = ()
    if top:
        values, ids = torch.topk(logp, min(top, logp.numel()))  # sorted, likeliest first
        best = tuple(zip(ids.tolist(), values.tolist(), strict=True))
    return TokenLogprob(token, float(logp[token].item()), best)


class SamplerRegistry:
    """Maps the small integer slot carried through the batch to each request's sampler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._samplers: dict[int, RowSampler] = {}
        self._sampling = 0  # how many registered samplers draw at random (the rest are greedy)
        self._recording = 0  # how many registered samplers record logprobs

    def add(self, params: SamplingParams) -> int:
        """Register a request's sampler and return its slot."""
        with self._lock:
            self._next = (self._next + 1) % 2_000_000_000
            slot = self._next
            sampler = self._samplers[slot] = RowSampler.from_params(params)
            self._sampling += sampler.generator is not None
            self._recording += sampler.logprobs is not None
            return slot

    def remove(self, slot: int) -> None:
        """Forget a finished request's sampler."""
        with self._lock:
            sampler = self._samplers.pop(slot, None)
            self._sampling -= sampler is not None and sampler.generator is not None
            self._recording -= sampler is not None and sampler.logprobs is not None

    def get(self, slot: int) -> RowSampler | None:
        """The sampler of a slot, if it is still registered."""
        with self._lock:
            return self._samplers.get(slot)

    def __len__(self) -> int:
        return len(self._samplers)

    def apply(self, scores: torch.Tensor, slots: list[int]) -> torch.Tensor:
        """Force each sampled row to its drawn token so that argmax picks it; record asked-for logprobs."""
        if not self._sampling and not self._recording:
            return scores  # an all-greedy batch without logprobs: argmax is already the answer
        out = scores
        for row, slot in enumerate(slots):
            sampler = self.get(slot)
            if sampler is None:
                continue
            token = sampler.decide(scores[row])
            if token is None:
                continue
            if out is scores:
                out = scores.clone()
            out[row].fill_(float("-inf"))
            out[row, token] = 0.0
        return out
