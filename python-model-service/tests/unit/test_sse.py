import asyncio
from collections.abc import AsyncIterator

from app.serving.sse import PING, with_pings


async def test_pings_while_waiting_then_the_event() -> None:
    release = asyncio.Event()

    async def slow() -> AsyncIterator[str]:
        await release.wait()
        yield "data: x\n\n"

    seen: list[str] = []
    async for item in with_pings(slow(), interval=0.01):
        seen.append(item)
        if seen.count(PING) == 2:
            release.set()
    assert seen == [PING, PING, "data: x\n\n"]


async def test_closing_the_stream_closes_the_source() -> None:
    closed = asyncio.Event()
    started = asyncio.Event()

    async def endless() -> AsyncIterator[str]:
        try:
            yield "first"
            started.set()
            await asyncio.Event().wait()
            yield "never"
        finally:
            closed.set()

    stream = with_pings(endless(), interval=10)
    assert await anext(stream) == "first"
    waiter = asyncio.ensure_future(anext(stream))
    await started.wait()
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    await stream.aclose()
    await asyncio.wait_for(closed.wait(), 10)
