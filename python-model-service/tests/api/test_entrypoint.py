"""``python -m app``: start-up checks, readiness, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TOKEN, free_port

SERVICE_ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LONG_STREAM = {
    "messages": [{"role": "user", "content": "介绍一下长城"}],
    "temperature": 0,
    "ignore_eos": True,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def wait_ready(proc: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "service never became ready"
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def launch(env_overrides: dict[str, str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env.update(env_overrides)
    return subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=SERVICE_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("token", ["changeme", "secret", "short"])
def test_refuses_to_start_with_a_placeholder_token(token: str) -> None:
    proc = launch({"MODEL_SERVICE_TOKEN": token})
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "MODEL_SERVICE_TOKEN" in out


def test_missing_demo_model_says_how_to_build_it(tmp_path: Path) -> None:
    proc = launch({"MODEL_SERVICE_TOKEN": TOKEN, "DEMO_MODEL_DIR": str(tmp_path / "absent")})
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "make demo-model" in out


def test_unreachable_hub_id_fails_with_a_clear_message() -> None:
    proc = launch(
        {"MODEL_SERVICE_TOKEN": TOKEN, "MODEL_PATH": "some-org/no-such-model", "MODEL_PORT": str(free_port())}
    )
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode != 0
    assert "could not be fetched from the model hub" in out


def test_sigterm_drains_in_flight_streams_then_exits(demo_model_dir: Path) -> None:
    port = free_port()
    proc = launch(
        {
            "MODEL_SERVICE_TOKEN": TOKEN,
            "DEMO_MODEL_DIR": str(demo_model_dir),
            "MODEL_PORT": str(port),
            "MODEL_SHUTDOWN_TIMEOUT_S": "60",
        }
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base)
        assert (
            httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {TOKEN}"}).json()["data"][0][
                "id"
            ]
            == "demo-model"
        )
        body = {
            "messages": [{"role": "user", "content": "介绍一下长城"}],
            "temperature": 0,
            "max_tokens": 400,
            "ignore_eos": True,
            "stream": True,
        }
        events = []
        with httpx.stream(
            "POST",
            f"{base}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=120,
        ) as r:
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data: {"):
                    events.append(json.loads(line[6:]))
                    if len(events) == 3:
                        break
            proc.send_signal(signal.SIGTERM)
            for line in lines:
                if line == "data: [DONE]":
                    events.append("[DONE]")
                elif line.startswith("data: {"):
                    events.append(json.loads(line[6:]))
        assert events[-1] == "[DONE]"
        assert events[-2]["choices"][0]["finish_reason"] == "length"
        out, _ = proc.communicate(timeout=120)
        # uvicorn re-raises the captured SIGTERM once drained, the conventional "terminated" exit.
        assert proc.returncode in (0, -signal.SIGTERM)
        assert "event=ready" in out and "event=draining" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_streams_still_running_at_the_drain_deadline_end_as_cancelled(demo_model_dir: Path) -> None:
    port = free_port()
    proc = launch(
        {
            "MODEL_SERVICE_TOKEN": TOKEN,
            "DEMO_MODEL_DIR": str(demo_model_dir),
            "MODEL_PORT": str(port),
            "MODEL_SHUTDOWN_TIMEOUT_S": "0.5",
        }
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base)
        body = {**LONG_STREAM, "max_tokens": 3500}
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, headers=AUTH, timeout=120) as r:
            events = []
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    events.append(json.loads(line[6:]))
                    if len(events) == 3:
                        proc.send_signal(signal.SIGTERM)
                elif line == "data: [DONE]":
                    events.append("[DONE]")
        assert events[-1] == "[DONE]"
        finishes = [e["choices"][0]["finish_reason"] for e in events[:-1] if e["choices"]]
        assert finishes[-1] == "cancelled"
        assert events[-2]["usage"]["completion_tokens"] < 3500
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_a_missing_model_folder_fails_at_start_with_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    proc = launch({"MODEL_PATH": str(missing), "MODEL_SERVICE_TOKEN": TOKEN, "MODEL_PORT": str(free_port())})
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert f"MODEL_PATH='{missing}' is not a folder on this machine" in out
    assert "Traceback" not in out
