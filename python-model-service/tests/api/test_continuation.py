"""Token ids on replies (``return_token_ids``) and continued answers (``continue_token_ids``): a partial
answer continued by another request gives exactly the uninterrupted answer, as a gateway splices it when a
replica fails mid-stream."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from harness import sse

GREAT_WALL = [{"role": "user", "content": "介绍一下长城"}]


def stream(client: httpx.Client, **body: Any) -> list[Any]:
    body.setdefault("model", "demo-model")
    body.setdefault("messages", GREAT_WALL)
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        return sse.payloads(sse.events(r))


def content_chunks(payloads: list[Any]) -> list[dict[str, Any]]:
    """The chunks after the opening role chunk that carry a choice."""
    return [p for p in payloads[1:] if isinstance(p, dict) and p.get("choices")]


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


def ids_of(chunks: list[dict[str, Any]]) -> list[int]:
    return [t for c in chunks for t in c["choices"][0]["token_ids"]]


def usage_of(payloads: list[Any]) -> dict[str, int]:
    return next(p["usage"] for p in payloads if isinstance(p, dict) and p.get("usage"))


def splice(client: httpx.Client, cut: int, **body: Any) -> tuple[str, list[Any], list[Any]]:
    """The uninterrupted stream, and the same answer cut after ``cut`` content chunks and continued by a
    second request from the ids received so far: (the spliced text, the reference, the continuation)."""
    reference = stream(client, return_token_ids=True, stream_options={"include_usage": True}, **body)
    before = content_chunks(reference)[:cut]
    continued = stream(
        client,
        return_token_ids=True,
        continue_token_ids=ids_of(before),
        stream_options={"include_usage": True},
        **body,
    )
    return text_of(before) + text_of(content_chunks(continued)), reference, continued


def test_stream_and_whole_reply_carry_the_generated_token_ids(client: httpx.Client) -> None:
    body = {"temperature": 0, "max_tokens": 40, "ignore_eos": True}
    payloads = stream(client, return_token_ids=True, stream_options={"include_usage": True}, **body)
    assert payloads[0]["prompt_token_ids"] and payloads[-1] == "[DONE]"
    ids = ids_of(content_chunks(payloads))
    assert len(ids) == 40 == usage_of(payloads)["completion_tokens"]
    whole = client.post(
        "/v1/chat/completions",
        json={"model": "demo-model", "messages": GREAT_WALL, "return_token_ids": True, **body},
    ).json()
    assert whole["choices"][0]["token_ids"] == ids
    assert whole["prompt_token_ids"] == payloads[0]["prompt_token_ids"]
    assert len(whole["prompt_token_ids"]) == whole["usage"]["prompt_tokens"]
    # without asking, replies look as before
    plain = stream(client, **body)
    assert all("token_ids" not in c["choices"][0] for c in content_chunks(plain))
    assert "prompt_token_ids" not in plain[0]


@pytest.mark.parametrize("cut", [1, 17, 60])
def test_a_greedy_continuation_is_the_uninterrupted_answer(client: httpx.Client, cut: int) -> None:
    spliced, reference, continued = splice(client, cut, temperature=0, max_tokens=120, ignore_eos=True)
    assert spliced == text_of(content_chunks(reference))
    # the same tokens, and the usage of the whole answer: the earlier part counts as generated
    assert ids_of(content_chunks(reference)) == ids_of(content_chunks(reference)[:cut]) + ids_of(
        content_chunks(continued)
    )
    assert usage_of(continued) == usage_of(reference)
    assert continued[-1] == "[DONE]"


def test_a_seeded_continuation_replays_the_sampler(client: httpx.Client) -> None:
    body = {"temperature": 0.9, "top_p": 0.95, "seed": 1234, "max_tokens": 100, "ignore_eos": True}
    spliced, reference, _ = splice(client, 30, **body)
    assert spliced == text_of(content_chunks(reference))


def test_a_stop_string_held_at_the_splice_is_matched_after_it(client: httpx.Client) -> None:
    body = {"temperature": 0, "max_tokens": 80, "ignore_eos": True}
    full = text_of(content_chunks(stream(client, **body)))
    stop = full[40:44]  # found first at some later point, and held back while it might still match
    expected = full[: full.find(stop)]
    for cut in (3, 10, 20):
        spliced, reference, continued = splice(client, cut, stop=stop, **body)
        assert text_of(content_chunks(reference)) == expected
        assert spliced == expected, cut
        assert continued[-2]["usage"] == reference[-2]["usage"]


def test_logprobs_go_on_after_the_splice(client: httpx.Client) -> None:
    body = {"temperature": 0, "max_tokens": 30, "ignore_eos": True, "logprobs": True}
    _, reference, continued = splice(client, 10, **body)
    after = [
        e for c in content_chunks(continued) for e in (c["choices"][0]["logprobs"] or {}).get("content", [])
    ]
    whole = [
        e for c in content_chunks(reference) for e in (c["choices"][0]["logprobs"] or {}).get("content", [])
    ]
    # the same tokens; their numbers agree to float rounding (a prefill computes them in another order)
    tail = whole[len(whole) - len(after) :]
    assert after and [e["token"] for e in after] == [e["token"] for e in tail]
    assert [e["logprob"] for e in after] == pytest.approx([e["logprob"] for e in tail], abs=1e-4)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"n": 2}, "n must be 1"),
        ({"max_tokens": 3}, "nothing is left"),
        ({"continue_token_ids": [10**9]}, "vocabulary"),
    ],
)
def test_continuations_that_cannot_be_served_are_refused(
    client: httpx.Client, extra: dict[str, Any], fragment: str
) -> None:
    body = {"model": "demo-model", "messages": GREAT_WALL, "continue_token_ids": [100, 101, 102], **extra}
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "continue_token_ids" and fragment in error["message"]
