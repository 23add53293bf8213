"""The lesson's own chat API on top of the chat pipeline."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from app.protocol import ChatMessage, LessonChatRequest, LessonChatResponse, LessonStreamEvent
from app.serving.chat import ChatService, Finished, PreparedChat, RequestRecord, Ticket
from app.serving.errors import engine_failed
from app.serving.sse import DONE, sse_data


def prepare_lesson(service: ChatService, req: LessonChatRequest, request_id: str) -> PreparedChat:
    """History plus the new prompt, validated like any chat request."""
    messages = [*req.history, ChatMessage(role="user", content=req.prompt)]
    return service.prepare(
        messages,
        max_tokens=req.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        stop=None,
        ignore_eos=False,
        request_id=request_id,
    )


async def complete_lesson(
    service: ChatService,
    req: LessonChatRequest,
    prepared: PreparedChat,
    ticket: Ticket,
    record: RequestRecord,
) -> LessonChatResponse:
    """``{response, history, status, time}``; history includes the new exchange."""
    text, finished, _ = await service.complete(prepared, ticket, record)
    if finished.finish_reason == "error":
        raise engine_failed()
    history = [
        *req.history,
        ChatMessage(role="user", content=req.prompt),
        ChatMessage(role="assistant", content=text),
    ]
    return LessonChatResponse(
        response=text, history=history, status=200, time=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    )


async def stream_lesson(
    service: ChatService,
    req: LessonChatRequest,
    prepared: PreparedChat,
    ticket: Ticket,
    record: RequestRecord,
    message_id: str,
) -> AsyncIterator[str]:
    """``data: {"text", "message_id"}`` events (delta or cumulative), a last one with the finish reason."""
    so_far = ""
    async for event in service.run(prepared, ticket, record):
        if isinstance(event, Finished):
            text = so_far if req.mode == "cumulative" else ""
            last = LessonStreamEvent(text=text, message_id=message_id, finish_reason=event.finish_reason)
            yield sse_data(last.model_dump_json())
            break
        so_far += event.text
        text = so_far if req.mode == "cumulative" else event.text
        yield sse_data(LessonStreamEvent(text=text, message_id=message_id).model_dump_json(exclude_none=True))
    yield DONE
