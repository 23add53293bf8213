"""The prefix-cache series: counters of computed and reused prompt tokens, and the windowed hit ratio."""

from __future__ import annotations

from app.serving.metrics import PREFIX_WINDOW, ServiceMetrics


def sample(metrics: ServiceMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


def test_counters_split_each_prompt_into_computed_and_reused() -> None:
    m = ServiceMetrics()
    m.observe_prefill(1000, 0)
    m.observe_prefill(1100, 992)
    assert sample(m, "model_prefix_cache_computed_tokens_total") == 1000 + 108
    assert sample(m, "model_prefix_cache_reused_tokens_total") == 992
    assert sample(m, "model_prefix_cache_hit_ratio") == 992 / 2100


def test_the_hit_ratio_covers_only_the_latest_prefills() -> None:
    m = ServiceMetrics()
    m.observe_prefill(10_000, 0)  # pushed out of the window by the ones below
    for _ in range(PREFIX_WINDOW):
        m.observe_prefill(100, 75)
    assert sample(m, "model_prefix_cache_hit_ratio") == 0.75
    assert sample(m, "model_prefix_cache_computed_tokens_total") == 10_000 + 25 * PREFIX_WINDOW
