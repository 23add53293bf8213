"""Which chunk reports which token's logprobs, and how a token's text and bytes are shown."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer

from app.engine.base import TokenLogprob
from app.engine.sampling import token_logprob
from app.serving.logprobs import MIN_LOGPROB, LogprobAligner, TokenTexts
from app.serving.stop import StopMatcher


def lp(token_id: int) -> TokenLogprob:
    return TokenLogprob(token_id, -0.5)


def ids(entries: list[TokenLogprob]) -> list[int]:
    return [e.token_id for e in entries]


def test_a_token_with_part_of_a_character_goes_out_with_the_token_that_completes_it() -> None:
    a = LogprobAligner()
    a.feed(lp(1), "")  # first bytes of a character: no text yet
    assert a.emit(0) == []
    a.feed(lp(2), "你")
    assert ids(a.emit(1)) == [1, 2]


def test_text_held_back_for_a_stop_string_releases_its_tokens_when_it_goes_out() -> None:
    a, m = LogprobAligner(), StopMatcher(["END"])
    out: list[list[int]] = []
    for token, text in [(1, "ok"), (2, " E"), (3, "x")]:
        a.feed(lp(token), text)
        out.append(ids(a.emit(len(m.feed(text)))))
    # " E" could begin "END": token 2 waits until "x" shows it does not
    assert out == [[1], [], [2, 3]]


def test_tokens_a_stop_string_cut_are_not_reported() -> None:
    a, m = LogprobAligner(), StopMatcher(["END"])
    released: list[int] = []
    for token, text in [(1, "ok"), (2, " E"), (3, "ND"), (4, "!")]:
        a.feed(lp(token), text)
        emitted = m.feed(text)
        released += ids(a.emit(len(emitted)))
        if m.stopped:
            released += ids(a.cut())
            break
    # " E" put its space out before the stop string began; "ND" and "!" never reached the client
    assert released == [1, 2]


def test_flush_reports_every_token_left() -> None:
    a = LogprobAligner()
    a.feed(lp(1), "ab")
    a.feed(lp(2), "")  # generation ended inside a character
    assert ids(a.emit(0)) == []
    assert ids(a.flush()) == [1, 2]


def test_token_logprob_is_the_log_softmax_of_the_raw_logits() -> None:
    scores = torch.tensor([2.0, 0.0, 1.0, float("-inf")])
    e = token_logprob(scores, 2, 3)
    logp = torch.log_softmax(scores, -1)
    assert e.logprob == float(logp[2])
    assert [t for t, _ in e.top] == [0, 2, 1]
    assert [v for _, v in e.top] == [float(logp[0]), float(logp[2]), float(logp[1])]
    assert token_logprob(scores, 0, 0).top == ()


def test_token_texts_show_raw_bytes_and_escape_part_of_a_character(demo_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(demo_model_dir))
    texts = TokenTexts(tok)
    pieces = tok.encode("饕", add_special_tokens=False)  # a character the vocabulary only has as bytes
    entries = [texts.entry(i, -1.0) for i in pieces]
    assert b"".join(bytes(e["bytes"]) for e in entries) == "饕".encode()
    assert all(e["token"].startswith("\\x") for e in entries)
    whole = tok.encode("hello", add_special_tokens=False)
    assert "".join(texts.entry(i, -1.0)["token"] for i in whole) == "hello"
    assert texts.entry(whole[0], float("-inf"))["logprob"] == MIN_LOGPROB
