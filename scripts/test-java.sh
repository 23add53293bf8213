#!/usr/bin/env bash
# The Java gateway tier of `make test`: `mvn verify` (formatting check + every test), with the
# PostgreSQL and Redis tests run against throwaway servers that the test harness starts and always
# removes (harness/services.py; `make setup-services` installs the servers).
#
# --model-service: the demo model service runs beside them too (`make demo-model` builds it), and
# the tests against the real model service must run (they fail, rather than report themselves not
# run, when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python-model-service/.venv/bin/python}
harness=()
maven=()
for arg in "$@"; do
  case "$arg" in
    --model-service)
      harness+=(--model-service)
      maven+=(-Dgateway.test.model-service.required=true)
      ;;
    *)
      echo "usage: $0 [--model-service]" >&2
      exit 2
      ;;
  esac
done
exec "$PY" -m harness.services "${harness[@]}" -- mvn -B -f java-gateway/pom.xml "${maven[@]}" verify
