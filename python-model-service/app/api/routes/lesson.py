"""The lesson's own chat API, kept for existing clients."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.api.deps import RecordDep, ServiceDep, json_body, require_token, until_disconnect
from app.api.routes.openai import SSE_HEADERS
from app.protocol import LessonChatRequest
from app.serving.lesson import complete_lesson, prepare_lesson, stream_lesson
from app.serving.sse import with_pings

router = APIRouter(dependencies=[Depends(require_token)])


@router.post("/chat/new/message/")
async def create_message(
    request: Request,
    service: ServiceDep,
    record: RecordDep,
    body: Annotated[LessonChatRequest, Depends(json_body(LessonChatRequest))],
) -> Response:
    """Answer ``prompt`` given ``history``; SSE when ``stream`` is true."""
    prepared = prepare_lesson(service, body, record.request_id)
    ticket = service.admit()
    if body.stream:
        message_id = uuid.uuid4().hex
        events = stream_lesson(service, body, prepared, ticket, record, message_id)
        return StreamingResponse(
            with_pings(events, service.settings.ping_interval_s),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    result = await until_disconnect(request, complete_lesson(service, body, prepared, ticket, record))
    if result is None:
        ticket.release()
        return Response(status_code=499)
    return JSONResponse(result.model_dump())
