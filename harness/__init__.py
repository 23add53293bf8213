"""The shared test and benchmark harness of the Python side: one SSE reader (``harness.sse``) and one
launcher (``harness.stack``) for the cross-tier tests, the model service's tests and the benchmarks,
and ``harness.engines`` for driving an engine directly (engine tests and GPU checks)."""
