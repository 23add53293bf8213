import torch

from app.engine.base import SamplingParams
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
