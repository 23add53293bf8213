"""Dependencies shared by the route handlers.

All are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a hand-off that costs
more than these functions do.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from app.core.config import Settings
from app.serving.chat import ChatService
from app.serving.errors import ApiError, invalid, overloaded
from app.serving.record import RequestRecord

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_service(request: Request) -> ChatService:
    """The chat service, or 503 until the model is loaded and warm."""
    service: ChatService | None = getattr(request.app.state, "service", None)
    if service is None or not request.app.state.ready:
        raise overloaded("The model is not ready yet", request.app.state.settings.retry_after_s)
    return service


async def get_record(request: Request) -> RequestRecord:
    """This request's access-log record."""
    record: RequestRecord = request.state.record
    return record


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[ChatService, Depends(get_service)]
RecordDep = Annotated[RequestRecord, Depends(get_record)]


async def require_token(request: Request, settings: SettingsDep) -> None:
    """``Authorization: Bearer <MODEL_SERVICE_TOKEN>``, compared in constant time."""
    if not settings.auth_enabled:
        return
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    expected = settings.service_token.encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), expected):
        raise ApiError(
            401,
            "Missing or invalid bearer token",
            type="authentication_error",
            code="invalid_token",
            headers={"WWW-Authenticate": "Bearer"},
        )


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that parses the body itself, so every failure gets a precise 400."""

    async def parse(request: Request) -> M:
        raw = await request.body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise invalid("The request body is not valid UTF-8", None, code="invalid_encoding") from exc
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise invalid(
                f"The request body is not valid JSON: {exc.msg}", None, code="invalid_json"
            ) from exc
        except RecursionError as exc:
            # The parser recurses per level: a body nested thousands deep is the client's mistake.
            raise invalid("The request body is nested too deeply", None, code="invalid_json") from exc
        if not isinstance(data, dict):
            raise invalid("The request body must be a JSON object", None, code="invalid_json")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc.errors()) from exc

    return parse


def validation_error(errors: Any) -> ApiError:
    """The first pydantic error as a 400 naming its field."""
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    message = first.get("msg", "invalid request")
    return invalid(f"{param}: {message}" if param else message, param)


async def until_disconnect(request: Request, work: Awaitable[T]) -> T | None:
    """Run ``work``, cancelling it if the client goes away first (returns None then)."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    watch = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
    if task.cancelled():
        return None
    return task.result()
