"""Starts the real tiers (model service + gateway) on free loopback ports for cross-tier tests."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVICE_DIR = ROOT / "python-model-service"
GATEWAY_JAR = ROOT / "java-gateway" / "target" / "gateway.jar"
READY_TIMEOUT_S = 240.0


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def java_binary() -> str:
    """The newest JDK present (21+ runs the gateway on virtual threads), else the default one."""
    home = os.environ.get("JAVA_RUN_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


@dataclass
class Stack:
    model_url: str
    gateway_url: str
    model_token: str
    admin_key: str
    workdir: Path

    def model_client(self, timeout: float = 120.0) -> httpx.Client:
        """An httpx client that speaks to the model service with the internal token."""
        return httpx.Client(
            base_url=self.model_url,
            headers={"Authorization": f"Bearer {self.model_token}"},
            timeout=timeout,
        )

    def gateway_client(self, timeout: float = 120.0) -> httpx.Client:
        """An httpx client that speaks to the gateway with the admin key."""
        return httpx.Client(
            base_url=self.gateway_url,
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=timeout,
        )


def _wait_ready(name: str, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S}s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_stack(
    workdir: Path, model_env: dict[str, str] | None = None, upstream: str | None = None
) -> Iterator[Stack]:
    """Runs both tiers until the block ends; logs go to ``workdir``.

    ``upstream``: a GATEWAY_UPSTREAMS entry already serving (another engine, say); then the gateway
    alone is started, in front of it, and ``model_url`` is that entry's base URL.
    """
    model_port, gateway_port = free_port(), free_port()
    token = secrets.token_urlsafe(32)
    admin_key = "sk-admin-" + secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if k not in ("MODEL_PATH", "ADMIN_API_KEY")}
    env.update(
        MODEL_PORT=str(model_port),
        MODEL_HOST="127.0.0.1",
        MODEL_SERVICE_TOKEN=token,
        GATEWAY_PORT=str(gateway_port),
        GATEWAY_UPSTREAMS=f"http://127.0.0.1:{model_port}",
        ADMIN_API_KEY=admin_key,
        GATEWAY_DB_URL=f"jdbc:h2:file:{workdir / 'gateway-db'};AUTO_SERVER=FALSE",
    )
    env.update(model_env or {})
    if upstream is not None:
        env["GATEWAY_UPSTREAMS"] = upstream
    model_url = upstream.split("#", 1)[0] if upstream is not None else f"http://127.0.0.1:{model_port}"
    model_log = workdir / "model-service.log"
    gateway_log = workdir / "gateway.log"
    with model_log.open("wb") as mlog, gateway_log.open("wb") as glog:
        model = (
            subprocess.Popen(
                [sys.executable, "-m", "app"], cwd=SERVICE_DIR, env=env, stdout=mlog, stderr=subprocess.STDOUT
            )
            if upstream is None
            else None
        )
        gateway = subprocess.Popen(
            [java_binary(), "-jar", str(GATEWAY_JAR)],
            cwd=workdir,
            env=env,
            stdout=glog,
            stderr=subprocess.STDOUT,
        )
        try:
            if model is not None:
                _wait_ready("model service", model, f"http://127.0.0.1:{model_port}/ready", model_log)
            _wait_ready("gateway", gateway, f"http://127.0.0.1:{gateway_port}/actuator/health", gateway_log)
            yield Stack(
                model_url=model_url,
                gateway_url=f"http://127.0.0.1:{gateway_port}",
                model_token=token,
                admin_key=admin_key,
                workdir=workdir,
            )
        finally:
            _stop(gateway)
            if model is not None:
                _stop(model)
