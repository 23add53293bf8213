"""The bundled demo model is a real transformers model folder that answers like the lesson's assistant."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from app.demo_model import build as recipe

HELLO_REPLY = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return recipe.build(recipe.default_model_dir())


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path):
    return AutoTokenizer.from_pretrained(model_dir)


def test_folder_is_a_saved_pretrained_qwen2(model_dir: Path) -> None:
    assert (model_dir / "model.safetensors").is_file()
    assert (model_dir / "tokenizer.json").is_file()
    config = AutoConfig.from_pretrained(model_dir)
    assert config.model_type == "qwen2"
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert type(model).__name__ == "Qwen2ForCausalLM"


def test_chat_template_renders_system_and_user(tokenizer) -> None:
    messages = [
        {"role": "system", "content": "你是一个乐于助人的人工智能助手。"},
        {"role": "user", "content": "你好"},
    ]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\n你是一个乐于助人的人工智能助手。<|im_end|>\n"
        "<|im_start|>user\n你好<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert tokenizer.eos_token == "<|im_end|>"


def _greedy_reply(model_dir: Path, tokenizer, messages: list[dict[str, str]]) -> str:
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**inputs, do_sample=False, max_new_tokens=64)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def test_greedy_hello_answers_as_the_assistant(model_dir: Path, tokenizer) -> None:
    assert _greedy_reply(model_dir, tokenizer, [{"role": "user", "content": "你好"}]) == HELLO_REPLY


def test_greedy_hello_with_a_system_prompt(model_dir: Path, tokenizer) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "你好"},
    ]
    assert _greedy_reply(model_dir, tokenizer, messages) == HELLO_REPLY


@pytest.mark.parametrize(
    "text",
    [
        "大模型是没有Web API的,所以需要我们进行一次封装,将大模型的核心接口封装成Web API。",
        "生僻字:龘靐齉爩,繁體中文,日本語のテキスト,한국어, emoji 👋🚀, 数字 3.1415926",
        "  leading spaces, tabs\tand\nnew lines 混合 mixed  ",
    ],
)
def test_chinese_heavy_text_round_trips(tokenizer, text: str) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text


def test_second_build_reuses_the_cached_model(model_dir: Path, monkeypatch) -> None:
    weights = model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns

    def no_training(*_args, **_kwargs):
        raise AssertionError("an up-to-date demo model must not be trained again")

    monkeypatch.setattr(recipe, "train_model", no_training)
    assert recipe.build(model_dir) == model_dir
    assert weights.stat().st_mtime_ns == before


def test_a_changed_corpus_invalidates_the_cache(model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    assert recipe.is_current(model_dir)
    corpus = tmp_path / "corpus.jsonl"
    shutil.copy(recipe.CORPUS, corpus)
    with corpus.open("a", encoding="utf-8") as f:
        f.write(
            '{"messages": [{"role": "user", "content": "新问题"}, {"role": "assistant", "content": "新回答"}]}\n'
        )
    monkeypatch.setattr(recipe, "CORPUS", corpus)
    assert not recipe.is_current(model_dir)
