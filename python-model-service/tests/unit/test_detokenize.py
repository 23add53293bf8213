from pathlib import Path

import pytest

from app.serving.detokenize import IncrementalDetokenizer


@pytest.fixture(scope="module")
def tokenizer(demo_model_dir: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_model_dir)


@pytest.mark.parametrize(
    "text", ["你好!我是人工智能助手,很高兴见到你", "emoji 😀 и кириллица", "长城 Great Wall 🧱!"]
)
def test_deltas_concatenate_to_the_text_and_never_split_a_character(tokenizer, text: str) -> None:  # type: ignore[no-untyped-def]
    detok = IncrementalDetokenizer(tokenizer, skip_ids={tokenizer.eos_token_id})
    ids = [*tokenizer.encode(text, add_special_tokens=False), tokenizer.eos_token_id]
    deltas = [detok.step(i) for i in ids]
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)
    for d in deltas:
        d.encode("utf-8")  # a lone surrogate or partial character would fail here


class _SlowTokenizer:
    """A tokenizer without a fast backend: each id is one byte of UTF-8."""

    backend_tokenizer = None

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def test_slow_tokenizer_fallback_holds_partial_characters() -> None:
    detok = IncrementalDetokenizer(_SlowTokenizer())
    deltas = [detok.step(b) for b in "好a".encode()]
    assert deltas == ["", "", "好", "a"]
