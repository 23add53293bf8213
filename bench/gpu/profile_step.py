"""Where a decoding step's time goes: our engine alone (no server beside it), with its model's forward
calls timed from the engine thread.

Run: ``python bench/gpu/profile_step.py MODEL [DEVICE [BATCH_REQUESTS [ATTENTION]]]``, MODEL a folder
or a recipe name of serving_bench.py, ATTENTION one of MODEL_ATTENTION's values (auto, varlen,
library). For 1, 8 and 32 streams it prints tokens/s and inter-token latency, the number of decoder
forward calls (one per engine step), their mean wall time as the engine thread sees it (launching the
kernels; the GPU runs behind it) and the share of the run spent inside them.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

from loadgen import summarize  # noqa: E402
from serving_bench import RANDOM_MODELS, SERVICE, in_process_load, random_model  # noqa: E402

sys.path.insert(0, str(SERVICE))


def main() -> int:
    import torch
    from app.engine import load_engine

    model_dir, device = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "cuda"
    if model_dir in RANDOM_MODELS:  # a recipe name: built (once) from the demo model's tokenizer
        model_dir = str(random_model(SERVICE / ".cache" / "demo-model", model_dir))
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    attention = sys.argv[4] if len(sys.argv) > 4 else "auto"
    dtype = "bfloat16" if device == "cuda" else "auto"
    engine = load_engine(
        model_dir,
        device=device,
        dtype=dtype,
        max_batch_requests=batch,
        max_batch_tokens=2048,
        attention=attention,  # type: ignore[arg-type]
    )
    calls: list[float] = []
    # The decoder stack (not the top-level model, whose forward signature transformers inspects).
    inner = getattr(engine.model, "model", engine.model)
    forward = inner.forward

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return forward(*args, **kwargs)
        finally:
            calls.append(time.perf_counter() - t)

    inner.forward = timed
    engine.start()
    try:
        asyncio.run(in_process_load(engine, 8, 8, 8))  # warm-up
        for c in (1, 8, 32):
            calls.clear()
            traces, wall = asyncio.run(in_process_load(engine, max(4, 2 * c), c, 32))
            s = summarize(traces, wall)
            n, busy = len(calls), sum(calls)
            print(
                f"alone c={c:<3} tokens/s={s['tokens_per_s']:<8} itl_p50_ms={s['itl_p50_ms']:<7} "
                f"steps={n:<4} step_ms={wall * 1000 / max(n, 1):<7.1f} "
                f"forward_ms={busy * 1000 / max(n, 1):<6.1f} "
                f"forward_share={busy / wall:.2f}",
                flush=True,
            )
        attn = engine.attention
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, attention {attn}")
    finally:
        engine.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
