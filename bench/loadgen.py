"""Drives an OpenAI-compatible streaming endpoint at a fixed concurrency and measures it."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import harness_path  # noqa: F401  (the repository root on sys.path, for the harness)

from harness.sse import Event, parse_timed


@dataclass
class RequestTrace:
    """Client-side timings of one streamed request, and how its response ended."""

    start: float
    first: float | None = None
    chunks: list[float] = field(default_factory=list)
    text: str = ""
    tokens: int = 0
    reported: bool = False  # tokens came from the server's usage chunk
    error: str | None = None
    error_event: bool = False  # the error came in an error event inside the stream (the server's own)
    status: int | None = None  # None when no complete response came (the connection failed or timed out)
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased; repeated ones joined by ", "
    end: float | None = None  # the response's last byte, or the connection's loss; None when it timed out
    done: bool = False  # the stream's last data event was [DONE]
    id: str | None = None  # the first chunk's id
    body: bytes = b""  # a response that was not 200: its body (an error envelope, as a rule)
    pieces: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival, bytes) until parsed
    framing: _Framing | None = None  # what the connection read in the header block


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize(traces: list[RequestTrace], wall: float) -> dict[str, float | int]:
    """Throughput and latency figures over a run's traces."""
    # A stream that ended cleanly with no visible text (a random-weight model can generate only
    # special tokens) is not an error; it just has no TTFT.
    ok = [t for t in traces if t.error is None]
    ttft = [(t.first - t.start) * 1000 for t in ok if t.first is not None]
    itl = [(b - a) * 1000 for t in ok for a, b in zip(t.chunks, t.chunks[1:], strict=False)]
    tokens = sum(t.tokens for t in ok)
    return {
        "requests": len(traces),
        "errors": len(traces) - len(ok),
        "output_tokens": tokens,
        "wall_s": round(wall, 3),
        "tokens_per_s": round(tokens / wall, 2) if wall > 0 else 0.0,
        "ttft_p50_ms": round(percentile(ttft, 50), 2),
        "ttft_p99_ms": round(percentile(ttft, 99), 2),
        "itl_p50_ms": round(percentile(itl, 50), 2),
        "itl_mean_ms": round(statistics.fmean(itl), 2) if itl else float("nan"),
    }


@dataclass
class _Framing:
    """A response's status and headers, where its body starts and how it is framed."""

    status: int
    body_start: int
    chunked: bool
    length: int | None
    close: bool
    headers: dict[str, str]  # names lower-cased


class _Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection that records each response's pieces with their arrival times.

    The only parsing done while a response streams is what finds its end: its header block, once,
    then a byte count (Content-Length) or a look at the last bytes for the chunked terminator.
    """

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.closed = False
        self._done: asyncio.Future[tuple[list[tuple[float, bytes]], _Framing]] | None = None
        self._pieces: list[tuple[float, bytes]] = []
        self._size, self._tail = 0, b""
        self._framing: _Framing | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport

    def send(self, request: bytes) -> asyncio.Future[tuple[list[tuple[float, bytes]], _Framing]]:
        """Write one request; the future gets the response's pieces and framing once it is complete."""
        assert self.transport is not None and not self.closed
        self._done = asyncio.get_running_loop().create_future()
        self._pieces, self._size, self._tail, self._framing = [], 0, b"", None
        self.transport.write(request)
        return self._done

    def data_received(self, data: bytes) -> None:
        self._pieces.append((time.perf_counter(), data))
        self._size += len(data)
        if self._done is None or self._done.done():
            return
        f = self._framing
        if f is None:
            raw = b"".join(piece for _, piece in self._pieces)
            end = raw.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line, *lines = raw[:end].decode("latin-1").split("\r\n")
            headers: dict[str, str] = {}
            for name, _, value in (line.partition(":") for line in lines):
                name, value = name.strip().lower(), value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            length = int(headers["content-length"]) if "content-length" in headers else None
            chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            close = headers.get("connection", "").lower() == "close" or not (chunked or length is not None)
            status = int(status_line.split()[1])
            f = self._framing = _Framing(status, end + 4, chunked, length, close, headers)
            self._tail = raw[-6:]
        else:
            self._tail = (self._tail + data)[-6:]
        if f.chunked:
            complete = self._tail.endswith(b"\n0\r\n\r\n")
        else:
            complete = f.length is not None and self._size - f.body_start >= f.length
        if complete:
            self._done.set_result((self._pieces, f))
            if f.close and self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._done is not None and not self._done.done():
            f = self._framing
            if f is not None and f.close and f.length is None and not f.chunked:
                self._done.set_result((self._pieces, f))  # the body ran until the server closed
            else:
                self._done.set_exception(
                    exc or ConnectionError("the server closed the connection mid-response")
                )


def _body_segments(raw: bytes, chunked: bool, start: int) -> list[tuple[int, bytes]]:
    """The body as (offset in ``raw``, bytes) segments, with HTTP/1.1 chunked framing removed."""
    if not chunked:
        return [(start, raw[start:])]
    segments: list[tuple[int, bytes]] = []
    pos = start
    while True:
        eol = raw.index(b"\r\n", pos)
        size = int(raw[pos:eol].split(b";")[0], 16)
        if size == 0:
            return segments
        segments.append((eol + 2, raw[eol + 2 : eol + 2 + size]))
        pos = eol + 2 + size + 2


def _body_pieces(trace: RequestTrace) -> list[tuple[float, bytes]]:
    """A finished response's body as (arrival, bytes) pieces, HTTP/1.1 chunked framing removed.

    A response that is not 200 raises ValueError, its body kept in ``trace.body``.
    """
    f = trace.framing
    assert f is not None
    raw = b"".join(piece for _, piece in trace.pieces)
    ends = list(itertools.accumulate(len(piece) for _, piece in trace.pieces))
    segments = _body_segments(raw, f.chunked, f.body_start)
    if f.status != 200:
        trace.body = b"".join(seg for _, seg in segments)
        raise ValueError(f"HTTP {f.status}: {trace.body[:200]!r}")
    body: list[tuple[float, bytes]] = []
    for offset, seg in segments:
        pos = 0
        while pos < len(seg):  # split where the pieces it arrived in end
            i = bisect.bisect_right(ends, offset + pos)
            end = min(len(seg), ends[i] - offset)
            body.append((trace.pieces[i][0], seg[pos:end]))
            pos = end
    return body


def _parse(trace: RequestTrace) -> RequestTrace:
    """Turns a trace's raw response into text, chunk times, token counts and how it ended."""
    if trace.framing is not None:
        trace.status, trace.headers = trace.framing.status, trace.framing.headers
    if trace.pieces:
        trace.end = trace.pieces[-1][0]
    events: list[tuple[float, Event]] = []
    if trace.error is None:
        try:
            # Each event with the arrival of its last byte; comments (pings) are dropped.
            events = list(parse_timed(_body_pieces(trace)))
        except (ValueError, IndexError) as e:
            trace.error = str(e)
    trace.pieces = []
    try:
        for now, event in events:
            trace.done = event.data == "[DONE]"
            if trace.done:
                continue
            chunk = event.json()
            if trace.id is None and isinstance(chunk.get("id"), str):
                trace.id = chunk["id"]
            if chunk.get("error") and trace.error is None:
                # An error after the stream started travels inside it (the error envelope's body).
                trace.error = "stream error: " + json.dumps(chunk["error"], ensure_ascii=False)[:200]
                trace.error_event = True
            if chunk.get("usage"):
                trace.tokens = int(chunk["usage"].get("completion_tokens") or trace.tokens)
                trace.reported = True
            for choice in chunk.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    trace.first = trace.first or now
                    trace.chunks.append(now)
                    trace.text += content
    except (ValueError, TypeError, AttributeError) as e:  # json.JSONDecodeError is a ValueError
        trace.error, trace.error_event = f"unreadable stream: {e}"[:200], False
    if not trace.tokens:
        # Servers that send no usage chunk: one content chunk is one token for them.
        trace.tokens = len(trace.chunks)
    return trace


async def run_load(
    base_url: str,
    bodies: list[dict],
    concurrency: int,
    token: str | None = None,
    path: str = "/v1/chat/completions",
    limit_s: float = 600.0,
) -> tuple[list[RequestTrace], float]:
    """Sends ``bodies`` with at most ``concurrency`` in flight; returns traces and wall time.

    The client shares the machine with the server under test, so while streams run it only
    records bytes and their arrival times (an asyncio Protocol, no HTTP library's per-chunk
    parsing); responses are decoded after the run. Each of the ``concurrency`` workers keeps its
    connection alive across its requests, as a client with a connection pool does.
    """
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
    head += "Accept: text/event-stream\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    requests = []
    for body in bodies:
        data = json.dumps(body, ensure_ascii=False).encode()
        requests.append(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
    traces: list[RequestTrace] = [RequestTrace(start=0.0) for _ in requests]
    pending = iter(enumerate(requests))
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        conn: _Connection | None = None
        for i, request in pending:
            trace = traces[i] = RequestTrace(start=time.perf_counter())
            try:
                if conn is None or conn.closed:
                    _, conn = await loop.create_connection(_Connection, host, port)
                trace.pieces, trace.framing = await asyncio.wait_for(conn.send(request), limit_s)
            except (OSError, TimeoutError) as e:  # ConnectionError is an OSError
                trace.error = repr(e)
                if not isinstance(e, TimeoutError):
                    trace.end = time.perf_counter()  # lost (or refused) now; a timed-out one never ended
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(requests)))))
    wall = time.perf_counter() - start
    return [_parse(t) for t in traces], wall


async def stream_once(
    base_url: str,
    body: dict,
    token: str | None = None,
    path: str = "/v1/chat/completions",
    limit_s: float = 600.0,
) -> RequestTrace:
    """One streamed request on a connection of its own, recorded and decoded as ``run_load`` does."""
    traces, _ = await run_load(base_url, [body], 1, token, path, limit_s)
    return traces[0]
