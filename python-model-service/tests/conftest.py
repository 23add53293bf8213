"""Fixtures shared by every test tier: the demo model, one warm engine, live servers around it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.core.config import Settings
from app.engine import Engine, load_engine
from app.main import build_app

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """The bundled demo model (built once, cached across runs)."""
    from app.demo_model.build import build, default_model_dir

    return build(default_model_dir())


TEST_BATCH_TOKENS = 512


@pytest.fixture(scope="session")
def engine(demo_model_dir: Path) -> Iterator[Engine]:
    """One loaded, warm continuous-batching engine shared by the whole session.

    Its batch token budget is small on purpose, so that ordinary test prompts can exceed it.
    """
    eng = load_engine(
        str(demo_model_dir), model_id="demo-model", engine="continuous", max_batch_tokens=TEST_BATCH_TOKENS
    )
    eng.start()
    asyncio.run(eng.warmup())
    yield eng
    eng.stop(10)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A real uvicorn server on a loopback port, running the app in a thread."""

    base_url: str
    app: object
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, token: str | None = TOKEN, timeout: float = 60.0) -> httpx.Client:
        """An HTTP client, authenticated unless ``token`` is None."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(30)


def start_server(engine: Engine, **overrides: object) -> LiveServer:
    """Serve ``engine`` with settings built from ``overrides`` and wait until /ready says 200."""
    values: dict[str, object] = {"service_token": TOKEN, "ping_interval_s": 10.0}
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    app = build_app(settings, engine=engine)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return LiveServer(base, app, server, thread)
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("test server did not become ready")


@pytest.fixture(scope="session")
def server(engine: Engine) -> Iterator[LiveServer]:
    """The default live server over the shared engine."""
    live = start_server(engine)
    yield live
    live.stop()


@pytest.fixture()
def client(server: LiveServer) -> Iterator[httpx.Client]:
    """An authenticated client of the default live server."""
    with server.client() as c:
        yield c
