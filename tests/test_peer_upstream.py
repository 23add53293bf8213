"""The gateway in front of another engine: `transformers serve` on the demo model as the only upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from harness.sse import events
from harness.stack import ROOT, SERVICE_DIR, Stack, free_port

MODEL = "demo-model"
HELLO_REPLY = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。"
DEMO_MODEL_DIR = SERVICE_DIR / ".cache" / "demo-model"
TRANSFORMERS_CLI = SERVICE_DIR / ".venv" / "bin" / "transformers"


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`transformers serve` pinned to the demo model, and a gateway configured for it from env."""
    if not (DEMO_MODEL_DIR / "config.json").exists():
        pytest.fail(f"the demo model is missing at {DEMO_MODEL_DIR}: run `make demo-model`")
    with Stack(tmp_path_factory.mktemp("peer")) as stack:
        port = free_port()
        command = [str(TRANSFORMERS_CLI), "serve", str(DEMO_MODEL_DIR), "--device", "cpu"]
        stack.start(
            "transformers-serve",
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            port=port,
            ready="/health",
            env={"HF_HUB_OFFLINE": "1"},
            cwd=ROOT,
        )
        # The engine is pinned to the model directory and refuses any other model name.
        stack.add_gateway([f"http://127.0.0.1:{port}#engine=transformers&model={DEMO_MODEL_DIR}"])
        yield stack


def _stream(client: httpx.Client, body: dict) -> tuple[str, list[dict], list[str]]:
    """The streamed text, the parsed chunks and the raw data lines ([DONE] included)."""
    text, chunks, datas = [], [], []
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as resp:
        assert resp.status_code == 200, resp.read()
        for ev in events(resp):
            datas.append(ev.data)
            if ev.data == "[DONE]":
                continue
            chunk = json.loads(ev.data)
            chunks.append(chunk)
            for choice in chunk.get("choices", []):
                text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text), chunks, datas


def test_the_gateway_reports_itself_up_in_front_of_another_engine(peer: Stack) -> None:
    health = httpx.get(f"{peer.gateway_url}/actuator/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "UP", health.text
    with peer.gateway_client() as gateway:
        models = gateway.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == [MODEL], "the public model name is listed, not the engine's"


def test_stream_and_whole_reply_are_equal(peer: Stack) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "你好"}],
        "max_tokens": 48,
        "temperature": 0,
        "stream_options": {"include_usage": True},
    }
    with peer.gateway_client() as gateway:
        streamed, chunks, datas = _stream(gateway, body)
        whole = gateway.post(
            "/v1/chat/completions", json={k: v for k, v in body.items() if k != "stream_options"}
        )
    assert whole.status_code == 200, whole.text
    reply = whole.json()
    assert streamed.strip(), "the engine streamed nothing"
    assert "\ufffd" not in streamed
    assert reply["choices"][0]["message"]["content"] == streamed
    assert reply["model"] == MODEL and all(c["model"] == MODEL for c in chunks)
    # The engine ends its body without [DONE]; the gateway still ends its stream properly.
    assert datas[-1] == "[DONE]" and datas.count("[DONE]") == 1
    assert [c for c in chunks if c.get("choices") and c["choices"][0].get("finish_reason")], chunks
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert len(usage) == 1 and usage[0]["completion_tokens"] > 0 and usage[0]["prompt_tokens"] > 0
    assert reply["usage"]["completion_tokens"] == usage[0]["completion_tokens"]


def test_the_product_stream_works_with_usage(peer: Stack) -> None:
    body = {"model": MODEL, "query": "你好"}
    with peer.gateway_client() as gateway, gateway.stream("POST", "/api/chat/messages", json=body) as resp:
        assert resp.status_code == 200, resp.read()
        received = list(events(resp))
    deltas = [e for e in received if e.event == "message"]
    finish = [e for e in received if e.event == "finish"]
    assert deltas and len(finish) == 1 and received[-1] is finish[0], received
    assert "".join(json.loads(e.data)["text"] for e in deltas).strip()
    done = json.loads(finish[0].data)
    assert done["finish_reason"] in ("stop", "length")
    assert (
        done["usage"]["completion_tokens"] > 0
        and done["usage"]["total_tokens"] > done["usage"]["completion_tokens"]
    )
    assert done["degraded"] is False


def test_the_demo_model_answers_through_the_engine_as_through_our_service(peer: Stack) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "你好"}],
        "max_tokens": 64,
        "temperature": 0,
    }
    with peer.gateway_client() as gateway:
        reply = gateway.post("/v1/chat/completions", json=body).json()
    assert reply["choices"][0]["message"]["content"] == HELLO_REPLY


def test_the_gateway_neither_scrapes_nor_warns_about_an_engine_without_our_metrics(peer: Stack) -> None:
    engine_log = (peer.logs / "transformers-serve.log").read_text()
    assert "GET /health" in engine_log and "/metrics" not in engine_log and "/ready" not in engine_log
    gateway_log = peer.gateway.output()
    assert not [line for line in gateway_log.splitlines() if " WARN " in line and "upstream" in line]
