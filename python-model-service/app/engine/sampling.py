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
from typing import Any

import torch

from app.engine.base import SamplingParams, TokenLogprob
from app.engine.grammar import Grammar, GrammarMask

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
    # The request's grammar and its matcher (advanced by one token per decoding step); None: unconstrained.
    grammar: Grammar | None = None
    matcher: Any = None
    # What a constrained row is forced to once its grammar is complete and its stop token was chosen.
    stop_token: int = 0

    @classmethod
    def from_params(cls, params: SamplingParams, vocab_size: int = 0) -> RowSampler:
        """A sampler for ``params``; greedy requests need no generator.

        ``vocab_size`` is the width of a logits row, which a continued request (``params.resumed``) needs
        to replay its generator's draws.
        """
        gen = None
        temperature, top_p = 0.0, 1.0
        if params.temperature >= MIN_TEMPERATURE:
            gen = torch.Generator(device="cpu")
            gen.manual_seed(params.seed if params.seed is not None else _SYSTEM_RANDOM.getrandbits(63))
            temperature, top_p = params.temperature, params.top_p
        sampler = cls(temperature, top_p, gen, params.logprobs)
        if params.grammar is not None:
            sampler.grammar = params.grammar
            sampler.matcher = params.grammar.matcher()
            sampler.stop_token = next(iter(params.grammar.stop_token_ids), 0)
        if params.resumed:
            sampler.replay(params.resumed, vocab_size)
        return sampler

    def replay(self, tokens: tuple[int, ...], vocab_size: int) -> None:
        """Bring the sampler to where it was after deciding ``tokens``: the grammar past them, and the
        generator past one draw each.

        A draw (``torch.multinomial`` of one sample, see ``choose``) consumes the generator by the width of
        its row, whatever the probabilities, so drawing from a uniform row of the same width advances it
        exactly as the real draws did.
        """
        if self.matcher is not None:
            for token in tokens:
                if self.matcher.is_terminated() or not self.matcher.accept_token(token):
                    break
        if self.generator is not None and vocab_size > 0:
            uniform = torch.ones(vocab_size, dtype=torch.float32)
            for _ in tokens:
                torch.multinomial(uniform, 1, generator=self.generator)

    def decide(self, scores: torch.Tensor) -> int | None:
        """Like ``choose``, and records the chosen token's logprobs when the request asked for them."""
        token = self.choose(scores)
        self.record(scores, token if token is not None else int(torch.argmax(scores).item()))
        return token

    def record(self, scores: torch.Tensor, token: int) -> None:
        """Record ``token``'s logprobs under the raw ``scores`` when the request asked for them."""
        if self.logprobs is not None:
            self.recorded.append(token_logprob(scores, token, self.logprobs))

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


def decide_rows(scores: torch.Tensor, rows: list[tuple[int, RowSampler]], mask: GrammarMask) -> torch.Tensor:
    """Apply each row's own sampling and grammar: a row whose token is decided here gets a one-hot score row
    (0 for its token, -inf elsewhere), so that the engine's argmax picks it; the others are left alone."""
    constrained = [(row, s) for row, s in rows if s.matcher is not None]
    decided = dict(zip((row for row, _ in constrained), mask.choose(scores, constrained), strict=True))
    forced: list[tuple[int, int]] = []
    for row, sampler in rows:
        token = decided.get(row) if sampler.matcher is not None else sampler.decide(scores[row])
        if token is not None:
            forced.append((row, token))
    if not forced:
        return scores
    # two tensor operations for the whole batch, not two per row: a 32-row step forces up to 32 rows
    out = scores.clone()
    index = torch.tensor(forced, dtype=torch.long, device=scores.device)
    out.index_fill_(0, index[:, 0], float("-inf"))
    out[index[:, 0], index[:, 1]] = 0.0
    return out


class SamplerRegistry:
    """Maps the small integer slot carried through the batch to each request's sampler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._samplers: dict[int, RowSampler] = {}
        self._sampling = 0  # how many registered samplers draw at random (the rest are greedy)
        self._recording = 0  # how many registered samplers record logprobs
        self._constrained = 0  # how many registered samplers follow a grammar
        self.mask = GrammarMask()

    def add(self, params: SamplingParams, vocab_size: int = 0) -> int:
        """Register a request's sampler (``vocab_size``: the width of its logits rows) and return its slot."""
        sampler = RowSampler.from_params(params, vocab_size)
        with self._lock:
            self._next = (self._next + 1) % 2_000_000_000
            slot = self._next
            self._samplers[slot] = sampler
            self._sampling += sampler.generator is not None
            self._recording += sampler.logprobs is not None
            self._constrained += sampler.matcher is not None
            return slot

    def remove(self, slot: int) -> None:
        """Forget a finished request's sampler."""
        with self._lock:
            sampler = self._samplers.pop(slot, None)
            if sampler is not None:
                self._sampling -= sampler.generator is not None
                self._recording -= sampler.logprobs is not None
                self._constrained -= sampler.matcher is not None

    def get(self, slot: int) -> RowSampler | None:
        """The sampler of a slot, if it is still registered."""
        with self._lock:
            return self._samplers.get(slot)

    def __len__(self) -> int:
        return len(self._samplers)

    def apply(self, scores: torch.Tensor, slots: list[int]) -> torch.Tensor:
        """Force each sampled or constrained row to its chosen token so that argmax picks it; record
        asked-for logprobs."""
        if not self._sampling and not self._recording and not self._constrained:
            return scores  # an all-greedy batch without logprobs or grammars: argmax is already the answer
        with self._lock:
            rows = [(row, s) for row, slot in enumerate(slots) if (s := self._samplers.get(slot)) is not None]
        return decide_rows(scores, rows, self.mask)
