"""Bad inputs and auth: every failure is the shared error envelope, never a stack trace."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.conftest import LiveServer

OK_MESSAGES = [{"role": "user", "content": "你好"}]


def assert_envelope(r: httpx.Response, status: int, type_: str, param: str | None = "__any__") -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == type_
    if param != "__any__":
        assert err["param"] == param
    assert "Traceback" not in r.text and 'File "' not in r.text
    return err


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"messages": OK_MESSAGES, "max_tokens": 0}, "max_tokens"),
        ({"messages": OK_MESSAGES, "max_tokens": -3}, "max_tokens"),
        ({"messages": OK_MESSAGES, "max_tokens": 10**9}, "max_tokens"),
        ({"messages": OK_MESSAGES, "max_tokens": "many"}, "max_tokens"),
        ({"messages": OK_MESSAGES, "temperature": -0.1}, "temperature"),
        ({"messages": OK_MESSAGES, "temperature": 2.5}, "temperature"),
        ({"messages": OK_MESSAGES, "temperature": "hot"}, "temperature"),
        ({"messages": OK_MESSAGES, "top_p": 0}, "top_p"),
        ({"messages": OK_MESSAGES, "top_p": 1.5}, "top_p"),
        ({"messages": OK_MESSAGES, "stream": "yes please"}, "stream"),
        ({"messages": OK_MESSAGES, "n": 0}, "n"),
        ({"messages": OK_MESSAGES, "n": 17}, "n"),
        ({"messages": OK_MESSAGES, "n": 1.5}, "n"),
        ({"messages": OK_MESSAGES, "top_logprobs": 2}, "top_logprobs"),
        ({"messages": OK_MESSAGES, "logprobs": False, "top_logprobs": 2}, "top_logprobs"),
        ({"messages": OK_MESSAGES, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"messages": OK_MESSAGES, "logprobs": True, "top_logprobs": -1}, "top_logprobs"),
        ({"messages": OK_MESSAGES, "logprobs": True, "top_logprobs": "five"}, "top_logprobs"),
        ({"messages": OK_MESSAGES, "logprobs": "maybe"}, "logprobs"),
        ({"messages": [{"role": "system", "content": "only a system turn"}]}, "messages"),
        ({"messages": OK_MESSAGES, "stop": ""}, "stop"),
        ({"messages": OK_MESSAGES, "seed": 2**70}, "seed"),
        ({"messages": OK_MESSAGES, "seed": -(2**64)}, "seed"),
    ],
)
def test_invalid_requests_are_400_naming_the_field(client: httpx.Client, body: dict, param: str) -> None:
    r = client.post("/v1/chat/completions", json=body)
    assert_envelope(r, 400, "invalid_request_error", param)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"messages": [',
        b"not json at all",
        b"[1, 2, 3]",
        b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_malformed_bodies_are_400(client: httpx.Client, raw: bytes) -> None:
    r = client.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert_envelope(r, 400, "invalid_request_error")


def test_unknown_model_is_404(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", json={"model": "gpt-9", "messages": OK_MESSAGES})
    err = assert_envelope(r, 404, "invalid_request_error", "model")
    assert err["code"] == "model_not_found"


def test_prompt_over_max_model_len_names_both_lengths(client: httpx.Client) -> None:
    long_text = " ".join(str(i) for i in range(5000))  # digits barely merge: far over 4096 tokens
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": long_text}]})
    err = assert_envelope(r, 400, "invalid_request_error", "messages")
    assert err["code"] == "context_length_exceeded"
    assert "4096" in err["message"]
    assert any(word.isdigit() and int(word) > 4096 for word in err["message"].split())


def test_unknown_path_is_404_envelope(client: httpx.Client) -> None:
    assert_envelope(client.get("/v1/nothing-here"), 404, "not_found_error")


def test_ten_megabyte_body_is_refused_without_being_read(server: LiveServer) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10 * 1024 * 1024}\r\nAuthorization: Bearer test-token-0123456789abcdef\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"messages": ')  # only a few bytes of the promised 10 MB
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413")
    assert b'"request_too_large"' in reply


def test_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    def body():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * 65536

    r = client.post("/v1/chat/completions", content=body(), headers={"Content-Type": "application/json"})
    assert_envelope(r, 413, "invalid_request_error")


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", "Basic dGVzdA==", "Bearer"])
def test_bad_or_missing_token_is_401(server: LiveServer, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    with server.client(token=None) as c:
        for method, path in (
            ("GET", "/v1/models"),
            ("POST", "/v1/chat/completions"),
            ("POST", "/chat/new/message/"),
        ):
            r = c.request(method, path, headers=headers, json={"messages": OK_MESSAGES, "prompt": "hi"})
            err = assert_envelope(r, 401, "authentication_error")
            assert err["code"] == "invalid_token"


def test_health_ready_metrics_need_no_token(server: LiveServer) -> None:
    with server.client(token=None) as c:
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/ready").status_code == 200
        assert c.get("/metrics").status_code == 200


def test_wrong_method_is_405_envelope(client: httpx.Client) -> None:
    assert_envelope(client.get("/v1/chat/completions"), 405, "invalid_request_error")


@pytest.mark.parametrize("seed", [2**64 - 1, -(2**63), 0])
def test_every_seed_a_generator_takes_is_accepted(client: httpx.Client, seed: int) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={"messages": OK_MESSAGES, "seed": seed, "temperature": 1.0, "max_tokens": 2},
    )
    assert r.status_code == 200, r.text
