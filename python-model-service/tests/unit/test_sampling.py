import pytest
import torch

from app.engine.base import SamplingParams
from app.engine.grammar import Grammar
from app.engine.sampling import RowSampler, SamplerRegistry


def test_greedy_leaves_scores_to_argmax() -> None:
    assert RowSampler.from_params(SamplingParams(5, temperature=0.0, seed=3)).choose(torch.randn(10)) is None


def test_same_seed_same_draws() -> None:
    scores = torch.randn(50)
    a = RowSampler.from_params(SamplingParams(5, temperature=1.5, seed=42))
    b = RowSampler.from_params(SamplingParams(5, temperature=1.5, seed=42))
    assert [a.choose(scores) for _ in range(20)] == [b.choose(scores) for _ in range(20)]


def test_top_p_keeps_only_the_nucleus() -> None:
    scores = torch.tensor([10.0, 9.0, 0.0, -1.0, -2.0])
    s = RowSampler.from_params(SamplingParams(5, temperature=1.0, top_p=0.5, seed=1))
    assert {s.choose(scores) for _ in range(50)} == {0}


def test_a_top_p_too_small_for_float32_still_keeps_the_most_likely_token() -> None:
    # 5e-324 compares as 0 against float32 probabilities: nothing must be dropped to an empty row.
    scores = torch.tensor([1.0, 3.0, 2.0])
    s = RowSampler.from_params(SamplingParams(5, temperature=0.7, top_p=5e-324, seed=1))
    assert {s.choose(scores) for _ in range(20)} == {1}


def test_a_temperature_too_small_to_divide_by_decodes_greedily() -> None:
    assert (
        RowSampler.from_params(SamplingParams(5, temperature=5e-324, seed=3)).choose(torch.randn(10)) is None
    )


def test_registry_forces_each_sampled_row() -> None:
    reg = SamplerRegistry()
    greedy = reg.add(SamplingParams(5, temperature=0.0))
    sampled = reg.add(SamplingParams(5, temperature=1.0, top_p=0.01, seed=0))
    scores = torch.tensor([[1.0, 5.0, 2.0], [3.0, 1.0, 0.0], [0.0, 0.0, 9.0]])
    out = reg.apply(scores, [greedy, sampled, -1])
    assert out.argmax(dim=-1).tolist() == [1, 0, 2]
    assert torch.isinf(out[1, 1])
    reg.remove(sampled)
    assert reg.get(sampled) is None


def test_sampling_resumes_after_an_all_greedy_spell() -> None:
    reg = SamplerRegistry()
    greedy = reg.add(SamplingParams(5, temperature=0.0))
    scores = torch.tensor([[1.0, 5.0, 2.0], [3.0, 1.0, 0.0]])
    assert reg.apply(scores, [greedy, -1]).argmax(dim=-1).tolist() == [1, 0]
    first = reg.add(SamplingParams(5, temperature=1.0, top_p=0.01, seed=0))
    reg.remove(first)
    reg.remove(first)  # removing twice must not leave the registry thinking nobody samples
    second = reg.add(SamplingParams(5, temperature=1.0, seed=0))
    # tokens 0 and 2 are about equally likely (token 2 is the argmax): 40 draws see both
    flat = torch.tensor([[0.0, -50.0, 0.1]])
    draws = {int(reg.apply(flat, [second]).argmax()) for _ in range(40)}
    assert draws == {0, 2}


def test_an_all_plain_batch_is_returned_untouched() -> None:
    reg = SamplerRegistry()
    greedy = reg.add(SamplingParams(5, temperature=0.0))
    scores = torch.randn(3, 10)
    assert reg.apply(scores, [greedy, -1, greedy]) is scores
    assert reg.mask.tokens == 0


def _digit_grammar() -> Grammar:
    """A grammar over a ten-token vocabulary ("0".."9" and an end token 9): exactly two digits from 1-3."""
    import xgrammar as xgr

    info = xgr.TokenizerInfo(["0", "1", "2", "3", "4", "5", "6", "7", "8", "<end>"], stop_token_ids=[9])
    compiled = xgr.GrammarCompiler(info, max_threads=1).compile_grammar("root ::= [1-3] [1-3]")
    return Grammar(compiled, "two digits")


def test_a_constrained_greedy_row_is_forced_to_the_masked_argmax_then_ends() -> None:
    reg = SamplerRegistry()
    slot = reg.add(SamplingParams(5, grammar=_digit_grammar()))
    plain = reg.add(SamplingParams(5))
    scores = torch.tensor([[0.0, 1.0, 2.0, 0.5, 9.0, 0, 0, 0, 0, 8.0]] * 2)
    out = reg.apply(scores, [slot, plain])
    # the raw argmax (4) is not allowed: 2 is the likeliest of 1-3; the plain row keeps its argmax
    assert out.argmax(dim=-1).tolist() == [2, 4]
    assert torch.equal(out[1], scores[1])
    favour_three = torch.tensor([[0.0, 1.0, 2.0, 5.0, 0, 0, 0, 0, 0, 0]])
    assert reg.apply(favour_three, [slot]).argmax().item() == 3  # allowed raw argmax: left as it is
    # complete: only the end token remains, even though a digit scores higher
    assert reg.apply(scores[:1], [slot]).argmax().item() == 9
    assert reg.get(slot).matcher.is_terminated()  # type: ignore[union-attr]
    assert reg.apply(scores[:1], [slot]).argmax().item() == 9  # and it stays the end
    assert reg.mask.tokens == 4
    reg.remove(slot)
    assert reg.apply(scores, [-1, plain]) is scores  # no constrained request left: the fast path again


def test_a_constrained_sampled_row_draws_only_allowed_tokens_and_logprobs_stay_raw() -> None:
    reg = SamplerRegistry()
    grammar = _digit_grammar()
    slot = reg.add(SamplingParams(5, temperature=1.0, seed=0, grammar=grammar, logprobs=1))
    flat = torch.zeros(1, 10)
    first = int(reg.apply(flat, [slot]).argmax())
    second = int(reg.apply(flat, [slot]).argmax())
    assert {first, second} <= {1, 2, 3}
    sampler = reg.get(slot)
    assert sampler is not None
    recorded = sampler.take(2)
    # the raw distribution is uniform over ten tokens, whatever the grammar allowed
    assert [r.logprob for r in recorded] == [pytest.approx(-2.302585, abs=1e-5)] * 2
