"""A paced OpenAI-compatible SSE upstream for the gateway benchmark.

It answers every chat completion with ``FAKE_TOKENS`` chunks (fewer when the request's
``max_tokens`` asks for fewer), one every ``FAKE_INTERVAL_MS``, so that the gateway's cost can be
measured apart from any model. A raw ASGI app keeps its own
overhead small. Run: ``python fake_upstream.py PORT``.

For the fault benchmark: ``FAKE_FIRST_TOKEN_DELAY_MS`` holds back the first chunk (the response
headers go out at once, as a model service that is slow to prefill sends them), and ``FAKE_NAME``
goes into every chunk's id (``chatcmpl-fake-NAME``) so that a client can tell replicas apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from typing import Any

import uvicorn

TOKENS = int(os.environ.get("FAKE_TOKENS", "64"))
INTERVAL = float(os.environ.get("FAKE_INTERVAL_MS", "20")) / 1000
FIRST_TOKEN_DELAY = float(os.environ.get("FAKE_FIRST_TOKEN_DELAY_MS", "0")) / 1000
CHUNK_ID = "chatcmpl-fake" + (f"-{os.environ['FAKE_NAME']}" if os.environ.get("FAKE_NAME") else "")
WORDS = ["你", "好", "世界", " hello", " world", "。", "模型", " stream"]


def chunk(i: int, created: int) -> bytes:
    body = {
        "id": CHUNK_ID,
        "object": "chat.completion.chunk",
        "created": created,
        "model": "demo-model",
        "choices": [{"index": 0, "delta": {"content": WORDS[i % len(WORDS)]}, "finish_reason": None}],
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


def final(created: int, tokens: int) -> bytes:
    done = {
        "id": CHUNK_ID,
        "object": "chat.completion.chunk",
        "created": created,
        "model": "demo-model",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
    }
    usage = {
        **done,
        "choices": [],
        "usage": {"prompt_tokens": 8, "completion_tokens": tokens, "total_tokens": tokens + 8},
    }
    return (f"data: {json.dumps(done)}\n\ndata: {json.dumps(usage)}\n\ndata: [DONE]\n\n").encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path in ("/ready", "/health"):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"status":"ready"}'})
        return
    if path == "/v1/models":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": b'{"object":"list","data":[{"id":"demo-model","object":"model"}]}',
            }
        )
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    tokens = TOKENS
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        tokens = max(1, min(TOKENS, int(json.loads(body).get("max_tokens") or TOKENS)))
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    created = int(time.time())
    try:
        if FIRST_TOKEN_DELAY > 0:
            await asyncio.sleep(FIRST_TOKEN_DELAY)
        start = time.perf_counter()
        for i in range(tokens):
            await send({"type": "http.response.body", "body": chunk(i, created), "more_body": True})
            # Pace against the start time so that a slow loop does not stretch the whole stream.
            delay = start + (i + 1) * INTERVAL - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": final(created, tokens), "more_body": False})
    except OSError:
        return


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", backlog=4096, timeout_keep_alive=60
    )
