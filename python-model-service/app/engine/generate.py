"""The fallback engine: one request at a time through ``model.generate``.

For models whose remote code cannot run under paged attention (ChatGLM3-style custom modeling).
It honours the same interface, sampling, seeds and cancellation as the continuous engine.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria

from app.engine.base import Engine, EngineError, EngineStats, EngineStep, FinishReason, SamplingParams
from app.engine.grammar import GrammarMask
from app.engine.sampling import RowSampler, decide_rows

log = logging.getLogger("app.engine")


@dataclass
class _Job:
    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    outputs: asyncio.Queue[EngineStep]
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: bool = False

    def emit(self, step: EngineStep) -> None:
        if not self.cancelled.is_set():
            self.loop.call_soon_threadsafe(self.outputs.put_nowait, step)


class _Sample(LogitsProcessor):
    """Samples with the request's own generator and grammar; the scores it sees (and reports logprobs of)
    are the raw logits, except that under ``ignore_eos`` ``generate`` has already masked the
    end-of-sequence token."""

    def __init__(self, sampler: RowSampler, mask: GrammarMask) -> None:
        self.sampler = sampler
        self.mask = mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return decide_rows(scores, [(0, self.sampler)], self.mask)  # type: ignore[return-value]


class _Cancelled(StoppingCriteria):
    def __init__(self, job: _Job) -> None:
        self.job = job

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        stop = self.job.cancelled.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


class _Streamer:
    """Receives tokens from ``generate``; the first call carries the prompt."""

    def __init__(self, job: _Job, sampler: RowSampler) -> None:
        self.job = job
        self.sampler = sampler
        self.prompt_seen = False
        self.tokens: list[int] = []

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        ids = [int(v) for v in value.reshape(-1).tolist()]
        self.tokens.extend(ids)
        # _Sample recorded these tokens' logprobs when it chose them, before generate streamed them
        logprobs = self.sampler.take(len(ids)) if self.sampler.logprobs is not None else None
        self.job.emit(EngineStep(ids, logprobs=logprobs))

    def end(self) -> None:
        return None


class GenerateEngine(Engine):
    """Serial decoding on a worker thread; queued requests wait their turn."""

    kind = "generate"

    def __init__(self, model: Any, tokenizer: Any, model_id: str, max_model_len: int) -> None:
        super().__init__(model, tokenizer, model_id, max_model_len)
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._tracked: dict[str, _Job] = {}
        self._current: _Job | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._mask = GrammarMask()  # used by the worker thread only

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="generate-engine", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        for job in list(self._tracked.values()):
            job.emit(EngineStep([], "error", "the engine stopped"))
            job.cancelled.set()
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout)
            self._thread = None

    def healthy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def abort(self, request_id: str) -> None:
        job = self._tracked.get(request_id)
        if job is not None:
            job.emit(EngineStep([], "cancelled"))

    def stats(self) -> EngineStats:
        running = 1 if self._current is not None else 0
        waiting = sum(1 for j in list(self._jobs.queue) if j is not None and not j.cancelled.is_set())
        return EngineStats(running, waiting, len(self._tracked), self._mask.tokens, self._mask.seconds)

    async def generate(
        self, request_id: str, prompt_ids: list[int], params: SamplingParams
    ) -> AsyncIterator[EngineStep]:
        if request_id in self._tracked:
            raise EngineError(f"request id {request_id!r} is already running")
        if self._thread is None:
            raise EngineError("the engine is not running")
        job = _Job(request_id, list(prompt_ids), params, asyncio.get_running_loop(), asyncio.Queue())
        self._tracked[request_id] = job
        self._jobs.put(job)
        done = False
        try:
            while True:
                step = await job.outputs.get()
                # an aborted job is still running: leaving without `done` stops it below
                done = step.finish_reason not in (None, "cancelled")
                yield step
                if step.finish_reason is not None:
                    return
        finally:
            if not done:
                with self._lock:
                    job.cancelled.set()
                    queued = not job.started
                if queued:
                    # Never reached the worker: release it now; the worker will skip it.
                    self._tracked.pop(request_id, None)
                    self._record_finish(request_id, "cancelled")
                # A running job stops at its next decoding step (see _Cancelled).

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                if job.cancelled.is_set():
                    continue
                job.started = True
                self._current = job
            try:
                self._decode(job)
            except Exception as exc:  # the worker must survive any one request
                log.exception("event=engine_error request_id=%s", job.request_id)
                job.emit(EngineStep([], "error", type(exc).__name__))
            finally:
                self._current = None
                self._tracked.pop(job.request_id, None)
                self._record_finish(job.request_id, "cancelled" if job.cancelled.is_set() else "finished")

    @torch.inference_mode()
    def _decode(self, job: _Job) -> None:
        if job.cancelled.is_set():
            return
        params = job.params
        sampler = RowSampler.from_params(params, self.vocab_size)
        streamer = _Streamer(job, sampler)
        eos = sorted(self.eos_token_ids)
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            # ignore_eos: EOS is masked until the budget is spent, so exactly max_new_tokens come out
            min_new_tokens=0 if params.stops_at_eos else params.max_new_tokens,
            do_sample=False,
            eos_token_id=eos or None,
            pad_token_id=getattr(self.tokenizer, "pad_token_id", None) or (eos[0] if eos else 0),
        )
        input_ids = torch.tensor([job.prompt_ids], dtype=torch.long, device=self.model.device)
        self.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            generation_config=config,
            logits_processor=LogitsProcessorList([_Sample(sampler, self._mask)]),
            stopping_criteria=[_Cancelled(job)],
            streamer=streamer,
        )
        if job.cancelled.is_set():
            return
        tokens = streamer.tokens
        stopped = bool(tokens) and params.stops_at_eos and tokens[-1] in self.eos_token_ids
        reason: FinishReason = "stop" if stopped else "length"
        job.emit(EngineStep([], reason))
