#!/usr/bin/env bash
# The Java gateway tier of `make test`: `mvn verify` (formatting check + every test), with the
# PostgreSQL and Redis tests run against throwaway servers started here and always removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "test-java: PostgreSQL server binaries not found under /usr/lib/postgresql" >&2
  echo "test-java: install them with: scripts/apt-install.sh postgresql" >&2
  exit 1
fi

redis_bin=$(command -v redis-server || true)
if [ -z "$redis_bin" ]; then
  echo "test-java: redis-server not found; install it with: scripts/apt-install.sh redis-server" >&2
  exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gateway-pg.XXXXXX")
# initdb refuses to run as root: the cluster belongs to the postgres user when we are root.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$tmp"
  as_pg=(runuser -u postgres --)
fi

cleanup() {
  if [ -f "$tmp/redis.pid" ]; then
    kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true
  fi
  if [ -f "$tmp/data/postmaster.pid" ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
printf '%s\n' "$password" > "$tmp/pwfile"
[ "${#as_pg[@]}" -gt 0 ] && chown postgres: "$tmp/pwfile"

echo "==> test-java: starting a throwaway PostgreSQL ($("$pg_bin/postgres" --version)) on 127.0.0.1:$port"
"${as_pg[@]}" "$pg_bin/initdb" -D "$tmp/data" -U gateway --pwfile="$tmp/pwfile" \
  --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$tmp/initdb.log" 2>&1 \
  || { cat "$tmp/initdb.log" >&2; exit 1; }
rm -f "$tmp/pwfile"
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $tmp -c fsync=off -c full_page_writes=off" start >/dev/null \
  || { cat "$tmp/server.log" >&2; exit 1; }
PGPASSWORD="$password" "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U gateway gateway

redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "==> test-java: starting a throwaway Redis ($("$redis_bin" --version | cut -d' ' -f3)) on 127.0.0.1:$redis_port"
"$redis_bin" --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --daemonize yes \
  --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log" --dir "$tmp"
for _ in $(seq 50); do
  [ -f "$tmp/redis.pid" ] && break
  sleep 0.1
done
export GATEWAY_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"

export GATEWAY_TEST_PG_URL="jdbc:postgresql://127.0.0.1:$port/gateway"
export GATEWAY_TEST_PG_USER=gateway
export GATEWAY_TEST_PG_PASSWORD="$password"

echo "==> test-java: mvn verify"
mvn -B -f java-gateway/pom.xml verify
