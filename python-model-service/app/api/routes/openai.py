"""OpenAI-compatible endpoints."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.api.deps import RecordDep, ServiceDep, json_body, require_token
from app.api.responses import event_stream, whole_reply
from app.protocol import ChatCompletionRequest, ModelCard, ModelList
from app.serving.openai import admit_all, complete_openai, prepare_openai, stream_openai

router = APIRouter(dependencies=[Depends(require_token)])

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
    prepared = await prepare_openai(service, body, record.request_id)
    tickets = admit_all(service, len(prepared))
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = stream_openai(service, prepared, tickets, record, include_usage, body.return_token_ids)
        return event_stream(service, stream)
    return await whole_reply(
        request, tickets, complete_openai(service, prepared, tickets, record, body.return_token_ids)
    )
