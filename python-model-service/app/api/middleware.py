"""ASGI middleware: request ids, access log, body size limit."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.ids import random_hex
from app.core.logging import request_id_var
from app.serving.errors import ApiError
from app.serving.metrics import ServiceMetrics
from app.serving.record import RequestRecord

access_log = logging.getLogger("app.access")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
KNOWN_ROUTES = frozenset(
    {"/v1/chat/completions", "/v1/models", "/chat/new/message/", "/health", "/ready", "/metrics"}
)


class RequestContextMiddleware:
    """Assigns (or honours) ``X-Request-Id``, and writes one access log line per request."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        rid = incoming if incoming and _VALID_REQUEST_ID.match(incoming) else random_hex()
        record = RequestRecord(request_id=rid)
        scope.setdefault("state", {})
        scope["state"]["request_id"] = rid
        scope["state"]["record"] = record
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500
        logged = False

        def write_log() -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            path = scope.get("path", "")
            route = path if path in KNOWN_ROUTES else "other"
            self.metrics.requests.labels(route=route, status=str(status)).inc()
            if path in ("/health", "/ready", "/metrics"):
                return
            fields = [
                "event=access",
                f"method={scope.get('method')}",
                f"path={path}",
                f"status={status}",
                f"model={record.model or '-'}",
                f"prompt_tokens={_num(record.prompt_tokens)}",
                f"completion_tokens={_num(record.completion_tokens)}",
                f"ttft_ms={_ms(record.ttft_s)}",
                f"duration_ms={_ms(time.perf_counter() - started)}",
                f"finish_reason={record.finish_reason or '-'}",
            ]
            if record.prompt_text is not None:
                fields.append(f"prompt={record.prompt_text!r}")
                fields.append(f"reply={''.join(record.reply_text)!r}")
            access_log.info(" ".join(fields), extra={"request_id": rid})

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                write_log()

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            write_log()  # disconnects and errors still get their line
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuses bodies over the limit: at once from Content-Length, or as soon as the stream exceeds it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            err = ApiError(
                413,
                f"The request body is larger than {self.max_bytes} bytes",
                code="request_too_large",
            )
            await _send_json(send, err.status, err.body())
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, f"The request body is larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:
                return None
    return None


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    import json

    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
