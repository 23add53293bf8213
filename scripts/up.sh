#!/usr/bin/env bash
# Starts every tier on 127.0.0.1 in the foreground; Ctrl-C stops them all.
# Called by `make up` after the install steps. Fails fast, with a message, when a port is taken
# or a tier does not come up: never a silent hang.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

GATEWAY_PORT=${GATEWAY_PORT:-8080}
MODEL_PORT=${MODEL_PORT:-8000}
READY_TIMEOUT=${READY_TIMEOUT:-300}
PY="$ROOT/python-model-service/.venv/bin/python"
JAVA_BIN="${JAVA_RUN_HOME:+$JAVA_RUN_HOME/bin/}java"
LOG_DIR="$ROOT/.run"
mkdir -p "$LOG_DIR"

die() { echo "make up: $*" >&2; exit 1; }

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_taken "$MODEL_PORT" && die "port $MODEL_PORT (MODEL_PORT) is already in use; stop what runs there or set MODEL_PORT"
port_taken "$GATEWAY_PORT" && die "port $GATEWAY_PORT (GATEWAY_PORT) is already in use; stop what runs there or set GATEWAY_PORT"

# Secrets: taken from the environment; generated for this run when unset (never written to disk).
if [ -z "${MODEL_SERVICE_TOKEN:-}" ]; then
  MODEL_SERVICE_TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')
fi
generated_admin=""
if [ -z "${ADMIN_API_KEY:-}" ]; then
  ADMIN_API_KEY="sk-admin-$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')"
  generated_admin=1
fi
export MODEL_SERVICE_TOKEN ADMIN_API_KEY MODEL_PORT GATEWAY_PORT

if [ -z "${MODEL_PATH:-}" ]; then
  echo "==> MODEL_PATH is unset: using the bundled demo model"
  MODEL_PATH=$(cd python-model-service && "$PY" -m app.demo_model) || die "building the demo model failed"
fi
export MODEL_PATH
export GATEWAY_UPSTREAMS=${GATEWAY_UPSTREAMS:-http://127.0.0.1:$MODEL_PORT}

pids=()
stop_all() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    echo
    echo "==> stopping"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

echo "==> starting the model service on 127.0.0.1:$MODEL_PORT (model: $MODEL_PATH)"
(cd python-model-service && exec "$PY" -m app) > >(tee "$LOG_DIR/model-service.log") 2>&1 &
model_pid=$!
pids+=("$model_pid")

echo "==> starting the gateway on 127.0.0.1:$GATEWAY_PORT"
"$JAVA_BIN" -jar java-gateway/target/gateway.jar > >(tee "$LOG_DIR/gateway.log") 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")

wait_ready() { # name pid url
  local name=$1 pid=$2 url=$3 deadline=$((SECONDS + READY_TIMEOUT))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up; see $LOG_DIR/${name}.log"
    [ $SECONDS -lt $deadline ] || die "$name was not ready after ${READY_TIMEOUT}s; see $LOG_DIR/${name}.log"
    sleep 1
  done
}
wait_ready model-service "$model_pid" "http://127.0.0.1:$MODEL_PORT/ready"
wait_ready gateway "$gateway_pid" "http://127.0.0.1:$GATEWAY_PORT/actuator/health"

echo
echo "=================================================================="
echo " Ready. Open http://127.0.0.1:$GATEWAY_PORT/"
echo " OpenAI-compatible API: http://127.0.0.1:$GATEWAY_PORT/v1"
if [ -n "$generated_admin" ]; then
  echo " Admin API key for this run (set ADMIN_API_KEY to choose one): $ADMIN_API_KEY"
fi
echo " Ctrl-C stops everything."
echo "=================================================================="

# Whichever tier dies first takes the others down with it.
wait -n "${pids[@]}" || true
die "a tier stopped unexpectedly; see the logs in $LOG_DIR"
