"""Server-sent events framing, with keep-alive comments while nothing else is sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

PING = ": ping\n\n"
DONE = "data: [DONE]\n\n"
_END = object()


def sse_data(payload: str) -> str:
    """One ``data:`` event; payloads are single-line JSON."""
    return f"data: {payload}\n\n"


async def with_pings(events: AsyncIterator[str], interval: float) -> AsyncIterator[str]:
    """Yield ``events``; whenever none comes for ``interval`` seconds, yield an SSE comment instead.

    Proxies and the gateway drop idle streams, and a request waiting in the queue is silent. A pump
    task reads the source so that the common case (an event is ready) costs no timer at all.
    """
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in events:
                queue.put_nowait(item)
        except BaseException as exc:
            queue.put_nowait(exc)
            raise
        queue.put_nowait(_END)

    task = asyncio.ensure_future(pump())
    try:
        while True:
            if queue.empty():
                try:
                    item = await asyncio.wait_for(queue.get(), interval)
                except TimeoutError:
                    yield PING
                    continue
            else:
                item = queue.get_nowait()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, str)
            yield item
    finally:
        if not task.done():
            # Cancelling the pump closes the source, whose cleanup cancels the engine request.
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
