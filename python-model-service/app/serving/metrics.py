"""Prometheus metrics of one service instance (own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# The hit-ratio gauge covers this many of the latest prefills; the counters give any other window.
PREFIX_WINDOW = 100


class ServiceMetrics:
    """Request, queue, latency and token metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "model_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.finished = Counter(
            "model_generations", "Finished generations by finish reason", ["finish_reason"], registry=r
        )
        for reason in ("stop", "length", "cancelled", "error"):
            self.finished.labels(finish_reason=reason)  # dashboards see zeros, not gaps
        self.rejected = Counter(
            "model_rejected_requests", "Requests refused because the queue was full", registry=r
        )
        self.queue_depth = Gauge(
            "model_queue_depth", "Admitted requests still waiting for a first token", registry=r
        )
        self.running = Gauge("model_running_requests", "Requests currently producing tokens", registry=r)
        self.engine_running = Gauge(
            "model_engine_running_requests", "Requests holding an engine slot (scheduler view)", registry=r
        )
        self.engine_waiting = Gauge(
            "model_engine_waiting_requests", "Requests waiting inside the engine", registry=r
        )
        self.ttft = Histogram(
            "model_time_to_first_token_seconds", "Time to first token", buckets=LATENCY_BUCKETS, registry=r
        )
        self.tpot = Histogram(
            "model_time_per_output_token_seconds",
            "Time per output token",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_time = Histogram(
            "model_queue_time_seconds",
            "Time from admission to the first engine step",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter("model_prompt_tokens", "Prompt tokens processed", registry=r)
        self.completion_tokens = Counter("model_completion_tokens", "Completion tokens generated", registry=r)
        self.engine = Info("model_engine", "The engine serving the model and its attention", registry=r)
        self.prefix_enabled = Gauge(
            "model_prefix_cache_enabled", "1 when the engine reuses cached prompt prefixes", registry=r
        )
        self.prefix_reused = Counter(
            "model_prefix_cache_reused_tokens",
            "Prompt tokens taken from the prefix cache instead of being computed",
            registry=r,
        )
        self.prefix_computed = Counter(
            "model_prefix_cache_computed_tokens", "Prompt tokens computed (prefilled)", registry=r
        )
        self.prefix_hit_ratio = Gauge(
            "model_prefix_cache_hit_ratio",
            f"Reused / all prompt tokens over the latest {PREFIX_WINDOW} prefills",
            registry=r,
        )
        self._prefills: deque[tuple[int, int]] = deque(maxlen=PREFIX_WINDOW)

    def observe_prefill(self, prompt_tokens: int, reused_tokens: int) -> None:
        """Count a finished prefill: how much of its prompt came from the prefix cache."""
        reused = min(max(reused_tokens, 0), prompt_tokens)
        self.prefix_reused.inc(reused)
        self.prefix_computed.inc(prompt_tokens - reused)
        self._prefills.append((prompt_tokens, reused))
        total = sum(p for p, _ in self._prefills)
        self.prefix_hit_ratio.set(sum(r for _, r in self._prefills) / total if total else 0.0)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
