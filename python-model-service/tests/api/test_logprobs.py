"""logprobs / top_logprobs on /v1/chat/completions, whole and streamed, on the demo model."""

from __future__ import annotations

import httpx
import pytest

from harness import sse

USER_HELLO = [{"role": "user", "content": "你好"}]
GREAT_WALL = [{"role": "user", "content": "介绍一下长城"}]


def chat(client: httpx.Client, **body: object) -> dict:
    r = client.post("/v1/chat/completions", json={"model": "demo-model", **body})
    assert r.status_code == 200, r.text
    return r.json()


def stream(client: httpx.Client, **body: object) -> list[dict]:
    payload = {"model": "demo-model", **body, "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=payload) as r:
        assert r.status_code == 200
        return [p for p in sse.payloads(sse.events(r)) if isinstance(p, dict) and p.get("choices")]


def assert_well_formed(entries: list[dict], content: str, top: int, greedy: bool) -> None:
    assert entries, "no logprobs"
    # the demo model's replies here are whole characters per token, so the token texts add up exactly
    assert "".join(e["token"] for e in entries) == content
    assert b"".join(bytes(e["bytes"]) for e in entries) == content.encode()
    for e in entries:
        assert e["logprob"] <= 0
        alts = e["top_logprobs"]
        assert len(alts) == top
        values = [a["logprob"] for a in alts]
        assert values == sorted(values, reverse=True)
        assert all(set(a) == {"token", "logprob", "bytes"} for a in alts)
        same = [a for a in alts if a["token"] == e["token"]]
        if same:
            assert same[0]["logprob"] == pytest.approx(e["logprob"])
        if greedy and alts:
            assert alts[0]["token"] == e["token"]


@pytest.mark.parametrize("top", [0, 1, 5, 20])
def test_whole_reply_has_one_entry_per_token(client: httpx.Client, top: int) -> None:
    body = chat(client, messages=USER_HELLO, temperature=0, logprobs=True, top_logprobs=top)
    choice = body["choices"][0]
    entries = choice["logprobs"]["content"]
    assert_well_formed(entries, choice["message"]["content"], top, greedy=True)
    # every generated token but the end-of-sequence one, which OpenAI does not report
    assert len(entries) == body["usage"]["completion_tokens"] - 1


def test_logprobs_without_top_logprobs_lists_no_alternatives(client: httpx.Client) -> None:
    body = chat(client, messages=USER_HELLO, temperature=0, logprobs=True)
    entries = body["choices"][0]["logprobs"]["content"]
    assert entries and all(e["top_logprobs"] == [] for e in entries)


def test_sampled_reply_reports_the_raw_distribution(client: httpx.Client) -> None:
    body = chat(
        client, messages=GREAT_WALL, temperature=1.3, top_p=0.9, seed=11, max_tokens=24,
        logprobs=True, top_logprobs=3,
    )  # fmt: skip
    choice = body["choices"][0]
    assert_well_formed(choice["logprobs"]["content"], choice["message"]["content"], 3, greedy=False)


def test_streamed_chunks_carry_the_logprobs_of_their_own_text(client: httpx.Client) -> None:
    chunks = stream(client, messages=USER_HELLO, temperature=0, logprobs=True, top_logprobs=2)
    content, entries = "", []
    for c in chunks:
        choice = c["choices"][0]
        text = choice["delta"].get("content") or ""
        lp = choice["logprobs"]
        if lp is None:
            assert text == ""  # the role chunk and the finish chunk
            continue
        assert "".join(e["token"] for e in lp["content"]) == text
        content += text
        entries += lp["content"]
    assert_well_formed(entries, content, 2, greedy=True)
    whole = chat(client, messages=USER_HELLO, temperature=0, logprobs=True, top_logprobs=2)["choices"][0]
    assert content == whole["message"]["content"]
    expected = whole["logprobs"]["content"]
    assert [e["token"] for e in entries] == [e["token"] for e in expected]
    assert [e["logprob"] for e in entries] == pytest.approx([e["logprob"] for e in expected], abs=1e-4)
    top = [[a["token"] for a in e["top_logprobs"]] for e in entries]
    assert top == [[a["token"] for a in e["top_logprobs"]] for e in expected]


def test_a_stop_string_drops_the_tokens_it_cut(client: httpx.Client) -> None:
    choice = chat(client, messages=USER_HELLO, temperature=0, stop=["很高兴"], logprobs=True)["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "很高兴" not in choice["message"]["content"]
    assert "".join(e["token"] for e in choice["logprobs"]["content"]) == choice["message"]["content"]
    chunks = stream(client, messages=USER_HELLO, temperature=0, stop=["很高兴"], logprobs=True)
    streamed = [
        e for c in chunks if c["choices"][0]["logprobs"] for e in c["choices"][0]["logprobs"]["content"]
    ]
    assert "".join(e["token"] for e in streamed) == choice["message"]["content"]


def test_without_logprobs_the_field_is_null_as_openai_sends_it(client: httpx.Client) -> None:
    body = chat(client, messages=USER_HELLO, temperature=0)
    assert body["choices"][0]["logprobs"] is None
    for c in stream(client, messages=USER_HELLO, temperature=0):
        assert c["choices"][0]["logprobs"] is None
    off = chat(client, messages=USER_HELLO, temperature=0, logprobs=False)
    assert off["choices"][0]["logprobs"] is None
    assert off["choices"][0]["message"] == body["choices"][0]["message"]
