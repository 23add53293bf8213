"""Both tiers' chat endpoints fuzzed from their own OpenAPI documents (schemathesis): whatever the
input, the answer is never a 5xx and every error is the shared envelope.

Bounded and repeatable: a fixed number of examples per endpoint, derandomized (the same inputs
every run), generated replies capped at a few tokens so that the run stays short.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from harness.stack import Stack

EXAMPLES = 60
MAX_TOKENS = 4
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _fuzz(schema: Any, path: str, headers: dict[str, str]) -> None:
    """Runs the fixed number of generated requests against one operation."""
    operation = schema[path]["POST"]

    @FUZZ
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        _check(case, headers)

    run()


def _short(case: Any) -> None:
    """Caps what a valid request may generate: the inputs are under test, not the model."""
    if isinstance(case.body, dict):
        for field in ("max_tokens", "max_completion_tokens"):
            value = case.body.get(field)
            if isinstance(value, int) and not isinstance(value, bool) and value > MAX_TOKENS:
                case.body[field] = MAX_TOKENS
        if "max_tokens" not in case.body and "max_completion_tokens" not in case.body:
            case.body["max_tokens"] = MAX_TOKENS


def _check(case: Any, headers: dict[str, str]) -> None:
    _short(case)
    response = case.call(headers=headers, timeout=120)
    assert response.status_code < 500, (
        f"{case.method} {case.path} -> {response.status_code}: {response.text[:500]}"
    )
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, response.text[:500]
        assert {"message", "type", "param", "code"} <= set(body["error"]), response.text[:500]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/new/message/"])
def test_the_model_service_answers_any_chat_input_without_a_5xx(stack: Stack, path: str) -> None:
    headers = {"Authorization": f"Bearer {stack.model_token}"}
    _fuzz(schemathesis.openapi.from_url(f"{stack.model_url}/openapi.json", headers=headers), path, headers)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat/messages"])
def test_the_gateway_answers_any_chat_input_without_a_5xx(stack: Stack, path: str) -> None:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    # The document itself needs a key too (GATEWAY_API_DOCS defaults to authenticated).
    _fuzz(schemathesis.openapi.from_url(f"{stack.gateway_url}/v3/api-docs", headers=headers), path, headers)
