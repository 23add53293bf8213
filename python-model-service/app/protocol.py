"""Request and response schemas of the HTTP API, and the shared error envelope."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "user", "assistant"]

# What a torch.Generator accepts as a seed: anything else is the client's mistake (400), not ours.
Seed = Annotated[int, Field(ge=-(2**63), le=2**64 - 1)]


class TextPart(BaseModel):
    """A text content part, as newer OpenAI clients may send."""

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One chat turn; a list of text parts is joined into one string."""

    role: Role
    content: str

    @field_validator("content", mode="before")
    @classmethod
    def _join_text_parts(cls, value: Any) -> Any:
        if isinstance(value, list):
            return "".join(TextPart.model_validate(part).text for part in value)
        return value


class StreamOptions(BaseModel):
    """OpenAI ``stream_options``."""

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI chat completions request; unknown fields are ignored (clients send many)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: Seed | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1)
    tools: list[Any] | None = None
    tool_choice: Any = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    # {"type": "text" | "json_object" | "json_schema", "json_schema": {...}}: checked by the structured
    # outputs module, which names every problem with param "response_format".
    response_format: dict[str, Any] | None = None
    ignore_eos: bool = False


class Usage(BaseModel):
    """Token counts of one completion."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TopLogprob(BaseModel):
    """One of the likeliest tokens at a position: its text, log-probability and UTF-8 bytes."""

    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprobs(TopLogprob):
    """A generated token's log-probability and the likeliest tokens at its position."""

    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    """OpenAI ``choices[].logprobs``: the generated tokens' log-probabilities."""

    content: list[TokenLogprobs] | None
    refusal: list[TokenLogprobs] | None = None


class ResponseMessage(BaseModel):
    """The assistant message of a non-streamed completion."""

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """One choice of a non-streamed completion."""

    index: int = 0
    message: ResponseMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    """OpenAI ``chat.completion`` object."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class DeltaMessage(BaseModel):
    """The increment carried by one stream chunk."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    """One choice of a stream chunk."""

    index: int = 0
    delta: DeltaMessage
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    """OpenAI ``chat.completion.chunk`` object."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "llm-model-service"


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class LessonChatRequest(BaseModel):
    """The lesson's ``POST /chat/new/message/`` request."""

    model_config = ConfigDict(extra="allow")

    prompt: str = Field(min_length=1)
    history: list[ChatMessage] = Field(default_factory=list)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: Seed | None = None
    stream: bool = False
    mode: Literal["delta", "cumulative"] = "delta"


class LessonChatResponse(BaseModel):
    """The lesson's non-streamed reply."""

    response: str
    history: list[ChatMessage]
    status: int
    time: str


class LessonStreamEvent(BaseModel):
    """One streamed event of the lesson API; ``finish_reason`` only on the last one."""

    text: str
    message_id: str
    finish_reason: str | None = None
