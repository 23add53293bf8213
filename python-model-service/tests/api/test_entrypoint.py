"""``python -m app``: start-up checks, readiness, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import sse
from harness.stack import ModelService, Stack
from tests.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LONG_STREAM = {
    "messages": [{"role": "user", "content": "介绍一下长城"}],
    "temperature": 0,
    "ignore_eos": True,
    "stream": True,
    "stream_options": {"include_usage": True},
}
# The hub is unreachable here: fail at once rather than after its retries.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[Stack]:
    with Stack(tmp_path, ready_timeout=180) as s:
        yield s


def launch(stack: Stack, env: dict[str, str], wait: bool = False) -> ModelService:
    """``python -m app`` with ``env`` (and no inherited MODEL_* setting)."""
    return stack.add_model_service(env={**OFFLINE, **env}, token=TOKEN, wait=wait)


def exit_output(svc: ModelService, timeout: float) -> tuple[int, str]:
    """Its exit status and everything it printed."""
    return svc.wait(timeout), svc.output()


@pytest.mark.parametrize("token", ["changeme", "secret", "short"])
def test_refuses_to_start_with_a_placeholder_token(stack: Stack, token: str) -> None:
    code, out = exit_output(launch(stack, {"MODEL_SERVICE_TOKEN": token}), 120)
    assert code == 2
    assert "MODEL_SERVICE_TOKEN" in out


def test_refuses_to_start_with_an_unknown_attention(stack: Stack) -> None:
    code, out = exit_output(launch(stack, {"MODEL_ATTENTION": "flash"}), 120)
    assert code == 2
    assert "MODEL_ATTENTION: Input should be 'auto', 'varlen' or 'library'" in out


def test_missing_demo_model_says_how_to_build_it(stack: Stack, tmp_path: Path) -> None:
    code, out = exit_output(launch(stack, {"DEMO_MODEL_DIR": str(tmp_path / "absent")}), 120)
    assert code == 2
    assert "make demo-model" in out


def test_unreachable_hub_id_fails_with_a_clear_message(stack: Stack) -> None:
    code, out = exit_output(launch(stack, {"MODEL_PATH": "some-org/no-such-model"}), 180)
    assert code != 0
    assert "could not be fetched from the model hub" in out


def test_sigterm_drains_in_flight_streams_then_exits(stack: Stack, demo_model_dir: Path) -> None:
    env = {"DEMO_MODEL_DIR": str(demo_model_dir), "MODEL_SHUTDOWN_TIMEOUT_S": "60"}
    svc = launch(stack, env, wait=True)
    assert httpx.get(f"{svc.url}/v1/models", headers=AUTH).json()["data"][0]["id"] == "demo-model"
    body = {
        "messages": [{"role": "user", "content": "介绍一下长城"}],
        "temperature": 0,
        "max_tokens": 400,
        "ignore_eos": True,
        "stream": True,
    }
    events: list = []
    with httpx.stream("POST", f"{svc.url}/v1/chat/completions", json=body, headers=AUTH, timeout=120) as r:
        stream = sse.events(r)
        for event in stream:
            events.append(event)
            if len(events) == 3:
                break
        stack.kill(svc, signal.SIGTERM)
        events += stream
    chunks = sse.payloads(events)
    assert chunks[-1] == "[DONE]"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    code, out = exit_output(svc, 120)
    # uvicorn re-raises the captured SIGTERM once drained, the conventional "terminated" exit.
    assert code in (0, -signal.SIGTERM)
    assert "event=ready" in out and "event=draining" in out


def test_streams_still_running_at_the_drain_deadline_end_as_cancelled(
    stack: Stack, demo_model_dir: Path
) -> None:
    svc = launch(stack, {"DEMO_MODEL_DIR": str(demo_model_dir), "MODEL_SHUTDOWN_TIMEOUT_S": "0.5"}, wait=True)
    body = {**LONG_STREAM, "max_tokens": 3500}
    with httpx.stream("POST", f"{svc.url}/v1/chat/completions", json=body, headers=AUTH, timeout=120) as r:
        events = []
        for event in sse.events(r):
            events.append(event)
            if len(events) == 3:
                stack.kill(svc, signal.SIGTERM)
    chunks = sse.payloads(events)
    assert chunks[-1] == "[DONE]"
    finishes = [e["choices"][0]["finish_reason"] for e in chunks[:-1] if e["choices"]]
    assert finishes[-1] == "cancelled"
    assert chunks[-2]["usage"]["completion_tokens"] < 3500
    svc.wait(120)


def test_a_missing_model_folder_fails_at_start_with_one_clear_line(stack: Stack, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    code, out = exit_output(launch(stack, {"MODEL_PATH": str(missing)}), 120)
    assert code == 2
    assert f"MODEL_PATH='{missing}' is not a folder on this machine" in out
    assert "Traceback" not in out
