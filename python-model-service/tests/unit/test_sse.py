import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.types import Message

from app.serving.sse import PING, EventStreamResponse


class Recorder:
    """An ASGI ``send`` that keeps the body parts."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.ended = False
        self.two_pings = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body"):
                self.parts.append(message["body"].decode())
                if self.parts.count(PING) == 2:
                    self.two_pings.set()
            else:
                self.ended = True


async def test_pings_while_waiting_then_the_event() -> None:
    send = Recorder()

    async def slow() -> AsyncIterator[str]:
        await send.two_pings.wait()
        yield "data: x\n\n"

    await asyncio.wait_for(EventStreamResponse(slow(), ping_interval=0.01).stream_response(send), 10)
    assert send.parts == [PING, PING, "data: x\n\n"]
    assert send.ended


async def test_no_pings_while_events_flow() -> None:
    send = Recorder()

    async def steady() -> AsyncIterator[str]:
        for i in range(20):
            await asyncio.sleep(0.005)
            yield f"data: {i}\n\n"

    await EventStreamResponse(steady(), ping_interval=0.05).stream_response(send)
    assert send.parts == [f"data: {i}\n\n" for i in range(20)]


async def test_a_failed_send_closes_the_source() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[str]:
        try:
            while True:
                yield "data: x\n\n"
        finally:
            closed.set()

    sent = 0

    async def send(message: Message) -> None:
        nonlocal sent
        sent += 1
        if sent == 3:
            raise OSError("client went away")

    with pytest.raises(OSError, match="went away"):
        await EventStreamResponse(endless(), ping_interval=10).stream_response(send)
    assert closed.is_set()


async def test_cancelling_the_response_closes_the_source() -> None:
    closed = asyncio.Event()
    started = asyncio.Event()

    async def waiting() -> AsyncIterator[str]:
        try:
            yield "data: first\n\n"
            started.set()
            await asyncio.Event().wait()
            yield "never"
        finally:
            closed.set()

    task = asyncio.ensure_future(EventStreamResponse(waiting(), ping_interval=10).stream_response(Recorder()))
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.wait_for(closed.wait(), 10)
