"""How a chat route answers: an SSE stream with keep-alive pings, or the whole reply as JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from app.api.deps import until_disconnect
from app.serving.admission import Ticket
from app.serving.chat import ChatService
from app.serving.sse import EventStreamResponse

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event_stream(service: ChatService, events: AsyncIterator[str]) -> EventStreamResponse:
    """SSE events as they come, with a ping comment whenever the stream is silent."""
    return EventStreamResponse(events, service.settings.ping_interval_s, headers=SSE_HEADERS)


async def whole_reply(request: Request, tickets: Sequence[Ticket], reply: Awaitable[BaseModel]) -> Response:
    """The reply as JSON; a client gone before it is ready frees its tickets and gets nothing (499)."""
    result = await until_disconnect(request, reply)
    if result is None:
        for ticket in tickets:
            ticket.release()
        return Response(status_code=499)
    return JSONResponse(result.model_dump())
