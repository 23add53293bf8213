"""The lesson's own chat API, kept for existing clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.api.deps import RecordDep, ServiceDep, json_body, require_token
from app.api.responses import event_stream, whole_reply
from app.core.ids import random_hex
from app.protocol import LessonChatRequest
from app.serving.lesson import complete_lesson, prepare_lesson, stream_lesson

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
        message_id = random_hex()
        return event_stream(service, stream_lesson(service, body, prepared, ticket, record, message_id))
    return await whole_reply(request, [ticket], complete_lesson(service, body, prepared, ticket, record))
