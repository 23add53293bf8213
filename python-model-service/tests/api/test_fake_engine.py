"""Service behaviour that needs an engine under the test's control: waiting, failing."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn

from app.core.config import Settings
from app.engine import Engine, EngineError, EngineStats, EngineStep, SamplingParams
from app.main import build_app
from harness import sse
from tests.conftest import TOKEN, LiveServer, free_port, start_server


class ScriptedEngineBase(Engine):
    """An engine with nothing to start, stop or count; subclasses say what it generates."""

    def start(self) -> None:
        return None

    def stop(self, timeout: float | None = None) -> None:
        return None

    async def warmup(self) -> None:
        return None

    def abort(self, request_id: str) -> None:
        return None

    def healthy(self) -> bool:
        return True

    def stats(self) -> EngineStats:
        return EngineStats(running=0, waiting=0, tracked=0)


class ScriptedEngine(ScriptedEngineBase):
    """Replies with a fixed text once ``gate`` opens; ``mode`` makes it fail instead."""

    kind = "scripted"

    def __init__(self, real: Engine) -> None:
        super().__init__(real.model, real.tokenizer, "demo-model", real.max_model_len)
        self.gate = threading.Event()
        self.mode = "ok"
        self.reply = real.tokenizer.encode("你好,世界", add_special_tokens=False)

    async def generate(
        self, request_id: str, prompt_ids: list[int], params: SamplingParams
    ) -> AsyncIterator[EngineStep]:
        await asyncio.get_running_loop().run_in_executor(None, self.gate.wait)
        if self.mode == "raise":
            raise EngineError("device on fire at /secret/path.py line 3")
        yield EngineStep(self.reply[:2])
        if self.mode == "error_step":
            yield EngineStep([], "error", "CUDA error: out of memory")
            return
        yield EngineStep(self.reply[2:], "stop")


@pytest.fixture()
def scripted(engine: Engine) -> Iterator[tuple[ScriptedEngine, LiveServer]]:
    fake = ScriptedEngine(engine)
    live = start_server(fake, ping_interval_s=0.02)
    yield fake, live
    fake.gate.set()
    live.stop()


def test_pings_flow_while_a_request_waits(scripted: tuple[ScriptedEngine, LiveServer]) -> None:
    fake, live = scripted
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    with live.client() as c, c.stream("POST", "/v1/chat/completions", json=body) as r:
        items = sse.events(r, comments=True)
        pings = 0
        for item in items:
            if item == sse.Comment("ping"):
                pings += 1
                if pings == 3:
                    fake.gate.set()
                    break
        rest = sse.payloads(e for e in items if isinstance(e, sse.Event))
    assert pings == 3
    assert rest[-1] == "[DONE]"
    assert "".join(sse.chunk_texts(rest)) == "你好,世界"


def test_engine_exception_is_a_500_envelope_without_details(
    scripted: tuple[ScriptedEngine, LiveServer],
) -> None:
    fake, live = scripted
    fake.mode = "raise"
    fake.gate.set()
    with live.client() as c:
        r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "server_error"
    assert "secret" not in r.text and "fire" not in r.text


def test_engine_error_mid_stream_travels_inside_the_stream(
    scripted: tuple[ScriptedEngine, LiveServer],
) -> None:
    fake, live = scripted
    fake.mode = "error_step"
    fake.gate.set()
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    with live.client() as c, c.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        data = [e.data for e in sse.events(r)]
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["type"] == "server_error"
    assert "out of memory" not in "".join(data)


def test_lesson_stream_pings_too(scripted: tuple[ScriptedEngine, LiveServer]) -> None:
    fake, live = scripted
    with (
        live.client() as c,
        c.stream("POST", "/chat/new/message/", json={"prompt": "hi", "stream": True}) as r,
    ):
        items = sse.events(r, comments=True)
        for item in items:
            if item == sse.Comment("ping"):
                fake.gate.set()
                break
        assert any(isinstance(e, sse.Event) and e.data == "[DONE]" for e in items)


def test_not_ready_until_warm(engine: Engine) -> None:
    fake = ScriptedEngine(engine)
    warm_gate = threading.Event()

    async def slow_warmup() -> None:
        await asyncio.get_running_loop().run_in_executor(None, warm_gate.wait)

    fake.warmup = slow_warmup  # type: ignore[method-assign]
    app = build_app(Settings(service_token=TOKEN), engine=fake)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.01)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health").status_code == 200
        r = httpx.get(f"{base}/ready")
        assert r.status_code == 503 and r.headers["retry-after"]
        warm_gate.set()
        while httpx.get(f"{base}/ready").status_code != 200:
            threading.Event().wait(0.01)
    finally:
        warm_gate.set()
        fake.gate.set()
        server.should_exit = True
        thread.join(30)
