"""Token logprobs for the client: which chunk reports which token, and each token's text and bytes."""

from __future__ import annotations

import math
from collections import deque
from functools import lru_cache
from typing import Any

from tokenizers import decoders

from app.engine.base import TokenLogprob

# JSON has no -inf; OpenAI reports tokens the model rules out with this value instead.
MIN_LOGPROB = -9999.0


class LogprobAligner:
    """Holds each token's logprobs until the text it produced reaches the client.

    A token whose text the detokenizer holds back (part of a UTF-8 character) joins the next token that
    completes text; text held back by stop-string matching releases its tokens when it goes out. Tokens
    whose text a stop string cut off entirely are never reported.
    """

    def __init__(self, unreported: int = 0) -> None:
        """``unreported``: characters still to go out that tokens without entries here produced (a continued
        answer's held-back text, whose tokens were decoded elsewhere)."""
        self._incomplete: list[TokenLogprob] = []  # fed, no text of their own yet
        self._produced = unreported  # characters of text the tokens fed so far produced
        self._emitted = 0  # characters of that text sent to the client
        self._pending: deque[tuple[int, int, TokenLogprob]] = deque()  # (text start, text end, entry)

    def feed(self, entry: TokenLogprob, text: str) -> None:
        """A token and the text the detokenizer produced for it (empty while a character is incomplete)."""
        self._incomplete.append(entry)
        if text:
            start, self._produced = self._produced, self._produced + len(text)
            self._pending.extend((start, self._produced, e) for e in self._incomplete)
            self._incomplete.clear()

    def emit(self, chars: int) -> list[TokenLogprob]:
        """``chars`` more characters went out: the tokens whose text is now wholly sent."""
        self._emitted += chars
        out: list[TokenLogprob] = []
        while self._pending and self._pending[0][1] <= self._emitted:
            out.append(self._pending.popleft()[2])
        return out

    def cut(self) -> list[TokenLogprob]:
        """A stop string ended the text: the tokens that put any text out, the rest are dropped."""
        out = [e for start, _, e in self._pending if start < self._emitted]
        self._pending.clear()
        self._incomplete.clear()
        return out

    def flush(self) -> list[TokenLogprob]:
        """Generation ended without a stop string and everything went out: every token left."""
        out = [e for _, _, e in self._pending] + self._incomplete
        self._pending.clear()
        self._incomplete.clear()
        return out


def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's byte-to-printable-character map, which byte-level BPE vocabularies use."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


class TokenTexts:
    """A token id's text and raw UTF-8 bytes as OpenAI reports them, also for part of a character."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None)
        byte_level = backend is not None and isinstance(backend.decoder, decoders.ByteLevel)
        self._byte_decoder = _byte_decoder() if byte_level else None
        self.lookup = lru_cache(maxsize=65536)(self._lookup)

    def _lookup(self, token_id: int) -> tuple[str, list[int]]:
        raw: bytes | None = None
        if self._byte_decoder is not None:
            piece = self._tokenizer.convert_ids_to_tokens(token_id)
            if isinstance(piece, str) and all(c in self._byte_decoder for c in piece):
                raw = bytes(self._byte_decoder[c] for c in piece)
        if raw is None:  # other tokenizers: what the token decodes to on its own
            raw = str(self._tokenizer.decode([token_id])).encode("utf-8")
        # a token with part of a character shows its bytes as \\xNN escapes, as OpenAI's do
        return raw.decode("utf-8", errors="backslashreplace"), list(raw)

    def entry(self, token_id: int, logprob: float) -> dict[str, Any]:
        """``{"token", "logprob", "bytes"}`` for one token."""
        text, raw = self.lookup(token_id)
        value = logprob if math.isfinite(logprob) else MIN_LOGPROB
        return {"token": text, "logprob": max(value, MIN_LOGPROB), "bytes": raw}

    def content(self, entries: list[TokenLogprob]) -> list[dict[str, Any]]:
        """OpenAI's ``logprobs.content`` list for these tokens."""
        out = []
        for e in entries:
            item = self.entry(e.token_id, e.logprob)
            item["top_logprobs"] = [self.entry(tid, lp) for tid, lp in e.top]
            out.append(item)
        return out
