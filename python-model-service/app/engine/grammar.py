"""Grammar-constrained decoding on the engine's side: compiled grammars, and the batch's token mask.

A request's ``SamplingParams.grammar`` carries a grammar compiled by xgrammar for this model's tokenizer
(``app.serving.structured`` builds them). Each constrained request gets its own matcher; every decoding
step, ``GrammarMask`` fills the allowed-token bitmask of the batch's constrained rows into one
preallocated tensor, picks each row's token under its mask and advances the matchers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import xgrammar as xgr

if TYPE_CHECKING:
    from app.engine.sampling import RowSampler

log = logging.getLogger("app.engine")


@dataclass(frozen=True, eq=False)
class Grammar:
    """A grammar a request's output must match, compiled for the serving model's tokenizer."""

    compiled: xgr.CompiledGrammar
    # What the grammar is, for logs: "json_object", "json_schema 'name'", "tool call".
    description: str

    def matcher(self) -> xgr.GrammarMatcher:
        """A fresh matcher at the grammar's start; it allows a stop token once the grammar is complete."""
        return xgr.GrammarMatcher(self.compiled)

    @property
    def stop_token_ids(self) -> list[int]:
        """The tokens that end a reply once the grammar is complete."""
        return list(self.compiled.tokenizer_info.stop_token_ids)


class GrammarMask:
    """Chooses the tokens of a batch's constrained rows: fill their bitmask, mask, pick, advance.

    One per engine, used on the engine thread only. It also keeps the time this work takes, so that
    its cost per token can be reported (``seconds`` / ``tokens``).
    """

    def __init__(self) -> None:
        self._bitmask: torch.Tensor | None = None
        self.seconds = 0.0
        self.tokens = 0

    def _rows(self, count: int, vocab_size: int) -> torch.Tensor:
        """The preallocated bitmask, grown when a batch has more constrained rows than any before."""
        words = (vocab_size + 31) // 32
        bitmask = self._bitmask
        if bitmask is None or bitmask.shape[0] < count or bitmask.shape[1] != words:
            rows = max(count, 16, bitmask.shape[0] if bitmask is not None else 0)
            bitmask = self._bitmask = xgr.allocate_token_bitmask(rows, vocab_size)
        return bitmask

    def choose(self, scores: torch.Tensor, rows: list[tuple[int, RowSampler]]) -> list[int | None]:
        """The token of each ``(row, sampler)`` under its grammar, with its matcher advanced past it.

        ``scores`` are the batch's raw logits. A greedy row whose raw argmax the grammar allows keeps it (the
        masked argmax is the same token) without masking its row, and gets None: the engine's own argmax
        picks it. The other rows are masked in one call and decided on the masked scores. Logprobs are
        recorded from the raw scores, as for any request.
        """
        start = time.perf_counter()
        bitmask = self._rows(len(rows), scores.shape[-1])
        bits = bitmask.numpy()
        tokens: list[int | None] = [None] * len(rows)
        for i, (_, sampler) in enumerate(rows):
            matcher = sampler.matcher
            if matcher.is_terminated():
                # the reply is complete (its stop token was chosen): nothing but the end may follow
                tokens[i] = sampler.stop_token
            else:
                matcher.fill_next_token_bitmask(bitmask, i)
        greedy = [i for i, (_, s) in enumerate(rows) if s.generator is None and tokens[i] is None]
        unforced: set[int] = set()
        if greedy:
            raw = scores[[rows[i][0] for i in greedy]].argmax(dim=-1).tolist()
            for i, token in zip(greedy, raw, strict=True):
                if (int(bits[i, token >> 5]) >> (token & 31)) & 1:
                    tokens[i] = token
                    unforced.add(i)
        masked_rows = [i for i, t in enumerate(tokens) if t is None]
        if masked_rows:
            masked = scores[[rows[i][0] for i in masked_rows]].float()
            row_bits = bitmask[masked_rows].to(scores.device, non_blocking=True)
            xgr.apply_token_bitmask_inplace(masked, row_bits)
            for j, i in enumerate(masked_rows):
                sampler = rows[i][1]
                choice = sampler.choose(masked[j])
                tokens[i] = int(masked[j].argmax().item()) if choice is None else choice
        chosen = [int(t) for t in tokens if t is not None]
        for i, (row, sampler) in enumerate(rows):
            matcher = sampler.matcher
            if not matcher.is_terminated() and not matcher.accept_token(chosen[i]):
                # Only a grammar with no allowed token at all gets here: end the reply rather than let
                # it go on unconstrained.
                what = sampler.grammar.description if sampler.grammar else ""
                log.error("event=grammar_dead_end grammar=%r token=%d", what, chosen[i])
                chosen[i] = sampler.stop_token
                unforced.discard(i)
            sampler.record(scores[row], chosen[i])
        self.seconds += time.perf_counter() - start
        self.tokens += len(rows)
        return [None if i in unforced else t for i, t in enumerate(chosen)]


def tokenizer_info(tokenizer: Any, vocab_size: int, stop_token_ids: list[int]) -> xgr.TokenizerInfo:
    """xgrammar's view of a Hugging Face tokenizer, with logits rows ``vocab_size`` wide."""
    return xgr.TokenizerInfo.from_huggingface(
        tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids or None
    )
