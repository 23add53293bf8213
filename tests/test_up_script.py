"""`make up` keeps the gateway serving and restarts a model service that died; the gateway ends the run."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from harness.stack import READY_TIMEOUT_S, ROOT, free_port

UP_SCRIPT = ROOT / "scripts" / "up.sh"
STOP_TIMEOUT_S = 20.0


@dataclass
class UpRun:
    proc: subprocess.Popen[bytes]
    output: Path
    model_port: int
    gateway_port: int
    admin_key: str

    def text(self) -> str:
        """Everything the script has printed so far."""
        return self.output.read_text(errors="replace")

    def ready_or_gone(self) -> bool:
        """The script has printed its ready banner, or has exited."""
        return "Ready. Open" in self.text() or self.proc.poll() is not None

    def listener(self, port: int) -> psutil.Process:
        """The process started by this run that listens on ``port`` (never one of another stack)."""
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                conns = child.net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns):
                return child
        raise AssertionError(f"nothing started by up.sh listens on {port}")

    def chat(self) -> httpx.Response:
        """A small chat completion through the gateway with the admin key."""
        return httpx.post(
            f"http://127.0.0.1:{self.gateway_port}/v1/chat/completions",
            headers={"Authorization": f"Bearer {self.admin_key}"},
            json={"model": "demo-model", "messages": [{"role": "user", "content": "你好"}], "max_tokens": 8},
            timeout=60.0,
        )


def _until(what: str, condition: Callable[[], bool], timeout: float, run: UpRun) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout}s; up.sh printed:\n{run.text()[-4000:]}")
        time.sleep(0.1)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    # A zombie reparented to a container's init that does not reap it is not a running tier.
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            pass
    return left


@contextmanager
def running_up_script(workdir: Path) -> Iterator[UpRun]:
    """Runs scripts/up.sh on free ports until it is ready; whatever is left is stopped afterwards."""
    model_port, gateway_port = free_port(), free_port()
    admin_key = "sk-admin-" + secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if k not in ("MODEL_PATH", "GATEWAY_UPSTREAMS")}
    env.update(
        MODEL_PORT=str(model_port),
        GATEWAY_PORT=str(gateway_port),
        MODEL_SERVICE_TOKEN=secrets.token_urlsafe(32),
        ADMIN_API_KEY=admin_key,
        GATEWAY_DB_URL=f"jdbc:h2:file:{workdir / 'gateway-db'};AUTO_SERVER=FALSE",
        UP_LOG_DIR=str(workdir),
        READY_TIMEOUT=str(int(READY_TIMEOUT_S)),
    )
    output = workdir / "up.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [str(UP_SCRIPT)], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    run = UpRun(proc, output, model_port, gateway_port, admin_key)
    try:
        _until("up.sh ready", run.ready_or_gone, READY_TIMEOUT_S, run)
        assert proc.poll() is None, f"up.sh exited with {proc.returncode}:\n{run.text()[-4000:]}"
        yield run
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _answered_by_the_model(response: httpx.Response) -> bool:
    return response.status_code == 200 and "x-degraded" not in response.headers


def test_a_killed_model_service_is_restarted_while_the_gateway_keeps_answering(tmp_path: Path) -> None:
    with running_up_script(tmp_path) as run:
        gateway = f"http://127.0.0.1:{run.gateway_port}"
        model = run.listener(run.model_port)
        model.kill()
        model.wait(timeout=10)
        assert not _listening(run.model_port)

        # The outage, as a client sees it: the gateway stays up and answers at once with its
        # degraded reply (the end of the fallback chain), marked as such.
        health = httpx.get(f"{gateway}/actuator/health", timeout=10.0)
        assert health.status_code in (200, 503), health.text
        during = run.chat()
        assert during.status_code == 200, during.text
        assert "fallback_reply" in during.headers.get("x-degraded", ""), during.headers
        assert during.json()["choices"][0]["message"]["content"]
        _until("the restart line", lambda: "status 137; restarting in 1 s" in run.text(), 10, run)
        assert run.proc.poll() is None

        model_ready = f"http://127.0.0.1:{run.model_port}/ready"
        _until("model service ready again", lambda: _ready(model_ready), 90, run)
        assert run.listener(run.model_port).pid != model.pid
        _until("a normal chat through the gateway", lambda: _answered_by_the_model(run.chat()), 30, run)

        # A second crash soon after a start backs off longer; SIGTERM during that back-off still
        # stops every tier and leaves no process behind.
        run.listener(run.model_port).kill()
        _until("the longer back-off", lambda: "status 137; restarting in 2 s" in run.text(), 10, run)
        started = psutil.Process(run.proc.pid).children(recursive=True)
        t0 = time.monotonic()
        run.proc.terminate()
        run.proc.wait(timeout=STOP_TIMEOUT_S)
        assert time.monotonic() - t0 < STOP_TIMEOUT_S
        assert not _alive(started), _alive(started)
        assert not _listening(run.model_port) and not _listening(run.gateway_port)


def test_a_dead_gateway_stops_everything_and_fails_the_run(tmp_path: Path) -> None:
    with running_up_script(tmp_path) as run:
        started = psutil.Process(run.proc.pid).children(recursive=True)
        run.listener(run.gateway_port).kill()
        returncode = run.proc.wait(timeout=STOP_TIMEOUT_S)
        assert returncode != 0
        assert "the gateway exited with status 137" in run.text()
        assert not _alive(started), _alive(started)
        assert not _listening(run.model_port) and not _listening(run.gateway_port)
