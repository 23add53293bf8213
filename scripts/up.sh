#!/usr/bin/env bash
# Starts every tier on 127.0.0.1 in the foreground; Ctrl-C stops them all.
# Called by `make up` after the install steps. Fails fast, with a message, when a port is taken
# or a tier does not come up: never a silent hang.
# Once up, it behaves like production: a model service that exits is started again (with back-off)
# while the gateway degrades without it; the gateway is the front door, so its exit ends the run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

GATEWAY_PORT=${GATEWAY_PORT:-8080}
MODEL_PORT=${MODEL_PORT:-8000}
READY_TIMEOUT=${READY_TIMEOUT:-300}
PY="$ROOT/python-model-service/.venv/bin/python"
JAVA_BIN="${JAVA_RUN_HOME:+$JAVA_RUN_HOME/bin/}java"
# UP_LOG_DIR lets the tests keep their logs apart from a `make up` running beside them.
LOG_DIR=${UP_LOG_DIR:-$ROOT/.run}
mkdir -p "$LOG_DIR"

die() { echo "make up: $*" >&2; exit 1; }

# `wait -n -p`, which tells which tier exited, came with bash 5.1.
((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501)) || die "needs bash 5.1 or newer (this is $BASH_VERSION)"

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

MODEL_LOG="$LOG_DIR/model-service.log"
model_pid="" gateway_pid="" backoff_pid=""
stop_all() {
  trap - INT TERM EXIT
  local pids=($model_pid $gateway_pid $backoff_pid) # unquoted: the ones not running drop out
  if [ ${#pids[@]} -gt 0 ]; then
    echo
    echo "==> stopping"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Ctrl-C reaches the whole process group; the tees ignore it so that the tiers' shutdown lines
# still reach the terminal and the logs. They end when the tier they read from does.
log_to() { trap '' INT; exec tee "$@"; }

# `exec` makes $! the python process itself, so that it is what gets waited on and signalled.
start_model_service() {
  (cd python-model-service && exec "$PY" -m app) > >(log_to -a "$MODEL_LOG") 2>&1 &
  model_pid=$!
  model_started=$SECONDS
}

echo "==> starting the model service on 127.0.0.1:$MODEL_PORT (model: $MODEL_PATH)"
: >"$MODEL_LOG"
start_model_service

echo "==> starting the gateway on 127.0.0.1:$GATEWAY_PORT"
"$JAVA_BIN" -jar java-gateway/target/gateway.jar > >(log_to "$LOG_DIR/gateway.log") 2>&1 &
gateway_pid=$!

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

gateway_exited() { # status
  gateway_pid=""
  die "the gateway exited with status $1; stopping everything (see $LOG_DIR/gateway.log)"
}

# Back-off doubles while the model service keeps failing soon after a start (a crash loop), and
# starts over once a run has lasted long enough to count as healthy.
backoff=1 backoff_max=30 healthy_after=60
while :; do
  wait -n -p exited "$model_pid" "$gateway_pid" && status=0 || status=$?
  [ "$exited" = "$gateway_pid" ] && gateway_exited "$status"
  model_pid=""
  [ $((SECONDS - model_started)) -lt $healthy_after ] || backoff=1
  echo "make up: model service exited with status $status; restarting in ${backoff} s" | tee -a "$MODEL_LOG" >&2

  sleep "$backoff" &
  backoff_pid=$!
  wait -n -p exited "$backoff_pid" "$gateway_pid" && status=0 || status=$?
  [ "$exited" = "$gateway_pid" ] && gateway_exited "$status"
  backoff_pid=""
  backoff=$((backoff * 2 > backoff_max ? backoff_max : backoff * 2))

  echo "==> restarting the model service on 127.0.0.1:$MODEL_PORT"
  start_model_service
done
