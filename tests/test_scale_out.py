"""Scale-out on one machine: two gateways behind the deployment's nginx, two model services, a real
PostgreSQL and a real Redis, all started here as processes (the machine has no container engine).

What a platform team relies on when it runs replicas: a key's limits hold across gateways, an
operator's switch reaches every gateway at once, a browser signed in through nginx stays signed in
whichever gateway answers (and after a gateway restart) and is signed out everywhere at once when its
session is closed or its key revoked, a gateway killed mid-stream loses no browser's text
(every stream resumes through the load balancer on the other gateway, exactly, and ends with the full
answer or a clean error, never a hang), and a killed model service costs no request.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from harness.sse import Event, Followed, events, follow
from harness.stack import Gateway, ModelService, Process, Stack

MODEL = "demo-model"
HELLO_REPLY = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"
QUERIES = ["介绍一下长城", "什么是人工智能?", "写一首关于春天的诗", "Tell me a short story."]
LEASE_S = 3  # how long a dead gateway's answers stay live before another replica ends them
STREAMS = 8
READERS_PER_STREAM = 2  # two tabs per answer: readers land on both gateways through nginx


@dataclass
class ScaleOut:
    stack: Stack
    gateways: list[Gateway]
    models: list[ModelService]
    balancer: Process

    def client(self, base: str, key: str | None = None, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key or self.stack.admin_key}"}, timeout=timeout
        )


@pytest.fixture(scope="module")
def scale_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleOut]:
    with Stack(tmp_path_factory.mktemp("scale-out")) as stack:
        replicas = stack.add_replicas(
            # One generation at a time per model service: under this load the answers queue, so that
            # many are still running when a gateway dies.
            model_env={"MODEL_MAX_BATCH_REQUESTS": "1"},
            gateway_env={
                "GATEWAY_STREAM_LEASE_DURATION": f"{LEASE_S}s",
                "GATEWAY_STREAM_LEASE_RENEW_INTERVAL": "1s",
            },
        )
        yield ScaleOut(stack, replicas.gateways, replicas.models, replicas.balancer)


def chat(client: httpx.Client, content: str = "你好", max_tokens: int = 64) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    return client.post("/v1/chat/completions", json=body | {"max_tokens": max_tokens, "temperature": 0})


def test_a_keys_limits_hold_across_gateways(scale_out: ScaleOut) -> None:
    with scale_out.client(scale_out.gateways[0].url) as admin:
        created = admin.post(
            "/admin/keys", json={"name": "shared-limits", "role": "user", "limits": {"requestsPerMinute": 3}}
        )
    assert created.status_code in (200, 201), created.text
    key = created.json()["key"]
    statuses = []
    for i in range(6):
        with scale_out.client(scale_out.gateways[i % 2].url, key) as client:
            statuses.append(chat(client, max_tokens=1).status_code)
    assert sorted(statuses) == [200, 200, 200, 429, 429, 429], (
        f"3 per minute on both gateways together: {statuses}"
    )


def seconds_until(check: Callable[[], bool], limit: float = 10.0) -> float | None:
    """How long until ``check`` holds (polled), or None when it does not within ``limit`` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def test_a_switch_reaches_the_other_gateway_within_two_seconds(scale_out: ScaleOut) -> None:
    one, other = (scale_out.client(g.url) for g in scale_out.gateways)

    def in_maintenance() -> bool:
        return "maintenance" in chat(other, max_tokens=1).headers.get("X-Degraded", "")

    with one, other:
        assert not in_maintenance()
        assert one.put("/admin/switches/maintenance", json={"value": True}).status_code == 200
        on = seconds_until(in_maintenance)
        assert one.put("/admin/switches/maintenance", json={"value": False}).status_code == 200
        off = seconds_until(lambda: not in_maintenance())
    assert on is not None and on < 2.0, f"the other gateway saw the switch go on after {on} s"
    assert off is not None and off < 2.0, f"the other gateway saw the switch go off after {off} s"


BROWSER_TURNS = 20
# A turn is three requests, and a new conversation one more: every kind of request meets both gateways.
TURNS_PER_CONVERSATION = 5


class Refused(AssertionError):
    """A request of a signed-in browser was not answered as a browser needs."""


def expect(response: httpx.Response) -> httpx.Response:
    if not response.is_success:
        request = response.request
        raise Refused(f"{request.method} {request.url.path} -> {response.status_code} {response.text}")
    return response


def browser(base: str, origin: str, cookie: str = "") -> httpx.Client:
    """A page served from ``origin`` making its requests to ``base``, with ``cookie`` and no API key: like
    a browser, it names its origin on state-changing requests (the gateway's cross-site check)."""

    def name_origin(request: httpx.Request) -> None:
        if request.method not in ("GET", "HEAD"):
            request.headers["Origin"] = origin

    return httpx.Client(
        base_url=base,
        headers={"Cookie": cookie} if cookie else {},
        event_hooks={"request": [name_origin]},
        timeout=60.0,
    )


def sign_in(scale_out: ScaleOut, name: str) -> tuple[str, str]:
    """Signs in through nginx with a fresh user key; the key's id and the browser's cookie header."""
    with scale_out.client(scale_out.gateways[0].url) as admin:
        created = expect(admin.post("/admin/keys", json={"name": name, "role": "user"})).json()
    nginx = scale_out.balancer.url
    with browser(nginx, nginx) as page:
        signed_in = expect(page.post("/api/session", json={"apiKey": created["key"]}))
    # What the browser keeps: each cookie's name=value, less any the reply clears (an empty value).
    pairs = [c.split(";", 1)[0].strip() for c in signed_in.headers.get_list("set-cookie")]
    cookies = [pair for pair in pairs if pair.partition("=")[2]]
    assert cookies, f"signing in set no cookie: {signed_in.headers}"
    return created["id"], "; ".join(cookies)


def session_status(scale_out: ScaleOut, cookie: str) -> dict[str, str]:
    """What ``GET /api/session`` with ``cookie`` answers on each gateway, asked directly."""
    answers = {}
    for gateway in scale_out.gateways:
        with browser(gateway.url, gateway.url, cookie) as page:
            reply = page.get("/api/session")
        answers[gateway.name] = f"{reply.status_code} {reply.text}"
    return answers


def assert_signed_in_everywhere(scale_out: ScaleOut, key_id: str, cookie: str, when: str) -> None:
    answers = session_status(scale_out, cookie)
    unknown = {name: a for name, a in answers.items() if not (a.startswith("200 ") and key_id in a)}
    assert not unknown, f"{when}, the browser's session is not signed in on every gateway: {unknown}"


def chat_as_a_browser(page: httpx.Client, turns: int) -> list[str]:
    """``turns`` questions asked as the chat page asks them (a new conversation every few), each reply
    read from its stream as an EventSource reads it, then the conversation read back; what went wrong,
    one line per failed turn."""
    failures = []
    conversation = ""
    for turn in range(turns):
        try:
            if turn % TURNS_PER_CONVERSATION == 0 or not conversation:
                conversation = expect(page.post("/api/conversations", json={})).json()["id"]
            question = {"model": MODEL, "query": "你好"}
            asked = expect(page.post(f"/api/conversations/{conversation}/messages", json=question)).json()
            read = follow(page, asked["streamUrl"], deadline=60, give_up_on=range(400, 500))
            if read.ended_by != "final" or read.events[-1].event != "finish":
                last = read.events[-1].data if read.events else ""
                raise Refused(f"GET {asked['streamUrl']} ended by {read.ended_by}: {read.refusal or last}")
            if read.text() != HELLO_REPLY:
                raise Refused(f"the reply read from the stream is {read.text()!r}")
            stored = expect(page.get(f"/api/conversations/{conversation}/messages")).json()["data"]
            reply = next((m for m in stored if m["id"] == asked["messageId"]), None)
            if reply is None or reply["content"] != HELLO_REPLY:
                raise Refused(f"the stored reply is {reply}")
        except Refused as e:
            failures.append(f"turn {turn + 1}: {e}")
            conversation = ""
    return failures


def test_a_browser_session_works_on_both_gateways_outlives_a_restart_and_ends_with_its_key(
    scale_out: ScaleOut,
) -> None:
    stack = scale_out
    nginx = stack.balancer.url
    key_id, cookie = sign_in(stack, "browser through nginx")
    assert_signed_in_everywhere(stack, key_id, cookie, "right after signing in through nginx")

    with browser(nginx, nginx, cookie) as page:
        failures = chat_as_a_browser(page, BROWSER_TURNS)
    failed = f"{len(failures)} of {BROWSER_TURNS} turns failed through nginx"
    assert not failures, "\n".join([failed, *failures])

    # A restarted gateway has nothing in memory: the session must come back from what the gateways share.
    stack.stack.restart(stack.gateways[0])
    assert_signed_in_everywhere(stack, key_id, cookie, "after a gateway restart")
    with browser(nginx, nginx, cookie) as page:
        failures = chat_as_a_browser(page, 2)
    assert not failures, "after a gateway restart, through nginx:\n" + "\n".join(failures)

    pages = [browser(g.url, g.url, cookie) for g in stack.gateways]
    try:
        with stack.client(stack.gateways[0].url) as admin:
            expect(admin.delete(f"/admin/keys/{key_id}"))
        delay = seconds_until(lambda: all(p.get("/api/session").status_code == 401 for p in pages))
    finally:
        for p in pages:
            p.close()
    assert delay is not None and delay <= 1.0, (
        f"the session of a revoked key ended on both gateways after {delay} s (None: not within 10 s): "
        f"{session_status(stack, cookie)}"
    )


def test_a_browser_session_closed_through_nginx_ends_on_both_gateways(scale_out: ScaleOut) -> None:
    stack = scale_out
    nginx = stack.balancer.url
    key_id, cookie = sign_in(stack, "signs out through nginx")
    assert_signed_in_everywhere(stack, key_id, cookie, "right after signing in through nginx")
    with browser(nginx, nginx, cookie) as page:
        expect(page.delete("/api/session"))
    pages = [browser(g.url, g.url, cookie) for g in stack.gateways]
    try:
        delay = seconds_until(lambda: all(p.get("/api/session").status_code == 401 for p in pages))
    finally:
        for p in pages:
            p.close()
    assert delay is not None and delay <= 1.0, (
        f"a closed session ended on both gateways after {delay} s (None: not within 10 s): "
        f"{session_status(stack, cookie)}"
    )


@dataclass
class Answer:
    conversation: str
    message_id: str
    stream_url: str


def start_answers(client: httpx.Client) -> list[Answer]:
    """Browser-style turns through the load balancer: each generation runs on the gateway that got its
    message. The conversations are made first, so that round robin spreads the messages themselves."""
    conversations = [client.post("/api/conversations", json={}).json()["id"] for _ in range(STREAMS)]
    answers = []
    for i, conversation in enumerate(conversations):
        query = QUERIES[i % len(QUERIES)]
        started = client.post(
            f"/api/conversations/{conversation}/messages", json={"model": MODEL, "query": query}
        )
        assert started.status_code in (200, 201, 202), started.text
        answers.append(Answer(conversation, started.json()["messageId"], started.json()["streamUrl"]))
    return answers


def freeze(models: list[ModelService]) -> None:
    for model in models:
        os.kill(model.pid, signal.SIGSTOP)


def thaw(models: list[ModelService]) -> None:
    for model in models:
        os.kill(model.pid, signal.SIGCONT)


def check_exact(followed: Followed, replay: list[Event]) -> None:
    """The reader got every event once, in order, exactly as the stream holds them."""
    ids = [int(e.id) for e in followed.events]
    assert ids == list(range(1, len(ids) + 1)), f"lost or repeated events: ids {ids}"
    assert [(e.id, e.event, e.data) for e in followed.events] == [(e.id, e.event, e.data) for e in replay]


def test_a_gateway_killed_mid_stream_loses_no_browser_text(scale_out: ScaleOut) -> None:
    stack = scale_out
    victim, survivor = stack.gateways
    # The model services are frozen while the answers are asked for and their readers connect, so that
    # every reader sees its answer live from the first token.
    freeze(stack.models)
    try:
        with stack.client(stack.balancer.url) as through_lb:
            answers = start_answers(through_lb)
    except BaseException:
        thaw(stack.models)
        raise
    first_token = threading.Event()

    def read(n: int) -> Followed:
        answer = answers[n // READERS_PER_STREAM]

        def seen(event: Event) -> None:
            if event.event == "message":
                first_token.set()

        with stack.client(stack.balancer.url) as client:
            return follow(client, answer.stream_url, on_event=seen, deadline=120)

    with ThreadPoolExecutor(STREAMS * READERS_PER_STREAM) as pool:
        readers = [pool.submit(read, n) for n in range(STREAMS * READERS_PER_STREAM)]
        time.sleep(1.0)  # the readers connect
        thaw(stack.models)
        assert first_token.wait(timeout=60), "no answer started"
        # One generation at a time per model service: two answers are mid-stream, the rest queued.
        freeze(stack.models)
        try:
            stack.stack.kill(victim)  # SIGKILL: no shutdown hook, no goodbye to Redis or the database
        finally:
            thaw(stack.models)
        results = [r.result() for r in readers]

    resumed_in_full = interrupted = 0
    with stack.client(survivor.url) as client:
        for n, followed in enumerate(results):
            answer = answers[n // READERS_PER_STREAM]
            assert followed.ended_by == "final", f"stream {answer.message_id} did not end: {followed}"
            with client.stream("GET", answer.stream_url, headers={"Accept": "text/event-stream"}) as full:
                replay = list(events(full))
            check_exact(followed, replay)
            last = followed.events[-1]

            def stored_reply(conversation: str = answer.conversation) -> dict:
                stored = client.get(f"/api/conversations/{conversation}/messages").json()["data"]
                return next(m for m in stored if m["role"] == "assistant")

            reply = stored_reply()
            if last.event == "finish":
                assert reply["content"] == followed.text(), "the stored answer is the streamed one"
                resumed_in_full += followed.connections > 1
            else:
                assert last.event == "error", last
                assert last.json()["error"]["code"] == "generation_interrupted", last.data
                # The replica that ends the stream marks the answer failed right after the error event.
                seconds_until(lambda: stored_reply()["status"] != "streaming", limit=2.0)
                reply = stored_reply()
                assert reply["status"] == "failed", reply
                assert reply["content"] == followed.text(), "the stored partial answer is the streamed one"
                interrupted += 1
    # Readers reach both gateways through nginx and answers run on both: the killed gateway's readers
    # resumed on the survivor, and the killed gateway's answers ended with a clean error.
    seen = [(f.connections, f.events[-1].event, len(f.events)) for f in results]
    assert resumed_in_full > 0, f"no reader of a surviving answer resumed on the other gateway: {seen}"
    assert interrupted > 0, f"no answer of the killed gateway was mid-stream: {seen}"


def test_a_killed_model_service_costs_no_request(scale_out: ScaleOut) -> None:
    stack = scale_out
    stack.stack.kill(stack.models[0])
    with stack.client(stack.balancer.url) as client:
        replies = [chat(client) for _ in range(6)]
    assert [r.status_code for r in replies] == [200] * 6, [r.text for r in replies if r.status_code != 200]
    assert {r.json()["choices"][0]["message"]["content"] for r in replies} == {HELLO_REPLY}
