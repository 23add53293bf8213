"""The FastAPI application: lifespan (load, warm up, drain), routers, error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.deps import validation_error
from app.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from app.api.routes import health, lesson, openai
from app.core.config import Settings
from app.engine.base import Engine
from app.protocol import ChatCompletionRequest, LessonChatRequest
from app.serving.chat import ChatService
from app.serving.errors import ApiError
from app.serving.metrics import ServiceMetrics

log = logging.getLogger("app")

_HTTP_ERROR_TYPES = {
    401: ("authentication_error", "invalid_token"),
    403: ("permission_error", "forbidden"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
}


def resolve_model_path(settings: Settings) -> str:
    """MODEL_PATH, or the bundled demo model when unset (which must have been built)."""
    from app.engine.loader import ModelLoadError

    if settings.path:
        looks_local = settings.path.startswith(("/", "./", "../", "~")) or settings.path.count("/") > 1
        if looks_local and not Path(settings.path).expanduser().is_dir():
            # A hub id is "org/name"; anything else that is not a folder is a typo, not a download.
            raise ModelLoadError(f"MODEL_PATH={settings.path!r} is not a folder on this machine")
        return settings.path
    from app.demo_model.build import default_model_dir

    folder = default_model_dir()
    if not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"MODEL_PATH is unset and the demo model is not built at {folder}: run `make demo-model` "
            "(or point MODEL_PATH at a model folder)"
        )
    return str(folder)


def load_engine_from_settings(settings: Settings) -> Engine:
    """Load the configured model into the configured engine (blocking)."""
    from app.engine.loader import load_engine, served_model_name

    path = resolve_model_path(settings)
    return load_engine(
        path,
        model_id=served_model_name(path, settings.name),
        device=settings.device,
        dtype=settings.dtype,
        trust_remote_code=settings.trust_remote_code,
        engine=settings.engine,
        max_model_len=settings.max_model_len,
        max_batch_tokens=settings.max_batch_tokens,
        max_batch_requests=settings.max_batch_requests,
        prefix_cache=settings.prefix_cache,
        attention=settings.attention,
    )


def build_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The application; pass an already started ``engine`` to share one across apps (tests, benchmarks)."""
    settings = settings or Settings()
    metrics = ServiceMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        eng = engine
        if eng is None:
            eng = await asyncio.to_thread(load_engine_from_settings, settings)
            eng.start()
        service = ChatService(eng, settings, metrics)
        app.state.service = service

        async def warm_up() -> None:
            try:
                await eng.warmup()
            except Exception:
                log.exception("event=warmup_failed")
                raise
            app.state.ready = True
            log.info(
                "event=ready model=%s engine=%s attention=%s max_model_len=%d host=%s port=%d",
                service.model_id,
                eng.kind,
                eng.attention,
                service.max_model_len,
                settings.host,
                settings.port,
            )

        warm = asyncio.create_task(warm_up())
        try:
            yield
        finally:
            service.draining = True
            app.state.ready = False
            warm.cancel()
            with contextlib.suppress(BaseException):
                await warm
            if owned:
                await asyncio.to_thread(eng.stop, 10.0)
            log.info("event=stopped")

    app = FastAPI(title="LLM model service", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.ready = False
    app.state.service = None
    app.include_router(health.router)
    app.include_router(openai.router)
    app.include_router(lesson.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    _install_error_handlers(app)
    _document_request_bodies(app)
    return app


# The chat routes parse their bodies themselves (precise 400s): their schemas are added here, so
# that the OpenAPI document describes them (clients, and the fuzzing tests, read it).
_REQUEST_BODIES: dict[str, type[BaseModel]] = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/chat/new/message/": LessonChatRequest,
}


def _document_request_bodies(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, routes=app.routes)
            _, definitions = models_json_schema(
                [(model, "validation") for model in _REQUEST_BODIES.values()],
                ref_template="#/components/schemas/{model}",
            )
            spec.setdefault("components", {}).setdefault("schemas", {}).update(definitions["$defs"])
            for path, model in _REQUEST_BODIES.items():
                spec["paths"][path]["post"]["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
                    },
                }
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = validation_error(exc.errors())
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind, code = _HTTP_ERROR_TYPES.get(exc.status_code, ("invalid_request_error", "http_error"))
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        err = ApiError(exc.status_code, message, type=kind, code=code, headers=dict(exc.headers or {}))
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("event=unhandled_error error=%s", type(exc).__name__, exc_info=exc)
        err = ApiError(500, "Internal server error", type="server_error", code="internal_error")
        return JSONResponse(err.body(), status_code=500)


def __getattr__(name: str) -> Any:
    # `uvicorn app.main:app` builds the app from the environment on first access; importing this
    # module (tests, tools) must not require a configured environment.
    if name == "app":
        return build_app()
    raise AttributeError(name)
