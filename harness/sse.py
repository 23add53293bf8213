"""The one Server-Sent Events reader of the Python tests and benchmarks (the WHATWG event-stream format).

Lines end with CRLF, LF or CR; ``data:`` lines of one event are joined with newlines; ``event:`` names
it (``message`` when absent); ``id:`` sets the last event id, which later events keep; ``retry:`` and
unknown fields are ignored; comment lines (``: ping``) are skipped unless asked for; an event still
open when the stream ends is dropped, as an EventSource drops it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, overload

import httpx


@dataclass(frozen=True)
class Event:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str = ""  # the last event id in effect when it was dispatched ("" when none was sent)

    def json(self) -> Any:
        """The data decoded as JSON."""
        return json.loads(self.data)


@dataclass(frozen=True)
class Comment:
    """A comment line (``: ping``), without its colon."""

    text: str


class Decoder:
    """The event-stream state machine, fed one line, or any bytes, at a time."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self.last_id = ""
        self._buf, self._after_cr, self._started = b"", False, False

    def line(self, line: str) -> Event | Comment | None:
        """One line (its end of line removed or not); the event or comment it completes, if any."""
        line = line.rstrip("\r\n")
        if not self._started:
            self._started, line = True, line.removeprefix("\ufeff")
        if not line:
            data, event = self._data, self._event or "message"
            self._event, self._data = "", []
            return Event("\n".join(data), event, self.last_id) if data else None
        if line.startswith(":"):
            return Comment(line[1:].removeprefix(" "))
        field, colon, value = line.partition(":")
        value = value.removeprefix(" ") if colon else ""
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self.last_id = value
        return None

    def feed(self, chunk: bytes) -> list[Event | Comment]:
        """Raw body bytes in arrival order; what the lines they complete dispatch."""
        out: list[Event | Comment] = []
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two chunks
        self._after_cr = False
        buf, pos = self._buf + chunk, 0
        cr = buf.find(b"\r")  # kept until passed: most streams have none, and rescanning is quadratic
        while True:
            if 0 <= cr < pos:
                cr = buf.find(b"\r", pos)
            lf = buf.find(b"\n", pos)
            end = min(cr, lf) if cr >= 0 and lf >= 0 else max(cr, lf)
            if end < 0:
                break
            item = self.line(buf[pos:end].decode("utf-8", "replace"))
            if item is not None:
                out.append(item)
            pos = end + 1
            if buf[end] == 0x0D:  # CR: a LF right after it belongs to the same end of line
                if pos < len(buf):
                    pos += buf[pos] == 0x0A
                else:
                    self._after_cr = True
        self._buf = buf[pos:]
        return out


@overload
def parse(lines: Iterable[str], *, comments: Literal[False] = ...) -> Iterator[Event]: ...
@overload
def parse(lines: Iterable[str], *, comments: Literal[True]) -> Iterator[Event | Comment]: ...
def parse(lines: Iterable[str], *, comments: bool = False) -> Iterator[Event | Comment]:
    """The events (and comments, when asked) of a stream given as lines."""
    decoder = Decoder()
    for line in lines:
        item = decoder.line(line)
        if item is not None and (comments or isinstance(item, Event)):
            yield item


@overload
def aparse(lines: AsyncIterable[str], *, comments: Literal[False] = ...) -> AsyncIterator[Event]: ...
@overload
def aparse(lines: AsyncIterable[str], *, comments: Literal[True]) -> AsyncIterator[Event | Comment]: ...
async def aparse(lines: AsyncIterable[str], *, comments: bool = False) -> AsyncIterator[Event | Comment]:
    """``parse`` over an async line iterator (``httpx.Response.aiter_lines()``)."""
    decoder = Decoder()
    async for line in lines:
        item = decoder.line(line)
        if item is not None and (comments or isinstance(item, Event)):
            yield item


@overload
def events(response: httpx.Response, *, comments: Literal[False] = ...) -> Iterator[Event]: ...
@overload
def events(response: httpx.Response, *, comments: Literal[True]) -> Iterator[Event | Comment]: ...
def events(response: httpx.Response, *, comments: bool = False) -> Iterator[Event | Comment]:
    """The events of an httpx response, streamed or read.

    Reads bytes rather than ``iter_lines()``, which also splits on U+2028 and other separators that
    are not ends of line in an event stream (they can appear inside model output).
    """
    decoder = Decoder()
    for chunk in response.iter_bytes():
        for item in decoder.feed(chunk):
            if comments or isinstance(item, Event):
                yield item


@overload
def aevents(response: httpx.Response, *, comments: Literal[False] = ...) -> AsyncIterator[Event]: ...
@overload
def aevents(response: httpx.Response, *, comments: Literal[True]) -> AsyncIterator[Event | Comment]: ...
async def aevents(response: httpx.Response, *, comments: bool = False) -> AsyncIterator[Event | Comment]:
    """``events`` for an async httpx response."""
    decoder = Decoder()
    async for chunk in response.aiter_bytes():
        for item in decoder.feed(chunk):
            if comments or isinstance(item, Event):
                yield item


def parse_timed(pieces: Iterable[tuple[float, bytes]]) -> Iterator[tuple[float, Event]]:
    """Events of a body recorded as (arrival time, bytes) pieces, each with the arrival of the piece that
    completed it (its closing blank line): the load generator's timing hook."""
    decoder = Decoder()
    for arrival, piece in pieces:
        for item in decoder.feed(piece):
            if isinstance(item, Event):
                yield arrival, item


# ---- OpenAI chat-completion streams ----------------------------------------------------------------


def payloads(stream: Iterable[Event]) -> list[Any]:
    """The JSON payloads of a chat-completions stream, its closing ``[DONE]`` kept as that string."""
    return [e.data if e.data == "[DONE]" else e.json() for e in stream]


def chunk_texts(chunks: Iterable[Any]) -> list[str]:
    """The non-empty content deltas of chat-completion chunks (anything else is skipped)."""
    out = []
    for c in chunks:
        if isinstance(c, dict) and c.get("choices"):
            content = c["choices"][0].get("delta", {}).get("content")
            if content:
                out.append(content)
    return out


# ---- a resumable stream, read as a browser's EventSource reads it ------------------------------------


@dataclass
class Followed:
    """What a resuming reader received: every event once, and the connections it took."""

    events: list[Event]
    connections: int
    ended_by: str  # "final" (a final event came), "nothing-left" (204), "refused" or "deadline"
    refusal: str = ""  # when refused: the status and body of the reply that ended the read

    def text(self, field: str = "text") -> str:
        """The ``field`` of every ``message`` event's JSON, joined: the answer as the reader saw it."""
        return "".join(e.json()[field] for e in self.events if e.event == "message")


def follow(
    client: httpx.Client,
    url: str,
    *,
    final: Callable[[Event], bool] = lambda e: e.event in ("finish", "error"),
    on_event: Callable[[Event], None] = lambda e: None,
    retry: float = 0.2,
    deadline: float = 120.0,
    give_up_on: Collection[int] = (),
    last_event_id: str = "",
) -> Followed:
    """Reads a resumable event stream the way a browser's EventSource does: after a dropped connection,
    a refused one or an error status it reconnects after ``retry`` seconds with ``Last-Event-ID`` set
    to the last id it received, until a ``final`` event, a 204 (the stream has nothing left), a status
    in ``give_up_on`` (``ended_by`` "refused": a 401 would never change by waiting) or ``deadline``
    seconds. Through a load balancer, a reconnect may land on another gateway replica. A reader that
    saw part of the stream elsewhere starts from ``last_event_id``."""
    received: list[Event] = []
    connections = 0
    last_id = last_event_id
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        connections += 1
        headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": last_id} if last_id else {})
        try:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code == 204:
                    return Followed(received, connections, "nothing-left")
                if response.status_code in give_up_on:
                    refusal = f"{response.status_code} {response.read().decode(errors='replace')}"
                    return Followed(received, connections, "refused", refusal)
                if response.status_code == 200:
                    for event in events(response):
                        received.append(event)
                        last_id = event.id or last_id
                        on_event(event)
                        if final(event):
                            return Followed(received, connections, "final")
        except httpx.HTTPError:
            pass  # a dropped or refused connection: reconnect, as EventSource does
        time.sleep(retry)
    return Followed(received, connections, "deadline")
