"""Request and response schemas of the HTTP API, and the shared error envelope."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

Role = Literal["system", "user", "assistant", "tool"]

# OpenAI's rule for function names; the same one keeps names safe inside the rendered prompt.
FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"

# What a torch.Generator accepts as a seed: anything else is the client's mistake (400), not ours.
Seed = Annotated[int, Field(ge=-(2**63), le=2**64 - 1)]


class TextPart(BaseModel):
    """A text content part, as newer OpenAI clients may send."""

    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    """The function an assistant called: its name and its arguments as a JSON text."""

    name: str = Field(pattern=FUNCTION_NAME)
    arguments: str


class ToolCall(BaseModel):
    """One tool call of an assistant message."""

    id: str = Field(min_length=1, max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    """One chat turn; a list of text parts is joined into one string.

    An assistant turn that called tools carries ``tool_calls`` (its content may then be null); a
    ``tool`` turn carries the result of the call named by ``tool_call_id``. Fields that are not set
    are left out when a message is written back (the lesson API's history).
    """

    role: Role
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = Field(default=None, min_length=1, max_length=256)
    # Declared after the fields it is checked against, and checked also when it is absent.
    content: str | None = Field(default=None, validate_default=True)

    @field_validator("content", mode="before")
    @classmethod
    def _join_text_parts(cls, value: Any) -> Any:
        if isinstance(value, list):
            return "".join(TextPart.model_validate(part).text for part in value)
        return value

    @field_validator("content")
    @classmethod
    def _content_unless_calls(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and not (info.data.get("role") == "assistant" and info.data.get("tool_calls")):
            raise ValueError("content is required (null only on an assistant message with tool_calls)")
        return value

    @model_validator(mode="after")
    def _check_role_fields(self) -> ChatMessage:
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.role == "tool" and self.tool_call_id is None:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        return self

    @model_serializer(mode="wrap")
    def _leave_out_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("tool_calls", "tool_call_id"):
            if data.get(key) is None:
                data.pop(key, None)
        return {"role": data.pop("role"), "content": data.pop("content"), **data}


class FunctionDefinition(BaseModel):
    """A function the model may call: its name, what it does and its parameters' JSON Schema."""

    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(BaseModel):
    """One entry of ``tools``."""

    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    """The function named by ``tool_choice``."""

    name: str = Field(pattern=FUNCTION_NAME)


class NamedToolChoice(BaseModel):
    """``tool_choice`` naming the one function the model must call."""

    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


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
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    # {"type": "text" | "json_object" | "json_schema", "json_schema": {...}}: checked by the structured
    # outputs module, which names every problem with param "response_format".
    response_format: dict[str, Any] | None = None
    ignore_eos: bool = False
    # vLLM's extension: the reply (and each chunk) carries the generated token ids, and the prompt's.
    return_token_ids: bool = False
    # Our extension: the ids of a partial answer (as ``return_token_ids`` gave them) to be continued, as if
    # this request had generated them itself: they follow the generation prompt, count as completion tokens
    # and against max_tokens, and are not sent again. A greedy continuation equals the uninterrupted
    # answer token for token; a seeded one too (the sampler replays its draws over them).
    continue_token_ids: list[Annotated[int, Field(ge=0)]] | None = Field(default=None, max_length=1_000_000)

    @field_validator("tool_choice", mode="wrap")
    @classmethod
    def _one_tool_choice_error(cls, value: Any, handler: Any) -> Any:
        # One message for the field, rather than one per member of the union.
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(
                'must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}} '
                "with a valid function name"
            ) from None


class Usage(BaseModel):
    """Token counts of one completion."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def _without_none(data: dict[str, Any], key: str) -> dict[str, Any]:
    if data.get(key) is None:
        data.pop(key, None)
    return data


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
    """The assistant message of a non-streamed completion; ``content`` is null when it only called tools."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None

    @model_serializer(mode="wrap")
    def _calls_only_when_made(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("tool_calls") is None:
            data.pop("tool_calls", None)
        return data


class Choice(BaseModel):
    """One choice of a non-streamed completion; ``token_ids`` only when the request asked for them."""

    index: int = 0
    message: ResponseMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None
    token_ids: list[int] | None = None

    @model_serializer(mode="wrap")
    def _ids_only_when_asked(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_none(handler(self), "token_ids")


class ChatCompletion(BaseModel):
    """OpenAI ``chat.completion`` object."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    prompt_token_ids: list[int] | None = None

    @model_serializer(mode="wrap")
    def _ids_only_when_asked(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_none(handler(self), "prompt_token_ids")


class DeltaFunction(BaseModel):
    """A fragment of a streamed call: the name comes once, in the call's first fragment."""

    name: str | None = None
    arguments: str


class DeltaToolCall(BaseModel):
    """A fragment of a streamed tool call; the first one of each call carries its id, type and name."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: DeltaFunction


class DeltaMessage(BaseModel):
    """The increment carried by one stream chunk."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None


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
