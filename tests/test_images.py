"""The images and the compose stack, built and run for real: docker-compose.yml's ``cpu`` and ``scale``
profiles started with podman from the images ``make images`` built (PostgreSQL, Redis and nginx from
local stand-ins made of Debian packages), and used as a user would. Run by ``make test-images``, not by
``make test``: ``--run-images`` collects it.

cpu: every container healthy and running as non-root, the chat page served with its scripts, the demo
model's known answer through the gateway, a stream resumed with Last-Event-ID, the model service
crashed and the gateway degrading and recovering once compose restarts it, keys and conversations
kept in the PostgreSQL volume across ``down`` and ``up``. scale: two gateways behind nginx sharing
one Redis: a stream begun on one gateway resumed through nginx on the other, and a key's limit
counted across both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness.compose import ComposeStack
from harness.sse import Event, events, follow
from harness.stack import Stack

MODEL = "demo-model"
HELLO_REPLY = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"
CPU_SERVICES = {"gateway", "model-service", "postgres", "redis"}
SCALE_SERVICES = CPU_SERVICES | {"gateway-2", "model-service-2", "nginx"}
OUR_IMAGES = {"gateway": "llm-service/gateway:", "model-service": "llm-service/model-service:"}


def chat(client: httpx.Client, content: str = "你好", max_tokens: int = 64) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "temperature": 0}
    return client.post("/v1/chat/completions", json=body | {"max_tokens": max_tokens})


def answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def the_model_answers(compose: ComposeStack, key: str | None = None) -> bool:
    """Whether a chat through the gateway gets the model's own answer (not a degraded fallback)."""
    with compose.gateway_client(key) as gateway:
        reply = chat(gateway)
    return reply.status_code == 200 and not reply.headers.get("X-Degraded") and answer(reply) == HELLO_REPLY


def wait_for(check: Callable[[], bool], what: str, timeout: float = 300.0, every: float = 1.0) -> float:
    """Polls ``check`` until it holds; the seconds that took (fails after ``timeout``)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(every)
    return time.monotonic() - start


def report(line: str) -> None:
    """A measured figure, printed in pytest's summary of the run (-rP shows it; make test-images)."""
    print(f"[images] {line}")


@dataclass
class Started:
    conversation: str
    message_id: str
    stream_url: str


def ask(client: httpx.Client, query: str = "你好") -> Started:
    """A question asked as the chat page asks it: a conversation, then a message; its stream URL."""
    conversation = client.post("/api/conversations", json={})
    assert conversation.status_code in (200, 201), conversation.text
    cid = conversation.json()["id"]
    started = client.post(f"/api/conversations/{cid}/messages", json={"model": MODEL, "query": query})
    assert started.status_code in (200, 201, 202), started.text
    return Started(cid, started.json()["messageId"], started.json()["streamUrl"])


def first_events(client: httpx.Client, url: str, n: int) -> list[Event]:
    """The first ``n`` events of a stream, then the connection drops (a browser tab closed)."""
    got: list[Event] = []
    with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200, response.read()
        for event in events(response):
            got.append(event)
            if len(got) == n:
                break
    return got


def stored_reply(client: httpx.Client, conversation: str) -> dict[str, Any]:
    stored = client.get(f"/api/conversations/{conversation}/messages").json()["data"]
    return dict(next(m for m in stored if m["role"] == "assistant"))


def check_resumed(first: list[Event], rest: list[Event]) -> str:
    """Every event once, in order, ending with the finish event; the text they carry."""
    received = first + rest
    ids = [int(e.id) for e in received]
    assert ids == list(range(1, len(ids) + 1)), f"lost or repeated events across the reconnect: {ids}"
    assert received[-1].event == "finish", received[-1]
    return "".join(e.json()["text"] for e in received if e.event == "message")


# ---- cpu ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cpu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    with Stack(tmp_path_factory.mktemp("compose-cpu")) as stack:
        compose = stack.add_compose("cpu")
        assert compose.started_in is not None
        report(f"cpu profile: up to every container healthy in {compose.started_in:.0f} s")
        yield compose


def test_cpu_every_container_is_healthy_and_runs_as_non_root(cpu: ComposeStack) -> None:
    assert set(cpu.containers()) == CPU_SERVICES
    for service in CPU_SERVICES:
        assert cpu.health(service) == "healthy", service
        # The main process as the host sees it: rootful podman maps no ids, so 0 would be real root.
        assert cpu.process_uid(service) != 0, f"{service} runs as root"
    for service, image in OUR_IMAGES.items():
        assert cpu.inspect(service)["ImageName"].removeprefix("localhost/").startswith(image)
        size = cpu.image_size(service)
        report(f"{cpu.inspect(service)['ImageName']}: {size / 1e6:.0f} MB")


def test_cpu_the_chat_page_is_served_with_its_scripts(cpu: ComposeStack) -> None:
    with httpx.Client(base_url=cpu.gateway_url, timeout=30) as browser:
        page = browser.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "<title" in page.text and "js/chat.js" in page.text
        # The web stage's npm install vendored these into the jar; the page imports them.
        for script in ("/js/chat.js", "/vendor/marked.esm.js", "/vendor/purify.es.mjs"):
            reply = browser.get(script)
            assert reply.status_code == 200 and reply.text.strip(), script
        assert browser.get("/ops").status_code == 200


def test_cpu_a_chat_is_answered_through_the_gateway(cpu: ComposeStack) -> None:
    with cpu.gateway_client() as gateway:
        assert answer(chat(gateway)) == HELLO_REPLY
        models = gateway.get("/v1/models").json()
        assert [m["id"] for m in models["data"]] == [MODEL]
    with cpu.gateway_client(key="sk-wrong") as stranger:
        refused = chat(stranger)
    assert refused.status_code == 401 and refused.json()["error"]["type"]


def test_cpu_the_image_serves_tool_calls_and_structured_outputs(cpu: ComposeStack) -> None:
    # The image's runtime lock must carry the grammar library: a forced call and a schema come back valid.
    city = {"type": "string", "enum": ["北京", "上海"]}
    shape = {"type": "object", "properties": {"city": city}, "required": ["city"]}
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": shape}}
    schema = {"type": "json_schema", "json_schema": {"name": "w", "schema": shape}}
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "天气"}], "temperature": 0}
    ask["max_tokens"] = 200
    with cpu.gateway_client() as gateway:
        called = gateway.post("/v1/chat/completions", json=ask | {"tools": [tool], "tool_choice": "required"})
        assert called.status_code == 200, called.text
        (call,) = called.json()["choices"][0]["message"]["tool_calls"]
        assert json.loads(call["function"]["arguments"])["city"] in ("北京", "上海")
        shaped = gateway.post("/v1/chat/completions", json=ask | {"response_format": schema})
        assert json.loads(answer(shaped))["city"] in ("北京", "上海")


def test_cpu_a_stream_resumes_with_last_event_id(cpu: ComposeStack) -> None:
    with cpu.gateway_client() as gateway:
        started = ask(gateway)
        first = first_events(gateway, started.stream_url, 3)
        assert [e.event for e in first] == ["message"] * 3, first
        rest = follow(gateway, started.stream_url, last_event_id=first[-1].id, deadline=120)
        assert rest.ended_by == "final" and rest.connections == 1, rest
        text = check_resumed(first, rest.events)
        assert text == HELLO_REPLY
        assert stored_reply(gateway, started.conversation)["content"] == HELLO_REPLY


def test_cpu_a_crashed_model_service_degrades_the_gateway_until_compose_restarts_it(
    cpu: ComposeStack,
) -> None:
    before = cpu.inspect("model-service")
    pid = cpu.crash("model-service")
    crashed = time.monotonic()
    degraded: list[str] = []

    def gateway_degraded() -> bool:
        with cpu.gateway_client(timeout=30) as gateway:
            health = gateway.get("/actuator/health").status_code
            reply = chat(gateway)
        # No model service: an error in the envelope with Retry-After, or a reply marked degraded.
        if reply.status_code == 503:
            assert reply.json()["error"]["code"] and reply.headers.get("Retry-After"), reply.text
            degraded.append(f"503 {reply.json()['error']['code']}, health {health}")
        elif reply.status_code == 200 and reply.headers.get("X-Degraded"):
            degraded.append(f"200 X-Degraded: {reply.headers['X-Degraded']}, health {health}")
        return bool(degraded) and health == 503

    wait_for(gateway_degraded, "the gateway to report itself down and refuse or degrade chats", 60)
    # restart: unless-stopped brings the model service back; the gateway picks it up by itself.
    cpu.wait_healthy(["model-service", "gateway"], timeout=300)
    after = cpu.inspect("model-service")
    assert after["State"]["Pid"] != pid
    assert after["RestartCount"] > before["RestartCount"], "compose's restart policy did not restart it"
    # The breakers the crash opened let requests through again after their open state (10 s): until
    # then the fallback reply answers, marked degraded.
    wait_for(lambda: the_model_answers(cpu), "the model's own answer through the gateway again", 120)
    recovered = time.monotonic() - crashed
    report(f"model service crashed: degraded ({degraded[0]}), answering again after {recovered:.0f} s")


def test_cpu_keys_and_conversations_survive_down_and_up(cpu: ComposeStack) -> None:
    with cpu.gateway_client() as admin:
        created = admin.post("/admin/keys", json={"name": "outlives the containers", "role": "user"})
        assert created.status_code in (200, 201), created.text
        key = created.json()["key"]
    with cpu.gateway_client(key) as user:
        started = ask(user)
        assert follow(user, started.stream_url, deadline=120).text() == HELLO_REPLY
    cpu.down()  # the containers and the network go; the pgdata volume stays
    assert cpu.containers() == {}
    restarted = cpu.up()
    report(f"cpu profile: up again after down (images and volume kept) in {restarted:.0f} s")
    with cpu.gateway_client(key) as user:
        stored = user.get(f"/api/conversations/{started.conversation}/messages")
        assert stored.status_code == 200, stored.text
        assert stored_reply(user, started.conversation)["content"] == HELLO_REPLY
    wait_for(lambda: the_model_answers(cpu, key), "the model's answer after down and up", 120)


# ---- scale ----------------------------------------------------------------------------------------


@dataclass
class HalfRead:
    """An answer read in part on the first gateway, which has stopped since."""

    compose: ComposeStack
    started: Started
    first: list[Event]


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    with Stack(tmp_path_factory.mktemp("compose-scale")) as stack:
        compose = stack.add_compose("scale")
        assert compose.started_in is not None
        report(f"scale profile: up to every container healthy in {compose.started_in:.0f} s")
        yield compose


def test_scale_every_container_is_healthy_behind_nginx(scale: ComposeStack) -> None:
    assert set(scale.containers()) == SCALE_SERVICES
    for service in SCALE_SERVICES:
        assert scale.health(service) == "healthy", service
        assert scale.process_uid(service) != 0, f"{service} runs as root"
    with scale.client(scale.balancer_url) as through_nginx:
        assert answer(chat(through_nginx)) == HELLO_REPLY
        assert through_nginx.get("/").status_code == 200


def test_scale_a_keys_limit_is_counted_across_gateways(scale: ComposeStack) -> None:
    with scale.gateway_client() as admin:
        created = admin.post(
            "/admin/keys", json={"name": "shared limit", "role": "user", "limits": {"requestsPerMinute": 3}}
        )
    assert created.status_code in (200, 201), created.text
    key = created.json()["key"]
    # nginx takes turns: of three requests in a row, each gateway gets at least one.
    with scale.client(scale.balancer_url, key) as through_nginx:
        spent = [chat(through_nginx, max_tokens=1).status_code for _ in range(3)]
    # The first gateway, asked directly, has seen at most two of them: only a shared count refuses.
    with scale.gateway_client(key) as first:
        refused = [chat(first, max_tokens=1).status_code for _ in range(3)]
    assert (spent, refused) == ([200] * 3, [429] * 3), "3 a minute on both gateways together"


@pytest.fixture
def first_gateway_stopped(scale: ComposeStack) -> Iterator[HalfRead]:
    """An answer asked on the first gateway (its published port) and read in part there; then that
    gateway stops, so that nginx can reach only the second one; it starts again afterwards."""
    with scale.gateway_client() as first:
        started = ask(first)
        part = first_events(first, started.stream_url, 2)
        # The answer is finished on this gateway before it stops: its events wait in Redis.
        wait_for(
            lambda: stored_reply(first, started.conversation)["status"] != "streaming", "the answer", 120
        )
    scale.stop("gateway")
    try:
        yield HalfRead(scale, started, part)
    finally:
        scale.start("gateway")
        scale.wait_healthy(["gateway"], timeout=300)


def test_scale_a_stream_begun_on_one_gateway_resumes_through_nginx_on_the_other(
    first_gateway_stopped: HalfRead,
) -> None:
    half = first_gateway_stopped
    with half.compose.client(half.compose.balancer_url) as through_nginx:
        rest = follow(through_nginx, half.started.stream_url, last_event_id=half.first[-1].id, deadline=60)
    assert rest.ended_by == "final", rest
    assert check_resumed(half.first, rest.events) == HELLO_REPLY
