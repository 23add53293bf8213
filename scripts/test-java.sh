#!/usr/bin/env bash
# The Java gateway tier of `make test`: `mvn verify` (formatting check + every test), with the
# PostgreSQL and Redis tests run against throwaway servers that the test harness starts and always
# removes (harness/services.py; `make setup-services` installs the servers).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python-model-service/.venv/bin/python}
exec "$PY" -m harness.services -- mvn -B -f java-gateway/pom.xml verify
