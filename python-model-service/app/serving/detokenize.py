"""Incremental detokenization that never emits part of a UTF-8 character."""

from __future__ import annotations

from typing import Any

from tokenizers.decoders import DecodeStream

REPLACEMENT = "\ufffd"


class IncrementalDetokenizer:
    """Token ids in, text deltas out; uses ``tokenizers``' DecodeStream when the tokenizer is a fast one."""

    def __init__(self, tokenizer: Any, skip_ids: set[int] | None = None) -> None:
        self._tokenizer = tokenizer
        self._skip = skip_ids or set()
        self._backend = getattr(tokenizer, "backend_tokenizer", None)
        self._stream = DecodeStream(skip_special_tokens=True) if self._backend is not None else None
        self._ids: list[int] = []
        self._emitted = ""

    def step(self, token_id: int) -> str:
        """The text that ``token_id`` completes; empty while a character is still incomplete."""
        if token_id in self._skip:
            return ""
        if self._stream is not None:
            return self._stream.step(self._backend, token_id) or ""  # type: ignore[arg-type]
        # Slow tokenizers: decode everything so far and emit the stable suffix.
        self._ids.append(token_id)
        text = self._tokenizer.decode(self._ids, skip_special_tokens=True)
        if text.endswith(REPLACEMENT):
            return ""
        if not text.startswith(self._emitted):
            return ""
        delta, self._emitted = text[len(self._emitted) :], text
        return delta
