"""The default engine: transformers' continuous batching (paged attention), on CPU and GPU."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import torch
from transformers import ContinuousBatchingConfig, GenerationConfig
from transformers.generation.continuous_batching.cb_logits_processors import (
    ContinuousBatchingLogitsProcessor,
    ContinuousBatchingLogitsProcessorList,
)
from transformers.generation.logits_process import LogitsProcessorList

from app.engine.attention import VARLEN, AttentionChoice, choose_attention
from app.engine.base import Engine, EngineError, EngineStats, EngineStep, FinishReason, SamplingParams
from app.engine.sampling import SamplerRegistry

log = logging.getLogger("app.engine")

# Prefix reuse shares whole pages only: a new turn recomputes the part of the conversation that did not
# fill a page (up to PAGE_SIZE - 1 tokens, besides its own new ones). 16 tokens, vLLM's default block
# size, keeps that short. Its cost is bookkeeping per page: in-process at 32 streams, 3% fewer tokens/s
# than pages of 64 on the demo model, none measurable on the 30M random one (3 rounds each, CPU).
PAGE_SIZE = 16
# How long start() waits for the engine thread to build its batch processor (its KV cache).
BATCH_PROCESSOR_WAIT_S = 60.0
# CPU has no free-memory probe to size the KV cache from, so it gets a fixed token budget.
CPU_KV_CACHE_TOKENS = 16384


_ABORT = object()


@dataclass
class _Live:
    slot: int
    loop: asyncio.AbstractEventLoop
    outputs: asyncio.Queue[Any]


class _SlotSampler(ContinuousBatchingLogitsProcessor):
    """Carries each row's sampler slot through the batch and applies the request's own sampling."""

    supported_kwargs: dict[str, type] = {"slot": int}  # noqa: RUF012 - mirrors the base class
    ignored_kwargs: tuple[str, ...] = ()

    def __init__(self, registry: SamplerRegistry) -> None:
        self.registry = registry

    def fill_defaults(self, int32_tensor: torch.Tensor) -> None:
        int32_tensor.fill_(-1)

    def prepare_tensor_args(self, requests_with_new_token: list[Any]) -> torch.Tensor:
        slots = [int(r.state.logit_processor_kwargs.get("slot", -1)) for r in requests_with_new_token]
        return torch.tensor(slots, dtype=torch.int32, device="cpu")

    def __call__(self, scores: torch.Tensor, tensor_arg: torch.Tensor) -> torch.Tensor:
        slots = tensor_arg[: scores.size(0)].tolist()
        return self.registry.apply(scores, slots)


class ContinuousBatchingEngine(Engine):
    """Many requests decoded together by a ``ContinuousBatchingManager`` running in its own thread."""

    kind = "continuous"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_id: str,
        max_model_len: int,
        max_batch_tokens: int = 2048,
        max_batch_requests: int = 16,
        kv_cache_tokens: int | None = None,
        prefix_cache: bool = True,
        attention: AttentionChoice = "auto",
    ) -> None:
        super().__init__(model, tokenizer, model_id, max_model_len)
        self._samplers = SamplerRegistry()
        self._requests: dict[str, _Live] = {}
        # request id -> prompt tokens the scheduler found in the cache (written by the engine thread)
        self._cached: dict[str, int] = {}
        self._release_tasks: set[asyncio.Task[None]] = set()
        on_cpu = model.device.type == "cpu"
        cache_tokens = kv_cache_tokens or (max(CPU_KV_CACHE_TOKENS, max_model_len * 2) if on_cpu else None)
        gen_config = GenerationConfig(
            do_sample=False,  # sampling happens in _SlotSampler, per request, with its own seed
            eos_token_id=sorted(self.eos_token_ids) or None,
            pad_token_id=getattr(tokenizer, "pad_token_id", None),
            max_new_tokens=max_model_len,
        )
        cb_config = ContinuousBatchingConfig(
            page_size=PAGE_SIZE,
            num_blocks=math.ceil(cache_tokens / PAGE_SIZE) if cache_tokens else None,
            max_batch_tokens=max_batch_tokens,
            max_requests_per_batch=max_batch_requests,
            # Python-side sampling cannot live inside a captured graph.
            use_cuda_graph=False,
            use_async_batching=False,
            allow_block_sharing=prefix_cache,
        )
        self._manager = model.init_continuous_batching(
            generation_config=gen_config, continuous_batching_config=cb_config
        )
        # After the manager has checked the model with the library's own attention, which it requires.
        self.attention = choose_attention(model, attention)
        if attention == "varlen" and self.attention != VARLEN:
            log.warning(
                "event=attention_fallback requested=varlen using=%s reason=%r",
                self.attention,
                "sliding windows, attention sinks or soft caps, or a shape the GPU kernel refused",
            )
        processors = ContinuousBatchingLogitsProcessorList(
            LogitsProcessorList([_SlotSampler(self._samplers)])
        )
        processors.tensors_required = 1
        self._manager.logit_processor = processors

    def start(self) -> None:
        self._manager.start()
        # The engine thread builds the batch processor (the cache and the scheduler) as its loop starts;
        # once it has, its prefix lookups can be counted. Built here instead (``manager.warmup()``), the
        # cache would be made outside the loop and every step would be slower: 25-35% fewer tokens/s
        # in process on the demo model at 8 and 32 streams (CPU).
        deadline = time.monotonic() + BATCH_PROCESSOR_WAIT_S
        while self._manager.batch_processor is None and time.monotonic() < deadline:
            if not self._manager.is_running():
                return  # it failed to start: the engine's health check reports it
            time.sleep(0.005)
        if self._manager.batch_processor is None:
            log.warning(
                "the engine built no batch processor in %.0f s: prefix reuse goes uncounted",
                BATCH_PROCESSOR_WAIT_S,
            )
            return
        self._count_cached_prefixes()

    def _count_cached_prefixes(self) -> None:
        """Record, per request, the prompt tokens the scheduler's prefix lookup found in the cache.

        transformers counts nothing itself: its ``search_prefix_match`` returns the length it reused and
        the scheduler skips that many tokens of the prefill. This instance's method is wrapped to keep that
        length; the library's code is not changed.
        """
        bp = self._manager.batch_processor
        cache: Any = getattr(bp, "cache", None)
        self.prefix_caching = bool(getattr(cache, "use_prefix_sharing", False))
        if not self.prefix_caching:
            return
        search = getattr(cache, "search_prefix_match", None)
        if search is None:
            return  # a transformers without this lookup: reuse still works, it just goes uncounted
        cached, live = self._cached, self._requests

        def counted(request_id: str, prompt_ids: list[int]) -> int:
            matched = int(search(request_id, prompt_ids))
            if matched and request_id in live:
                cached[request_id] = matched
            return matched

        cache.search_prefix_match = counted

    def stop(self, timeout: float | None = None) -> None:
        if self._manager.is_running():
            self._manager.stop(block=True, timeout=timeout, hard_stop=True)

    def healthy(self) -> bool:
        status = self._manager.background_thread_status
        return self._manager.is_running() and status.fatal_error is None

    def abort(self, request_id: str) -> None:
        live = self._requests.get(request_id)
        if live is not None:
            live.loop.call_soon_threadsafe(live.outputs.put_nowait, _ABORT)

    def stats(self) -> EngineStats:
        bp = self._manager.batch_processor
        running = len(bp.scheduler.active_requests) if bp is not None else 0
        waiting = self._manager.input_queue.qsize()
        if bp is not None:
            waiting += len(bp.scheduler.waiting_requests)
        mask = self._samplers.mask
        return EngineStats(running, waiting, len(self._requests), mask.tokens, mask.seconds)

    def _in_engine(self, request_id: str) -> bool:
        mgr = self._manager
        # the queues' own locks: the engine thread drains them while we look
        with mgr.cancel_queue.mutex:
            if request_id in mgr.cancel_queue.queue:
                return True
        with mgr.input_queue.mutex:
            if any(s.request_id == request_id for s in mgr.input_queue.queue):
                return True
        bp = mgr.batch_processor
        if bp is None:
            return False
        sched = bp.scheduler
        with sched._cancellation_lock:
            pending_cancel = request_id in sched._requests_to_cancel
        return pending_cancel or request_id in sched.active_requests or request_id in sched.waiting_requests

    def _set_handler(self, request_id: str, callback: Any) -> None:
        router = self._manager.output_router
        with router._lock:
            router.result_handlers[request_id] = (callback, asyncio.get_running_loop())

    def _drop_handler(self, request_id: str) -> None:
        router = self._manager.output_router
        with router._lock:
            router.result_handlers.pop(request_id, None)

    async def _await_release(self, request_id: str) -> None:
        """After a cancel, wait until the scheduler has freed the request's blocks, then forget it."""
        absent = 0
        try:
            while absent < 2 and self._manager.is_running():
                absent = 0 if self._in_engine(request_id) else absent + 1
                await asyncio.sleep(0.01)
        finally:
            # Outputs that raced with the cancel were swallowed by the no-op handler until now.
            self._drop_handler(request_id)
            self._requests.pop(request_id, None)
            self._record_finish(request_id, "cancelled")

    async def generate(
        self, request_id: str, prompt_ids: list[int], params: SamplingParams
    ) -> AsyncIterator[EngineStep]:
        if request_id in self._requests:
            raise EngineError(f"request id {request_id!r} is already running")
        if not self._manager.is_running():
            raise EngineError("the engine is not running")
        outputs: asyncio.Queue[Any] = asyncio.Queue()
        slot = self._samplers.add(params, self.vocab_size)
        sampler = self._samplers.get(slot) if params.logprobs is not None else None
        self._requests[request_id] = _Live(slot, asyncio.get_running_loop(), outputs)
        self._set_handler(request_id, outputs.put_nowait)
        eos = (sorted(self.eos_token_ids) or -1) if params.stops_at_eos else -1
        done = False
        try:
            added = self._manager.add_request(
                list(prompt_ids),
                request_id=request_id,
                max_new_tokens=params.max_new_tokens,
                streaming=True,
                eos_token_id=eos,
                slot=slot,
            )
            if added is None:
                raise EngineError("the engine is not accepting requests")
            sent = 0
            while True:
                out = await outputs.get()
                aborted = out is _ABORT
                # Outputs are cumulative: a consumer that fell behind takes only the newest, as one step.
                while not aborted and not outputs.empty():
                    newer = outputs.get_nowait()
                    if newer is _ABORT:
                        aborted = True
                    else:
                        out = newer
                if out is _ABORT:
                    yield EngineStep([], "cancelled")
                    return  # not done: the finally cancels it in the engine
                if out.error is not None:
                    done = True
                    yield EngineStep([], "error", str(out.error))
                    return
                tokens = out.generated_tokens  # cumulative: take only what is new, not a copy of it all
                first = sent == 0
                new, sent = tokens[sent:], len(tokens)
                reason: FinishReason | None = None
                if out.is_finished():
                    done = True
                    stopped = tokens and params.stops_at_eos and tokens[-1] in self.eos_token_ids
                    reason = "stop" if stopped else "length"
                # the lookup happened before the prefill that produced this first token
                cached = self._cached.pop(request_id, 0) if first else 0
                # the engine thread recorded these tokens' logprobs before it sent them out
                logprobs = sampler.take(len(new)) if sampler is not None else None
                yield EngineStep(new, reason, cached_tokens=cached, logprobs=logprobs)
                if done:
                    return
                if aborted:
                    yield EngineStep([], "cancelled")
                    return
        finally:
            self._samplers.remove(slot)
            self._cached.pop(request_id, None)
            if done:
                self._drop_handler(request_id)
                self._requests.pop(request_id, None)
                self._record_finish(request_id, "finished")
            else:
                self._set_handler(request_id, _ignore)
                self._manager.cancel_request(request_id)
                # The release watch must outlive this generator, which is being closed right now.
                task = asyncio.get_running_loop().create_task(self._await_release(request_id))
                self._release_tasks.add(task)
                task.add_done_callback(self._release_tasks.discard)


def _ignore(_: Any) -> None:
    return None
