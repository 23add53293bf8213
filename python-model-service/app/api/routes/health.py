"""Liveness, readiness and metrics: open, no token needed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.serving.errors import overloaded

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> Response:
    """200 once the model is loaded and warm; 503 before that and while shutting down."""
    state = request.app.state
    service = getattr(state, "service", None)
    if service is None or not state.ready or service.draining or not service.engine.healthy():
        if service is None or not state.ready:
            reason = "loading"
        else:
            reason = "shutting down" if service.draining else "engine stopped"
        err = overloaded(f"The model service is not ready ({reason})", state.settings.retry_after_s)
        return JSONResponse(err.body(), status_code=503, headers=err.headers)
    return JSONResponse({"status": "ready", "model": service.model_id, "engine": service.engine.kind})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    service = getattr(request.app.state, "service", None)
    if service is not None:
        service.update_gauges()
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
