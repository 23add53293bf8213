"""OpenAI chat completions on top of the chat pipeline: choices, tool calls, logprobs and usage.

A request with ``n`` choices runs ``n`` generations side by side (each its own engine request, so
continuous batching decodes them together and the prompt's cache is shared); their chunks go out
interleaved, each with its choice's index. Tool calls are read out of each choice's text by a
``ToolCallParser`` and sent as ``delta.tool_calls``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from app.engine.base import TokenLogprob
from app.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChoiceLogprobs,
    FunctionCall,
    ResponseMessage,
    ToolCall,
    Usage,
)
from app.serving.chat import ChatService, Finished, PreparedChat, RequestRecord, TextDelta, Ticket, new_id
from app.serving.errors import engine_failed, invalid
from app.serving.generation import Replayed
from app.serving.sse import DONE, sse_data
from app.serving.tools import CALL_END, CallArguments, CallStart, Piece, ToolCallParser, plan_tools


async def prepare_openai(
    service: ChatService, req: ChatCompletionRequest, request_id: str
) -> list[PreparedChat]:
    """Refuse what is not served, validate like any chat request, and give one generation per choice.

    A grammar (``response_format``, or a forced tool call) is compiled on a worker thread: a new
    schema takes milliseconds (tens on a large vocabulary), which every stream on the event loop
    would otherwise wait for.
    """
    service.check_model(req.model)
    n = 1 if req.n is None else req.n
    if n > service.settings.max_choices:
        raise invalid(
            f"n is {n}, but this service returns at most {service.settings.max_choices} choices per request",
            "n",
        )
    if req.top_logprobs is not None and not req.logprobs:
        raise invalid("logprobs must be true when top_logprobs is set", "top_logprobs")
    if req.continue_token_ids and n > 1:
        raise invalid("continue_token_ids continues one answer: n must be 1", "continue_token_ids")
    tools = plan_tools(req.tools, req.tool_choice, req.messages, service.tool_format)
    grammar = None
    if req.response_format is not None:
        grammar = await asyncio.to_thread(service.structured.response_format, req.response_format)
    if tools.forced is not None:
        if grammar is not None:
            raise invalid(
                "response_format cannot be combined with a tool_choice that forces a call",
                "response_format",
            )
        grammar = await asyncio.to_thread(service.structured.tool_call, tools.forced)
    first = service.prepare(
        req.messages,
        max_tokens=req.max_completion_tokens if req.max_tokens is None else req.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        stop=req.stop,
        ignore_eos=req.ignore_eos,
        request_id=request_id,
        logprobs=(req.top_logprobs or 0) if req.logprobs else None,
        tools=tools,
        grammar=grammar,
        resumed=req.continue_token_ids,
    )
    if tools.parse and req.parallel_tool_calls is False:
        # One call at most: the reply ends where the first call does.
        first.stops.append(CALL_END)
    others = [replace(first, params=replace(first.params, seed=_seed(req.seed, i))) for i in range(1, n)]
    return [first, *others]


def _seed(seed: int | None, choice: int) -> int | None:
    """Choice ``i`` of a seeded request draws from seed + i, so the choices differ and repeat."""
    return None if seed is None else (seed + choice) % 2**64


def admit_all(service: ChatService, count: int) -> list[Ticket]:
    """A queue place per choice, or none at all (503) when the queue cannot take every one."""
    tickets: list[Ticket] = []
    try:
        for _ in range(count):
            tickets.append(service.admit())
    except BaseException:
        for ticket in tickets:
            ticket.release()
        raise
    return tickets


def _usage(finished: Sequence[Finished]) -> Usage:
    prompt = finished[0].prompt_tokens
    completion = sum(f.completion_tokens for f in finished)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _finish_reason(finished: Finished, parser: ToolCallParser | None) -> str:
    if finished.finish_reason == "stop" and parser is not None and parser.calls:
        return "tool_calls"
    return finished.finish_reason


@dataclass
class _WholeChoice:
    """One choice of a whole reply, gathered from its generation."""

    parser: ToolCallParser | None
    content: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)

    def add(self, pieces: list[Piece]) -> None:
        for piece in pieces:
            if isinstance(piece, str):
                self.content.append(piece)
            elif isinstance(piece, CallStart):
                self.calls.append({"id": piece.id, "name": piece.name, "arguments": []})
            else:
                self.calls[piece.index]["arguments"].append(piece.text)

    async def gather(
        self, service: ChatService, prepared: PreparedChat, ticket: Ticket, record: RequestRecord
    ) -> Finished:
        finished = Finished("cancelled", len(prepared.prompt_ids), 0)
        async for event in service.run(prepared, ticket, record):
            if isinstance(event, TextDelta):
                self.add(self.parser.feed(event.text) if self.parser else [event.text])
                if event.logprobs:
                    self.logprobs.extend(event.logprobs)
                self.token_ids.extend(event.token_ids)
            elif isinstance(event, Replayed):
                if self.parser is not None:
                    self.parser.feed(event.text)  # sent before: only the parser's state matters
                # the earlier part is the client's already: this reply is what follows it
            else:
                finished = event
                self.token_ids.extend(event.token_ids)
        if self.parser is not None:
            self.add(self.parser.flush())
        return finished

    def message(self) -> ResponseMessage:
        text = "".join(self.content)
        if not self.calls:
            return ResponseMessage(content=text)
        calls = [
            ToolCall(id=c["id"], function=FunctionCall(name=c["name"], arguments="".join(c["arguments"])))
            for c in self.calls
        ]
        return ResponseMessage(content=text or None, tool_calls=calls)


async def complete_openai(
    service: ChatService,
    prepared: list[PreparedChat],
    tickets: list[Ticket],
    record: RequestRecord,
    token_ids: bool = False,
) -> ChatCompletion:
    """A non-streamed ``chat.completion`` with one entry per choice (with token ids when asked)."""
    choices = [_WholeChoice(ToolCallParser() if p.tools.parse else None) for p in prepared]
    finished = await asyncio.gather(
        *(c.gather(service, p, t, record) for c, p, t in zip(choices, prepared, tickets, strict=True))
    )
    if any(f.finish_reason == "error" for f in finished):
        raise engine_failed()
    asks_logprobs = prepared[0].params.logprobs is not None
    return ChatCompletion(
        id=new_id("chatcmpl"),
        created=int(time.time()),
        model=service.model_id,
        choices=[
            Choice(
                index=i,
                message=c.message(),
                finish_reason=_finish_reason(f, c.parser),
                logprobs=(
                    ChoiceLogprobs.model_validate({"content": service.token_texts.content(c.logprobs)})
                    if asks_logprobs
                    else None
                ),
                token_ids=c.token_ids if token_ids else None,
            )
            for i, (c, f) in enumerate(zip(choices, finished, strict=True))
        ],
        usage=_usage(finished),
        prompt_token_ids=prepared[0].prompt_ids if token_ids else None,
    )


async def _interleave(
    streams: list[AsyncIterator[TextDelta | Replayed | Finished]],
) -> AsyncIterator[tuple[int, Any]]:
    """The events of several generations as they come, each with its stream's index.

    Closing this iterator (the client went away) cancels every generation, which frees their
    engine slots as closing a single one does.
    """
    if len(streams) == 1:
        async for event in streams[0]:
            yield 0, event
        return
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    end = object()

    async def pump(index: int, stream: AsyncIterator[TextDelta | Replayed | Finished]) -> None:
        try:
            async for event in stream:
                queue.put_nowait((index, event))
        except Exception as exc:  # handed to the consumer, which raises it
            queue.put_nowait((index, exc))
        finally:
            queue.put_nowait((index, end))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            index, event = await queue.get()
            if event is end:
                running -= 1
            elif isinstance(event, Exception):
                raise event
            else:
                yield index, event
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]


async def stream_openai(
    service: ChatService,
    prepared: list[PreparedChat],
    tickets: list[Ticket],
    record: RequestRecord,
    include_usage: bool,
    token_ids: bool = False,
) -> AsyncIterator[str]:
    """``chat.completion.chunk`` events of every choice, an optional usage chunk, then ``[DONE]``.

    With ``token_ids`` (``return_token_ids``) the first chunk carries ``prompt_token_ids`` and every chunk
    the ids of the tokens decoded since the previous one (``choices[].token_ids``), also when their text is
    still held back: a chunk goes out for them then, with no content.
    """
    cid, created, model = new_id("chatcmpl"), int(time.time()), service.model_id
    opening = (
        f'{{"id":"{cid}","object":"chat.completion.chunk","created":{created},'
        f'"model":{json.dumps(model, ensure_ascii=False)},"choices":[{{"index":'
    )
    # Every content chunk differs only in its choice and text: format it directly, as this runs
    # once per token.
    heads = [f'data: {opening}{i},"delta":{{"content":' for i in range(len(prepared))]
    tail = '},"finish_reason":null,"logprobs":null}],"usage":null}\n\n'
    texts = service.token_texts

    def chunk(
        index: int,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        logprobs: Any = None,
        ids: list[int] | None = None,
    ) -> str:
        choice: dict[str, Any] = {
            "index": index,
            "delta": delta,
            "finish_reason": finish_reason,
            "logprobs": logprobs,
        }
        if token_ids:
            choice["token_ids"] = ids or []
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": None,
        }
        return sse_data(json.dumps(body, ensure_ascii=False, separators=(",", ":")))

    def piece_delta(piece: Piece) -> dict[str, Any]:
        if isinstance(piece, str):
            return {"content": piece}
        if isinstance(piece, CallStart):
            call = {"index": piece.index, "id": piece.id, "type": "function"}
            return {"tool_calls": [{**call, "function": {"name": piece.name, "arguments": ""}}]}
        assert isinstance(piece, CallArguments)
        return {"tool_calls": [{"index": piece.index, "function": {"arguments": piece.text}}]}

    def pieces_out(
        index: int, pieces: list[Piece], logprobs: list[TokenLogprob] | None, ids: list[int] | None = None
    ) -> list[str]:
        if logprobs is None and not ids:
            if len(pieces) == 1 and isinstance(pieces[0], str) and not token_ids:
                return [f"{heads[index]}{json.dumps(pieces[0], ensure_ascii=False)}{tail}"]
            return [chunk(index, piece_delta(p)) for p in pieces]
        # the tokens whose text this event carries (see LogprobAligner) ride on its first chunk, as do the
        # ids of the tokens decoded since the last chunk
        reported = None if logprobs is None else {"content": texts.content(logprobs), "refusal": None}
        first, *rest = pieces or [""]
        return [chunk(index, piece_delta(first), logprobs=reported, ids=ids)] + [
            chunk(index, piece_delta(p)) for p in rest
        ]

    parsers = [ToolCallParser() if p.tools.parse else None for p in prepared]
    for i in range(len(prepared)):
        opening_chunk = chunk(i, {"role": "assistant", "content": ""})
        if token_ids and i == 0:
            body = json.loads(opening_chunk[len("data: ") :])
            body["prompt_token_ids"] = prepared[0].prompt_ids
            opening_chunk = sse_data(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
        yield opening_chunk
    finished: list[Finished] = []
    streams = [service.run(p, t, record) for p, t in zip(prepared, tickets, strict=True)]
    async for index, event in _interleave(streams):
        parser = parsers[index]
        if isinstance(event, TextDelta):
            pieces: list[Piece] = [event.text] if event.text else []
            if parser is not None:
                pieces = parser.feed(event.text)
            ids = event.token_ids if token_ids else None
            if pieces or event.logprobs is not None or ids:
                for out in pieces_out(index, pieces, event.logprobs, ids):
                    yield out
            continue
        if isinstance(event, Replayed):
            if parser is not None:
                parser.feed(event.text)  # sent before: only the parser's state matters
            continue
        finished.append(event)
        if event.finish_reason == "error":
            yield sse_data(json.dumps(engine_failed().body()))
            break  # the other choices end with the stream
        if parser is not None:
            for out in pieces_out(index, parser.flush(), None):
                yield out
        yield chunk(index, {}, _finish_reason(event, parser), ids=event.token_ids)
    if include_usage and finished:
        usage = ChatCompletionChunk(id=cid, created=created, model=model, choices=[], usage=_usage(finished))
        yield sse_data(usage.model_dump_json())
    yield DONE
