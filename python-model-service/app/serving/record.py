"""The access-log record of one request, filled in as the request goes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RequestRecord:
    """What the access log line reports about a request; filled in as the request goes."""

    request_id: str
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    finish_reason: str | None = None
    prompt_text: str | None = None
    reply_text: list[str] = field(default_factory=list)
