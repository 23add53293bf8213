"""The three grammar libraries behind one small interface, for grammar_bench.py's comparison.

xgrammar, llguidance and outlines-core are each imported only if installed: the service pins one of them
(xgrammar) and the benchmark compares whichever are present. Every adapter emits compact JSON (no free
whitespace, "," and ":" separators), fills the same int32 bitmask layout (bit i of word i // 32 allows
token i) and applies it with the library's own CPU function where it has one that needs nothing else.
"""

from __future__ import annotations

import importlib.util
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# Qwen2.5's output layer is wider than its tokenizer (151,665 tokens): a logits row is this long.
LARGE_MODEL_VOCAB = 151_936
LARGE_TOKENIZER_VOCAB = 151_643


def installed() -> list[str]:
    """The grammar libraries importable here, in the order they are compared."""
    mods = {"xgrammar": "xgrammar", "llguidance": "llguidance", "outlines-core": "outlines_core"}
    return [name for name, mod in mods.items() if importlib.util.find_spec(mod) is not None]


def version(name: str) -> str:
    from importlib.metadata import version as v

    return v(name)


def torch_apply(logits: torch.Tensor, bitmask: torch.Tensor) -> None:
    """Set every token whose bit is 0 to -inf, in plain torch (no compilation)."""
    shifts = torch.arange(32, dtype=torch.int32)
    bits = ((bitmask.unsqueeze(-1) >> shifts) & 1).bool().view(bitmask.shape[0], -1)
    logits.masked_fill_(~bits[:, : logits.shape[1]], float("-inf"))


class Adapter:
    """One library: set up on a tokenizer, compile schemas, and drive a batch of matchers."""

    name = "abstract"
    apply_note = ""

    def __init__(self, tokenizer: Any, vocab_size: int, eos: int, threads: int) -> None:
        self.vocab_size, self.eos, self.threads = vocab_size, eos, threads

    def compile(self, schema: dict[str, Any]) -> Any:
        raise NotImplementedError

    def matcher(self, compiled: Any) -> Any:
        raise NotImplementedError

    def fill(self, matchers: list[Any], bitmask: torch.Tensor) -> None:
        raise NotImplementedError

    def apply(self, logits: torch.Tensor, bitmask: torch.Tensor) -> None:
        raise NotImplementedError

    def advance(self, matchers: list[Any], tokens: list[int]) -> None:
        raise NotImplementedError

    def finished(self, matcher: Any) -> bool:
        raise NotImplementedError

    def reset(self, matcher: Any) -> Any:
        raise NotImplementedError

    def accepts(self, compiled: Any, text: str) -> bool:
        """True when ``text`` is a complete output of the grammar."""
        raise NotImplementedError


class XGrammar(Adapter):
    name = "xgrammar"
    apply_note = "xgrammar.apply_token_bitmask_inplace (its C++ CPU kernel)"

    def __init__(self, tokenizer: Any, vocab_size: int, eos: int, threads: int) -> None:
        import xgrammar as xgr

        super().__init__(tokenizer, vocab_size, eos, threads)
        self.xgr = xgr
        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=[eos])
        self.batch = xgr.BatchGrammarMatcher(max_threads=threads) if threads > 1 else None

    def compile(self, schema: dict[str, Any]) -> Any:
        # a fresh compiler each time: compile time is measured cold, without the library's cache
        compiler = self.xgr.GrammarCompiler(self.info, max_threads=self.threads, cache_enabled=False)
        strict = schema != {"type": "object"}  # strict_mode would narrow a bare object to {}
        return compiler.compile_json_schema(
            json.dumps(schema), any_whitespace=False, separators=(",", ":"), strict_mode=strict
        )

    def matcher(self, compiled: Any) -> Any:
        return self.xgr.GrammarMatcher(compiled)

    def fill(self, matchers: list[Any], bitmask: torch.Tensor) -> None:
        if self.batch is not None:
            self.batch.batch_fill_next_token_bitmask(matchers, bitmask)
        else:
            for i, m in enumerate(matchers):
                m.fill_next_token_bitmask(bitmask, i)

    def apply(self, logits: torch.Tensor, bitmask: torch.Tensor) -> None:
        self.xgr.apply_token_bitmask_inplace(logits, bitmask)

    def advance(self, matchers: list[Any], tokens: list[int]) -> None:
        for m, t in zip(matchers, tokens, strict=True):
            if not m.accept_token(t):
                raise RuntimeError(f"xgrammar refused token {t} that its own mask allowed")

    def finished(self, matcher: Any) -> bool:
        return bool(matcher.is_terminated())

    def reset(self, matcher: Any) -> Any:
        matcher.reset()
        return matcher

    def accepts(self, compiled: Any, text: str) -> bool:
        m = self.xgr.GrammarMatcher(compiled)
        return bool(m.accept_string(text)) and bool(m.is_completed())


class LLGuidance(Adapter):
    name = "llguidance"
    apply_note = (
        "llguidance.numpy.apply_token_bitmask_inplace (its torch one is torch.compile'd: 30 s to compile)"
    )

    def __init__(self, tokenizer: Any, vocab_size: int, eos: int, threads: int) -> None:
        import llguidance
        import llguidance.hf
        import llguidance.numpy

        super().__init__(tokenizer, vocab_size, eos, threads)
        self.llg, self.lnp = llguidance, llguidance.numpy
        self.tok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=eos)
        self.executor = llguidance.LLExecutor(num_threads=threads) if threads > 1 else None
        self.options = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}

    def compile(self, schema: dict[str, Any]) -> Any:
        grammar = self.llg.LLMatcher.grammar_from_json_schema(schema, defaults=self.options)
        error = self.llg.LLMatcher.validate_grammar(grammar, self.tok)
        if error:
            raise ValueError(error)
        return grammar

    def matcher(self, compiled: Any) -> Any:
        m = self.llg.LLMatcher(self.tok, compiled, log_level=0)
        if m.is_error():
            raise ValueError(m.get_error())
        return m

    def fill(self, matchers: list[Any], bitmask: torch.Tensor) -> None:
        if self.executor is not None:
            pairs = [(m, i) for i, m in enumerate(matchers)]
            self.executor.unsafe_compute_mask_ptr(pairs, bitmask.data_ptr(), bitmask.shape[1] * 4, len(pairs))
        else:
            row_bytes = bitmask.shape[1] * 4
            for i, m in enumerate(matchers):
                m.unsafe_compute_mask_ptr(bitmask.data_ptr() + i * row_bytes, row_bytes)

    def apply(self, logits: torch.Tensor, bitmask: torch.Tensor) -> None:
        self.lnp.apply_token_bitmask_inplace(logits.numpy(), bitmask.numpy())

    def advance(self, matchers: list[Any], tokens: list[int]) -> None:
        for m, t in zip(matchers, tokens, strict=True):
            if not m.consume_token(t):
                raise RuntimeError(f"llguidance refused token {t}: {m.get_error()}")

    def finished(self, matcher: Any) -> bool:
        return bool(matcher.is_stopped())

    def reset(self, matcher: Any) -> Any:
        matcher.reset()
        return matcher

    def accepts(self, compiled: Any, text: str) -> bool:
        m = self.llg.LLMatcher(self.tok, compiled, log_level=0)
        tokens = self.tok.tokenize_str(text)
        return m.try_consume_tokens(tokens) == len(tokens) and bool(m.is_accepting())


class OutlinesCore(Adapter):
    name = "outlines-core"
    apply_note = "plain torch (its torch kernel is torch.compile'd: 30 s to compile; numpy's needs numba)"

    def __init__(self, tokenizer: Any, vocab_size: int, eos: int, threads: int) -> None:
        import outlines_core
        from outlines_core.json_schema import build_regex_from_schema
        from transformers.convert_slow_tokenizer import bytes_to_unicode

        super().__init__(tokenizer, vocab_size, eos, threads)
        self.oc, self.to_regex, self.hf = outlines_core, build_regex_from_schema, tokenizer
        byte_of = {c: b for b, c in bytes_to_unicode().items()}
        special = set(tokenizer.all_special_ids)
        tokens: dict[bytes, list[int]] = {}
        for text, i in tokenizer.get_vocab().items():
            if i not in special and i < vocab_size:
                tokens.setdefault(bytes(byte_of[c] for c in text), []).append(i)
        self.vocabulary = outlines_core.Vocabulary(eos, tokens)

    def compile(self, schema: dict[str, Any]) -> Any:
        return self.oc.Index(self.to_regex(json.dumps(schema), whitespace_pattern=""), self.vocabulary)

    def matcher(self, compiled: Any) -> Any:
        return self.oc.Guide(compiled)

    def fill(self, matchers: list[Any], bitmask: torch.Tensor) -> None:
        for i, m in enumerate(matchers):
            row = bitmask[i]
            m.write_mask_into(row.data_ptr(), row.numel(), row.element_size())

    def apply(self, logits: torch.Tensor, bitmask: torch.Tensor) -> None:
        torch_apply(logits, bitmask)

    def advance(self, matchers: list[Any], tokens: list[int]) -> None:
        for m, t in zip(matchers, tokens, strict=True):
            m.advance(t)

    def finished(self, matcher: Any) -> bool:
        return bool(matcher.is_finished())

    def reset(self, matcher: Any) -> Any:
        matcher.reset()
        return matcher

    def accepts(self, compiled: Any, text: str) -> bool:
        guide = self.oc.Guide(compiled)
        for t in self.hf.encode(text, add_special_tokens=False):
            if t not in guide.get_tokens():
                return False
            guide.advance(t)
        return self.eos in guide.get_tokens()


ADAPTERS: dict[str, Callable[..., Adapter]] = {
    "xgrammar": XGrammar,
    "llguidance": LLGuidance,
    "outlines-core": OutlinesCore,
}


def synthetic_tokenizer(folder: Path, size: int = LARGE_TOKENIZER_VOCAB) -> Any:
    """A byte-level BPE tokenizer of ``size`` tokens with Qwen2's special tokens, built once and cached.

    Qwen2's real 151k vocabulary cannot be downloaded here. This one has its shape: the 256 byte symbols,
    then merges that grow Latin words (with and without a leading space, some capitalised), CJK characters
    and words (whose byte prefixes are tokens of their own, as in Qwen's), digits, punctuation runs of the
    kinds JSON and code produce, and whitespace runs. What a grammar's mask costs depends on how many
    tokens there are and how their bytes share prefixes, which these reproduce.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    path = folder / "tokenizer.json"
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    if not path.is_file():
        rng = random.Random(0)
        char_of = bytes_to_unicode()
        vocab: dict[str, int] = {char_of[b]: i for i, b in enumerate(sorted(char_of))}
        merges: list[tuple[str, str]] = []
        letters = "eeeeeeeetttttaaaaooooiiiinnnnsssshhhrrrdddllcuumwfgypbvkjxqz"

        def add(word: str) -> None:
            symbols = [char_of[b] for b in word.encode()]
            current = symbols[0]
            for s in symbols[1:]:
                merged = current + s
                if merged not in vocab:
                    vocab[merged] = len(vocab)
                    merges.append((current, s))
                current = merged

        def latin() -> str:
            w = "".join(rng.choice(letters) for _ in range(rng.randint(2, 11)))
            if rng.random() < 0.15:
                w = w.capitalize()
            return (" " + w) if rng.random() < 0.5 else w

        def cjk() -> str:
            return "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.choice((1, 1, 2, 2, 3))))

        def punct() -> str:
            w = "".join(rng.choice("{}[]\":,.!?;()'-_/\\<>=+*#@%&|`~") for _ in range(rng.randint(2, 4)))
            return rng.choice(("", " ", "\n")) + w

        def other() -> str:
            kind = rng.random()
            if kind < 0.4:
                return "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 3)))
            if kind < 0.7:
                return rng.choice((" ", "\n", "\t")) * rng.randint(2, 16)
            parts = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 6))) for _ in range(2)]
            return rng.choice(("_", "", ".")).join(parts)

        kinds = [latin] * 55 + [cjk] * 25 + [punct] * 10 + [other] * 10
        while len(vocab) < size - len(specials):
            add(rng.choice(kinds)())
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens(specials)
        folder.mkdir(parents=True, exist_ok=True)
        tok.save(str(path))
    return PreTrainedTokenizerFast(
        tokenizer_file=str(path), eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None
    )
