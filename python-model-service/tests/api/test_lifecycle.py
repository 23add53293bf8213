"""Disconnects, backpressure, metrics and draining against live servers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import warnings
from collections.abc import Iterator

import httpx
import pytest

from app.engine import Engine
from harness import sse
from tests.conftest import TOKEN, LiveServer, start_server

GREAT_WALL = [{"role": "user", "content": "介绍一下长城"}]
LONG = {"messages": GREAT_WALL, "temperature": 0, "max_tokens": 3000, "ignore_eos": True}


class FinishWatch:
    """Sets an event when the engine releases a request whose id starts with ``prefix``."""

    def __init__(self, engine: Engine, prefix: str) -> None:
        self.engine = engine
        self.prefix = prefix
        self.event = threading.Event()
        self.how: str | None = None

    def __call__(self, request_id: str, how: str) -> None:
        if request_id.startswith(self.prefix):
            self.how = how
            self.event.set()

    def __enter__(self) -> FinishWatch:
        self.engine.finish_listeners.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.finish_listeners.remove(self)


def metric(client: httpx.Client, name: str) -> float:
    total = 0.0
    found = False
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, name
    return total


def wait_until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def test_stream_disconnect_cancels_and_frees_the_engine_slot(
    engine: Engine, client: httpx.Client, server: LiveServer
) -> None:
    service = server.app.state.service  # type: ignore[attr-defined]
    cancelled_before = metric(client, 'model_generations_total{finish_reason="cancelled"}')
    seen_instead: list[object] = []
    for attempt in range(3):
        rid = f"disc-stream-{attempt}"
        with FinishWatch(engine, rid) as watch:
            with client.stream(
                "POST", "/v1/chat/completions", json={**LONG, "stream": True}, headers={"X-Request-Id": rid}
            ) as r:
                stream = sse.events(r)
                for event in stream:
                    if event.data != "[DONE]" and sse.chunk_texts([event.json()]):
                        break  # the first visible text: generation is under way
                if service.running != 1 or engine.stats().tracked != 1:
                    # the precondition (still generating when the client leaves) did not hold: say why, retry
                    seen_instead.append((service.running, engine.stats(), [e.data for e in stream][-2:]))
                    continue
            assert watch.event.wait(60), "the engine never released the request"
        assert watch.how == "cancelled"
        break
    else:
        raise AssertionError(f"the request never stayed running until the disconnect: {seen_instead}")
    if seen_instead:
        warnings.warn(f"disconnect test retried: {seen_instead}", stacklevel=1)
    stats = engine.stats()
    assert (stats.running, stats.waiting, stats.tracked) == (0, 0, 0)
    assert metric(client, "model_running_requests") == 0
    assert metric(client, "model_queue_depth") == 0
    assert metric(client, "model_engine_running_requests") == 0
    assert metric(client, 'model_generations_total{finish_reason="cancelled"}') >= cancelled_before + 1


def test_non_stream_disconnect_cancels_too(engine: Engine, server: LiveServer) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    body = (
        b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3000, "ignore_eos": true, '
        b'"temperature": 0}'
    )
    with FinishWatch(engine, "disc-plain") as watch:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "X-Request-Id: disc-plain\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        wait_until(lambda: engine.stats().running == 1, "the request to start")
        sock.close()
        assert watch.event.wait(60)
    assert watch.how == "cancelled"
    assert engine.stats().tracked == 0


@pytest.fixture()
def small_queue(engine: Engine) -> Iterator[LiveServer]:
    live = start_server(engine, max_queued_requests=3)
    yield live
    live.stop()


def test_full_queue_answers_503_and_loses_nothing(engine: Engine, small_queue: LiveServer) -> None:
    body = {
        "messages": [{"role": "user", "content": "你好"}],
        "temperature": 0,
        "max_tokens": 8,
        "ignore_eos": True,
    }

    async def one(c: httpx.AsyncClient, i: int) -> httpx.Response:
        if i % 4 == 0:
            async with c.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
                await r.aread()
                return r
        return await c.post("/v1/chat/completions", json=body)

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            base_url=small_queue.base_url, headers=headers, limits=limits, timeout=120
        ) as c:
            return await asyncio.wait_for(asyncio.gather(*(one(c, i) for i in range(200))), 180)

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert len(statuses) == 200
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) >= 3
    assert statuses.count(503) >= 1
    for r in responses:
        if r.status_code == 503:
            assert r.headers["retry-after"].isdigit()
            assert r.json()["error"]["type"] == "overloaded_error"
        elif r.headers["content-type"].startswith("application/json"):
            assert r.json()["usage"]["completion_tokens"] == 8
        else:
            assert [e.data for e in sse.events(r)][-1] == "[DONE]"
    service = small_queue.app.state.service  # type: ignore[attr-defined]
    assert (service.queued, service.running) == (0, 0)
    with small_queue.client() as c:
        assert metric(c, "model_rejected_requests_total") == statuses.count(503)
        assert metric(c, 'model_requests_total{route="/v1/chat/completions",status="503"}') == statuses.count(
            503
        )
    wait_until(lambda: engine.stats().tracked == 0, "the engine to settle")


def test_metrics_expose_the_serving_figures(client: httpx.Client) -> None:
    client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "你好"}], "max_tokens": 4}
    )
    text = client.get("/metrics").text
    for name in (
        "model_requests_total",
        "model_queue_depth",
        "model_running_requests",
        "model_time_to_first_token_seconds_bucket",
        "model_time_per_output_token_seconds_bucket",
        "model_queue_time_seconds_bucket",
        "model_prompt_tokens_total",
        "model_completion_tokens_total",
    ):
        assert name in text
    assert metric(client, "model_completion_tokens_total") > 0


def test_draining_turns_ready_and_admission_to_503(engine: Engine) -> None:
    live = start_server(engine)
    try:
        live.app.state.service.draining = True  # type: ignore[attr-defined]
        with live.client() as c:
            r = c.get("/ready")
            assert r.status_code == 503 and r.headers["retry-after"]
            r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 503
            assert r.json()["error"]["type"] == "overloaded_error"
    finally:
        live.stop()


def test_dev_mode_without_token_needs_no_auth(engine: Engine) -> None:
    live = start_server(engine, service_token="", service_dev_mode=True)
    try:
        with live.client(token=None) as c:
            r = c.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "你好"}], "max_tokens": 2},
            )
            assert r.status_code == 200
    finally:
        live.stop()
