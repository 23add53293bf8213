"""Server-sent events: framing, and a streaming response that pings while nothing else is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Send

PING = ": ping\n\n"
DONE = "data: [DONE]\n\n"


def sse_data(payload: str) -> str:
    """One ``data:`` event; payloads are single-line JSON."""
    return f"data: {payload}\n\n"


class EventStreamResponse(StreamingResponse):
    """Events as the iterator yields them, and an SSE comment whenever none went out for a while.

    Proxies and the gateway drop idle streams, and a request waiting in the queue is silent. One
    timer task per stream sends the pings, so an event pays nothing for them on its way out (this
    path runs once per generated token). The event iterator is always closed at the end, which is
    what cancels an unfinished generation in the engine.
    """

    media_type = "text/event-stream"

    def __init__(
        self, events: AsyncIterator[str], ping_interval: float, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(events, headers=headers)
        self._events = events
        self.ping_interval = ping_interval

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        loop = asyncio.get_running_loop()
        lock = asyncio.Lock()  # the pinger and the events never interleave inside one send
        last_sent = loop.time()

        async def pinger() -> None:
            nonlocal last_sent
            while True:
                await asyncio.sleep(last_sent + self.ping_interval - loop.time())
                if loop.time() - last_sent >= self.ping_interval:
                    async with lock:
                        await send({"type": "http.response.body", "body": PING.encode(), "more_body": True})
                    last_sent = loop.time()

        task = loop.create_task(pinger())
        task.add_done_callback(_retrieve)  # a ping to a client that is gone fails; its send says so too
        try:
            async for event in self._events:
                async with lock:
                    await send({"type": "http.response.body", "body": event.encode(), "more_body": True})
                last_sent = loop.time()
        finally:
            task.cancel()
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
