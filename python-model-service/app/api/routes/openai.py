"""OpenAI-compatible endpoints."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.api.deps import RecordDep, ServiceDep, json_body, require_token, until_disconnect
from app.protocol import ChatCompletionRequest, ModelCard, ModelList
from app.serving.openai import complete_openai, prepare_openai, stream_openai
from app.serving.sse import with_pings

router = APIRouter(dependencies=[Depends(require_token)])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_STARTED = int(time.time())


@router.get("/v1/models")
async def list_models(service: ServiceDep) -> ModelList:
    """The one model this service serves."""
    return ModelList(data=[ModelCard(id=service.model_id, created=_STARTED)])


@router.post("/v1/chat/completions")
async def create_chat_completion(
    request: Request,
    service: ServiceDep,
    record: RecordDep,
    body: Annotated[ChatCompletionRequest, Depends(json_body(ChatCompletionRequest))],
) -> Response:
    """Chat completion, streamed as SSE or returned whole."""
    prepared = prepare_openai(service, body, record.request_id)
    ticket = service.admit()
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = stream_openai(service, prepared, ticket, record, include_usage)
        return StreamingResponse(
            with_pings(events, service.settings.ping_interval_s),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    result = await until_disconnect(request, complete_openai(service, prepared, ticket, record))
    if result is None:
        ticket.release()
        return Response(status_code=499)
    return JSONResponse(result.model_dump())
