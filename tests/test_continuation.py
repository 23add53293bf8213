"""Continuation failover across real tiers: a model service killed (SIGKILL) or stalled (SIGSTOP) while 16
greedy answers stream from it; each answer goes on from the other replica, spliced into the same stream:
the text equals the uninterrupted answer, one ``[DONE]``, the same usage. A product stream read across the
splice, with a reconnect by ``Last-Event-ID``, ends normally and is marked ``stream_continued``."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from harness import sse
from harness.stack import Gateway, ModelService, Stack

MODEL = "demo-model"
PROMPTS = ["介绍一下长城", "什么是人工智能?", "写一首关于春天的诗", "Tell me a short story."]
STREAMS = 16
MAX_TOKENS = 300
STALL_S = 10  # a loaded CI machine can pause a healthy replica for seconds


@dataclass
class Pair:
    stack: Stack
    gateway: Gateway
    models: list[ModelService]
    references: dict[str, tuple[str, dict[str, int]]] = field(default_factory=dict)


def body(prompt: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@dataclass
class Answer:
    """One streamed answer as the client saw it."""

    texts: list[str] = field(default_factory=list)
    payloads: list[Any] = field(default_factory=list)
    status: int = 0

    @property
    def text(self) -> str:
        return "".join(self.texts)


def read(client: httpx.Client, prompt: str, answer: Answer) -> Answer:
    with client.stream("POST", "/v1/chat/completions", json=body(prompt)) as r:
        answer.status = r.status_code
        for event in sse.events(r):
            payload = event.data if event.data == "[DONE]" else event.json()
            answer.payloads.append(payload)
            answer.texts.extend(sse.chunk_texts([payload]))
    return answer


def usage(answer: Answer) -> dict[str, int]:
    found = [p["usage"] for p in answer.payloads if isinstance(p, dict) and p.get("usage")]
    assert len(found) == 1, answer.payloads[-3:]
    return {k: found[0][k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


def replica_ready(pair: Pair, model: ModelService) -> bool | None:
    with pair.gateway.client() as admin:
        replicas = admin.get("/admin/status").json()["replicas"]
    mine = [r for r in replicas if f":{model.port}" in r["name"]]
    return bool(mine[0]["ready"]) if mine else None


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with Stack(tmp_path_factory.mktemp("continuation")) as stack:
        first = stack.add_model_service(name="model-a", wait=False)
        models = [first, stack.add_model_service(name="model-b")]
        stack.wait_ready(models[0])
        gateway = stack.add_gateway(
            models,
            env={
                "GATEWAY_UPSTREAM_HEALTHINTERVAL": "300ms",
                "GATEWAY_CONTINUATION_STALL_TIMEOUT": f"{STALL_S}s",
                # each test fails one replica's 16 answers: its breaker must not keep it out of the next
                "GATEWAY_BREAKER_WINDOW": "100",
                "GATEWAY_BREAKER_MINIMUMCALLS": "100",
            },
        )
        pair = Pair(stack, gateway, models)
        # The uninterrupted answers, one per prompt, streamed side by side.
        with gateway.client() as client, ThreadPoolExecutor(len(PROMPTS)) as pool:
            done = list(pool.map(lambda p: read(client, p, Answer()), PROMPTS))
        for prompt, answer in zip(PROMPTS, done, strict=True):
            assert answer.status == 200 and answer.payloads[-1] == "[DONE]"
            pair.references[prompt] = (answer.text, usage(answer))
        yield pair


def on_one_replica(pair: Pair, fault: Callable[[ModelService], None]) -> tuple[list[Answer], float]:
    """16 answers streamed from the first replica (the other one is frozen, so the gateway sends none
    there), then ``fault`` on that replica once the other is back in rotation and every answer is under
    way. Returns the answers, and the seconds from the fault to the last one's end."""
    victim, other = pair.models
    os.kill(other.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: replica_ready(pair, other) is False, 15, "the frozen replica to leave rotation")
        answers = [Answer() for _ in range(STREAMS)]
        client = pair.gateway.client(timeout=180)
        pool = ThreadPoolExecutor(STREAMS)
        futures = [pool.submit(read, client, PROMPTS[i % len(PROMPTS)], answers[i]) for i in range(STREAMS)]
        wait_for(lambda: all(len(a.texts) >= 5 for a in answers), 120, "every answer to start")
        # Held mid-answer (for less than the stall timeout) until the other replica is back in rotation.
        os.kill(victim.pid, signal.SIGSTOP)
    finally:
        os.kill(other.pid, signal.SIGCONT)
    try:
        wait_for(lambda: replica_ready(pair, other) is True, STALL_S / 2, "the thawed replica to return")
        cut = [len(a.text) for a in answers]
        fault(victim)
    finally:
        if victim.alive():
            os.kill(victim.pid, signal.SIGCONT)
    faulted = time.monotonic()
    for f in futures:
        f.result(timeout=300)
    elapsed = time.monotonic() - faulted
    pool.shutdown()
    client.close()
    full = [len(pair.references[PROMPTS[i % len(PROMPTS)]][0]) for i in range(STREAMS)]
    assert all(c < f for c, f in zip(cut, full, strict=True)), "an answer had ended before the fault"
    return answers, elapsed


def assert_spliced(pair: Pair, answers: list[Answer]) -> None:
    for i, answer in enumerate(answers):
        reference, reference_usage = pair.references[PROMPTS[i % len(PROMPTS)]]
        assert answer.status == 200
        errors = [p for p in answer.payloads if isinstance(p, dict) and "error" in p]
        assert not errors, errors
        assert answer.text == reference, f"answer {i} differs from the uninterrupted one"
        assert [p for p in answer.payloads if p == "[DONE]"] == ["[DONE]"] and answer.payloads[-1] == "[DONE]"
        assert usage(answer) == reference_usage
        assert len({p["id"] for p in answer.payloads if isinstance(p, dict)}) == 1


def continued_count(pair: Pair) -> float:
    with pair.gateway.client() as admin:
        text = admin.get("/actuator/prometheus").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gateway_degradation_decisions_total") and 'decision="stream_continued"' in line
    )


def test_answers_on_a_killed_replica_are_continued_exactly(pair: Pair) -> None:
    before = continued_count(pair)
    answers, elapsed = on_one_replica(pair, lambda victim: pair.stack.kill(victim))
    assert_spliced(pair, answers)
    assert continued_count(pair) - before == STREAMS
    print(f"16 answers continued after a kill; the last ended {elapsed:.1f} s after it")
    pair.stack.restart(pair.models[0])
    wait_for(lambda: replica_ready(pair, pair.models[0]) is True, 60, "the restarted replica")


def test_answers_on_a_stalled_replica_are_continued_exactly(pair: Pair) -> None:
    # The replica stays stopped (SIGSTOP) through the stall timeout: alive, connections open, silent.
    answers, elapsed = on_one_replica(pair, lambda victim: time.sleep(STALL_S * 1.5))
    assert_spliced(pair, answers)
    print(f"16 answers continued after a stall; the last ended {elapsed:.1f} s after it")


def test_a_product_stream_resumed_across_a_continuation(pair: Pair) -> None:
    victim, other = pair.models
    os.kill(other.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: replica_ready(pair, other) is False, 15, "the frozen replica to leave rotation")
        with pair.gateway.client() as client:
            conversation = client.post("/api/conversations", json={}).json()["id"]
            started = client.post(
                f"/api/conversations/{conversation}/messages", json={"model": MODEL, "query": PROMPTS[0]}
            ).json()
            # read the first events, then go away as a closed tab does
            first: list[sse.Event] = []
            with client.stream("GET", started["streamUrl"]) as r:
                for event in sse.events(r):
                    first.append(event)
                    if sum(e.event == "message" for e in first) >= 3:
                        os.kill(victim.pid, signal.SIGSTOP)  # mid-answer until the other one is back
                        break
    finally:
        os.kill(other.pid, signal.SIGCONT)
    wait_for(lambda: replica_ready(pair, other) is True, STALL_S / 2, "the thawed replica to return")
    pair.stack.kill(victim)
    try:
        with pair.gateway.client(timeout=180) as client:
            with client.stream(
                "GET", started["streamUrl"], headers={"Last-Event-ID": first[-1].id or ""}
            ) as r:
                rest = list(sse.events(r))
            stored = client.get(f"/api/conversations/{conversation}/messages").json()
    finally:
        pair.stack.restart(victim)
    events = first + rest
    ids = [int(e.id) for e in events if e.id]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "an event was lost or repeated"
    finish = [e.json() for e in events if e.event == "finish"]
    assert not [e for e in events if e.event == "error"]
    assert len(finish) == 1 and finish[0]["degraded"] is True
    assert "stream_continued" in finish[0]["degraded_reason"]
    text = "".join(e.json()["text"] for e in events if e.event == "message")
    messages = stored["data"]
    answer = [m for m in messages if m["role"] == "assistant"][-1]
    assert answer["content"] == text
    assert "stream_continued" in (answer.get("degradedReason") or "")
