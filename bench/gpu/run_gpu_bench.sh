#!/usr/bin/env bash
# The model-service benchmark (bench/serving_bench.py) on one GPU, in one sitting of about 7 minutes.
#
# Made for a lent GPU machine that has python3 with torch, transformers and tokenizers but no network:
# what the service and `transformers serve` lack travels as wheels in .whl/ (see bench/gpu/README.md).
# Run from the repository root; results go to $OUT (default bench/results/gpu/raw).
#
#   1. installs .whl/*.whl under /tmp: transformers (the service's pinned version) on its own path, the
#      rest (FastAPI, Uvicorn, pydantic, openai, ...) on another;
#   2. smoke test: our engine on the demo model on the GPU; if the pinned transformers fails there,
#      falls back to the machine's own transformers and says so;
#   3. random-0.5b (a random-weight Qwen2 with Qwen2.5-0.5B's body, bf16), then demo: in-process, ours
#      and transformers serve at 1, 8, 32 and 128 streams, interleaved rounds within a time budget.
set -u
START=$(date +%s)
OUT=${OUT:-bench/results/gpu/raw}
TOTAL_S=${TOTAL_S:-430}        # the whole script should end within this many seconds
ROUNDS=${ROUNDS:-5}
LEVELS=${LEVELS:-1,8,32,128}
MODELS=${MODELS:-random-0.5b demo}  # run in this order; the first gets the larger share of the time
REQUESTS=${REQUESTS:-8}             # at least this many requests per level (2 waves at higher levels)
DIAG=${DIAG:-0}                     # 1: first time our engine's steps alone (bench/gpu/profile_step.py)
SMOKE=${SMOKE:-1}                   # 0: trust the pinned transformers (a run on this machine kind passed)
BENCH=${BENCH:-serving}             # serving: bench/serving_bench.py; multiturn: bench/multiturn_bench.py; none
ATTN=${ATTN:-0}                     # 1: first check the varlen attention against the library's (bench/gpu/check_attention.py)
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
elapsed() { echo $(($(date +%s) - START)); }
save_logs() { tar -czf "$OUT/server-logs.tgz" -C bench/results logs 2>/dev/null || true; }
trap save_logs EXIT

export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM=false

{
    echo "date: $(date -u +%FT%TZ)"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
    echo "cpus: $(nproc)"
    echo "python3: $(command -v python3) $(python3 -V 2>&1)"
} | tee "$OUT/env.txt"

echo "== install wheels (t=$(elapsed)s)"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    $(ls .whl/*.whl | grep -v '/transformers-') || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/tf \
    .whl/transformers-*.whl || exit 1

smoke() {
    timeout 120 python3 - <<'EOF'
import asyncio, sys, time
sys.path.insert(0, "python-model-service")
import torch, transformers, fastapi, uvicorn, pydantic, pydantic_settings, starlette, openai, tokenizers
print("versions:", {m.__name__: m.__version__ for m in (torch, transformers, tokenizers, fastapi, uvicorn,
      pydantic, pydantic_settings, starlette, openai)}, "file:", transformers.__file__)
from app.engine import SamplingParams, load_engine
t = time.perf_counter()
engine = load_engine("python-model-service/.cache/demo-model", device="cuda", dtype="bfloat16")
engine.start()
async def go():
    ids = engine.encode_chat([{"role": "user", "content": "你好"}])
    out = []
    async for step in engine.generate("smoke", ids, SamplingParams(max_new_tokens=8, temperature=0.0)):
        out += step.token_ids
    return out
print("smoke tokens:", asyncio.run(go()), f"in {time.perf_counter() - t:.1f}s on", torch.cuda.get_device_name())
engine.stop()
EOF
}

echo "== smoke test with the pinned transformers (t=$(elapsed)s)"
export PYTHONPATH=/tmp/tf:/tmp/site
if [ "$SMOKE" = 1 ] && ! smoke; then
    echo "!! pinned transformers failed on this machine: falling back to its own transformers"
    export PYTHONPATH=/tmp/site
    smoke || { echo "!! smoke test failed with both transformers versions"; exit 1; }
fi
echo "PYTHONPATH=$PYTHONPATH" >> "$OUT/env.txt"

run_model() { # model, budget for the whole bench run (s), hard limit (s)
    echo "== $1: budget $2 s, limit $3 s (t=$(elapsed)s)"
    if [ "$BENCH" = multiturn ]; then
        # 4 conversations of 10 turns under a 1,000-token system prompt; ROUNDS rounds, no budget.
        timeout -s INT -k 20 "$3" python3 bench/multiturn_bench.py --model "$1" --device cuda \
            --dtype bfloat16 --rounds "$ROUNDS" --out "$OUT/multiturn-gpu-$1.json"
        echo "== $1 exited with $? (t=$(elapsed)s)"
        return
    fi
    timeout -s INT -k 20 "$3" python3 bench/serving_bench.py --models "$1" --device cuda --dtype bfloat16 \
        --levels "$LEVELS" --requests "$REQUESTS" --waves 2 --rounds "$ROUNDS" --batch-requests 128 \
        --systems in_process,ours,transformers_serve --demo-dir python-model-service/.cache/demo-model \
        --time-budget "$2" --out "$OUT/gpu-$1.json"
    echo "== $1 exited with $? (t=$(elapsed)s)"
}

if [ "$ATTN" = 1 ]; then
    echo "== varlen attention against the library's (t=$(elapsed)s)"
    timeout -s INT 150 python3 bench/gpu/check_attention.py cuda 2>&1 | grep -v Loading | tee "$OUT/check-attention.txt"
    for attention in varlen library; do
        echo "== our engine alone, ${MODELS%% *}, attention $attention (t=$(elapsed)s)"
        timeout -s INT 120 python3 bench/gpu/profile_step.py "${MODELS%% *}" cuda 128 "$attention" 2>&1 \
            | grep -v Loading | tee -a "$OUT/profile-step-attention.txt"
    done
fi
[ "$BENCH" = none ] && MODELS=""

if [ "$DIAG" = 1 ]; then
    echo "== our engine alone, steps timed (t=$(elapsed)s)"
    timeout -s INT 90 python3 bench/gpu/profile_step.py "${MODELS%% *}" cuda 128 2>&1 | grep -v Loading \
        | tee "$OUT/profile-step.txt"
fi

# The first model (random-0.5b: the one that means something on this GPU) gets 55% of the time left,
# the last all that is left. Each run's budget covers its start-up too; the hard limit (SIGINT, so that
# the servers are stopped) leaves room for one slow round.
set -- $MODELS
while [ $# -gt 0 ]; do
    left=$((TOTAL_S - $(elapsed)))
    if [ "$left" -lt 80 ]; then
        echo "!! no time left for $* ($left s)"
        break
    fi
    if [ $# -gt 1 ]; then
        run_model "$1" $((left * 55 / 100)) $((left * 66 / 100))
    else
        run_model "$1" $((left - 25)) $((left - 5))
    fi
    shift
done
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee -a "$OUT/env.txt"
echo "== done (t=$(elapsed)s)"
