"""Helpers to read SSE replies in tests."""

from __future__ import annotations

import json
from typing import Any

import httpx


def read_events(response: httpx.Response) -> tuple[list[Any], list[str]]:
    """All ``data:`` payloads (JSON-decoded, ``[DONE]`` kept as a string) and all comment lines."""
    data: list[Any] = []
    comments: list[str] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            data.append(payload if payload == "[DONE]" else json.loads(payload))
        elif line.startswith(":"):
            comments.append(line)
    return data, comments


def chunk_texts(events: list[Any]) -> list[str]:
    """The content deltas of OpenAI chunks."""
    out = []
    for e in events:
        if isinstance(e, dict) and e.get("choices"):
            content = e["choices"][0]["delta"].get("content")
            if content:
                out.append(content)
    return out
