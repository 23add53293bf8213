"""OpenAI chat completions on top of the chat pipeline."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from app.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChoiceLogprobs,
    ChunkChoice,
    DeltaMessage,
    ResponseMessage,
    Usage,
)
from app.serving.chat import ChatService, Finished, PreparedChat, RequestRecord, Ticket, new_id
from app.serving.errors import engine_failed, invalid
from app.serving.sse import DONE, sse_data


def prepare_openai(service: ChatService, req: ChatCompletionRequest, request_id: str) -> PreparedChat:
    """Refuse what is not implemented, then validate like any chat request."""
    service.check_model(req.model)
    if req.n is not None and req.n != 1:
        raise invalid("n > 1 is not supported; send separate requests", "n", code="unsupported_parameter")
    if req.tools:
        raise invalid("tools are not supported by this service", "tools", code="unsupported_parameter")
    if req.top_logprobs is not None and not req.logprobs:
        raise invalid("logprobs must be true when top_logprobs is set", "top_logprobs")
    grammar = service.structured.response_format(req.response_format)
    return service.prepare(
        req.messages,
        max_tokens=req.max_completion_tokens if req.max_tokens is None else req.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        stop=req.stop,
        ignore_eos=req.ignore_eos,
        request_id=request_id,
        logprobs=(req.top_logprobs or 0) if req.logprobs else None,
        grammar=grammar,
    )


def _usage(f: Finished) -> Usage:
    return Usage(
        prompt_tokens=f.prompt_tokens,
        completion_tokens=f.completion_tokens,
        total_tokens=f.prompt_tokens + f.completion_tokens,
    )


async def complete_openai(
    service: ChatService, prepared: PreparedChat, ticket: Ticket, record: RequestRecord
) -> ChatCompletion:
    """A non-streamed ``chat.completion``."""
    text, finished, logprobs = await service.complete(prepared, ticket, record)
    if finished.finish_reason == "error":
        raise engine_failed()
    choice_logprobs = None
    if logprobs is not None:
        choice_logprobs = ChoiceLogprobs.model_validate({"content": service.token_texts.content(logprobs)})
    return ChatCompletion(
        id=new_id("chatcmpl"),
        created=int(time.time()),
        model=service.model_id,
        choices=[
            Choice(
                message=ResponseMessage(content=text),
                finish_reason=finished.finish_reason,
                logprobs=choice_logprobs,
            )
        ],
        usage=_usage(finished),
    )


async def stream_openai(
    service: ChatService,
    prepared: PreparedChat,
    ticket: Ticket,
    record: RequestRecord,
    include_usage: bool,
) -> AsyncIterator[str]:
    """``chat.completion.chunk`` events, an optional usage chunk, then ``[DONE]``."""
    cid, created, model = new_id("chatcmpl"), int(time.time()), service.model_id

    # Every content chunk differs only in its text: format it directly, as this runs once per token.
    head = (
        f'{{"id":"{cid}","object":"chat.completion.chunk","created":{created},'
        f'"model":{json.dumps(model, ensure_ascii=False)},"choices":[{{"index":0,"delta":{{"content":'
    )
    tail = '},"finish_reason":null,"logprobs":null}],"usage":null}'
    texts = service.token_texts

    def chunk(delta: DeltaMessage, finish_reason: str | None = None) -> str:
        c = ChatCompletionChunk(
            id=cid,
            created=created,
            model=model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish_reason)],
        ).model_dump()
        # OpenAI leaves unset delta fields out rather than sending nulls
        c["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
        return sse_data(json.dumps(c, ensure_ascii=False, separators=(",", ":")))

    yield chunk(DeltaMessage(role="assistant", content=""))
    async for event in service.run(prepared, ticket, record):
        if not isinstance(event, Finished):
            content = json.dumps(event.text, ensure_ascii=False)
            if event.logprobs is None:
                yield f"data: {head}{content}{tail}\n\n"
            else:
                # the tokens whose text this chunk carries (see LogprobAligner)
                lp = json.dumps(texts.content(event.logprobs), ensure_ascii=False, separators=(",", ":"))
                lp_tail = (
                    f'}},"finish_reason":null,"logprobs":{{"content":{lp},"refusal":null}}}}],"usage":null}}'
                )
                yield f"data: {head}{content}{lp_tail}\n\n"
            continue
        if event.finish_reason == "error":
            yield sse_data(json.dumps(engine_failed().body()))
        else:
            yield chunk(DeltaMessage(), event.finish_reason)
        if include_usage:
            usage = ChatCompletionChunk(id=cid, created=created, model=model, choices=[], usage=_usage(event))
            yield sse_data(usage.model_dump_json())
    yield DONE
