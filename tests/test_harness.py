"""The shared harness itself: its SSE reader reads what an EventSource reads, and its launcher starts and
stops the throwaway services that the multi-process tests build on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from harness import sse
from harness.stack import MissingBinaryError, Stack, find_binary

STREAM = (
    "\ufeff: hello\r\n"
    "retry: 1000\r\n"
    "id: 1\r\n"
    "data: first\r\n"
    "data:second\r\n"
    "\r\n"
    "event: finish\n"
    'data: {"a": 1}\n'
    "\n"
    ":ping\r"
    "id: 2\r"
    "data\r"
    "\r"
    "data: 你好\u2028世界\n"  # U+2028 is no end of line in an event stream
    "\n"
    "data: never finished"
)
EXPECTED = [
    sse.Event("first\nsecond", "message", "1"),
    sse.Event('{"a": 1}', "finish", "1"),
    sse.Event("", "message", "2"),
    sse.Event("你好\u2028世界", "message", "2"),
]


def test_events_split_anywhere_read_as_one_stream() -> None:
    raw = STREAM.encode()
    for size in (1, 2, 3, 7, len(raw)):
        decoder = sse.Decoder()
        items = [item for i in range(0, len(raw), size) for item in decoder.feed(raw[i : i + size])]
        assert [i for i in items if isinstance(i, sse.Event)] == EXPECTED, size
        assert [i for i in items if isinstance(i, sse.Comment)] == [sse.Comment("hello"), sse.Comment("ping")]


def test_line_and_response_readers_agree() -> None:
    lines = STREAM.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    assert list(sse.parse(lines)) == EXPECTED
    response = httpx.Response(200, content=STREAM.encode(), headers={"content-type": "text/event-stream"})
    assert list(sse.events(response)) == EXPECTED
    assert sse.Comment("ping") in list(sse.events(response, comments=True))


def test_timed_events_carry_the_arrival_of_their_last_byte() -> None:
    pieces = [(1.0, b"data: a\n"), (2.0, b"\ndata: b\n\n"), (3.0, b"data: c\r\n\r"), (4.0, b"\n")]
    assert [(t, e.data) for t, e in sse.parse_timed(pieces)] == [(2.0, "a"), (2.0, "b"), (3.0, "c")]


def test_openai_helpers() -> None:
    chunks = [
        {"choices": [{"delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"delta": {"content": "你"}}]},
    ]
    stream = [sse.Event(json.dumps(c, ensure_ascii=False)) for c in chunks] + [sse.Event("[DONE]")]
    assert sse.payloads(stream) == [*chunks, "[DONE]"]
    assert sse.chunk_texts(sse.payloads(stream)) == ["你"]


def test_follow_resumes_after_an_error_status_but_gives_up_on_a_refusal() -> None:
    asked: list[str | None] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("Last-Event-ID"))
        if request.url.path == "/refused":
            return httpx.Response(401, json={"error": {"message": "the session has ended"}})
        if len(asked) == 1:
            return httpx.Response(200, content=b'id: 1\ndata: {"text": "a"}\n\n')  # then dropped
        if len(asked) == 2:
            return httpx.Response(503)
        return httpx.Response(200, content=b"id: 2\nevent: finish\ndata: {}\n\n")

    with httpx.Client(transport=httpx.MockTransport(gateway), base_url="http://gw") as client:
        read = sse.follow(client, "/s", retry=0, give_up_on={401})
        assert (read.ended_by, read.connections, read.text(), asked) == ("final", 3, "a", [None, "1", "1"])
        refused = sse.follow(client, "/refused", retry=0, give_up_on={401})
    assert (refused.ended_by, refused.connections) == ("refused", 1)
    assert refused.refusal.startswith("401 ") and "the session has ended" in refused.refusal


def _have(name: str, *candidates: str) -> bool:
    try:
        find_binary(name, *candidates, package=name)
    except MissingBinaryError:
        return False
    return True


SERVICES = _have("redis-server", "/usr/bin/redis-server") and _have(
    "initdb", "/usr/lib/postgresql/*/bin/initdb"
)


@pytest.mark.skipif(
    not SERVICES,
    reason="needs redis-server and PostgreSQL (make setup-services)",
)
def test_throwaway_postgres_and_redis_start_answer_and_stop(tmp_path: Path) -> None:
    with Stack(tmp_path) as stack:
        pg, redis = stack.add_postgres(), stack.add_redis()
        assert redis.command("SET", "k", "v") == b"OK" and redis.command("GET", "k") == b"v"
        psql = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user, "-tAc", "select 1", pg.database],
            env={**os.environ, "PGPASSWORD": pg.password},
            capture_output=True,
            text=True,
        )
        assert psql.stdout.strip() == "1", psql.stderr
        stack.kill(redis, signal.SIGKILL)
        assert redis.wait(10) == -signal.SIGKILL
    assert not pg.alive()


@pytest.mark.skipif(not _have("nginx", "/usr/sbin/nginx"), reason="needs nginx")
def test_nginx_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "nginx.conf"
    config.write_text(
        "events {}\n"
        "http {\n"
        "  access_log @WORKDIR@/access.log;\n"
        '  server { listen 127.0.0.1:@PORT@; location / { return 200 "@GREETING@"; } }\n'
        "}\n"
    )
    with Stack(tmp_path / "stack") as stack:
        nginx = stack.add_nginx(config, values={"GREETING": "hello"}, ready="/")
        assert httpx.get(nginx.url).text == "hello"
    assert not nginx.alive()
