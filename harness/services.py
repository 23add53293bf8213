"""Runs a command beside throwaway PostgreSQL and Redis servers started by the harness, with their
addresses in its environment; both servers are removed when it ends, however it ends::

    python -m harness.services -- mvn -B -f java-gateway/pom.xml verify

The command sees ``GATEWAY_TEST_PG_URL``, ``GATEWAY_TEST_PG_USER``, ``GATEWAY_TEST_PG_PASSWORD`` and
``GATEWAY_TEST_REDIS_URL``: the gateway's PostgreSQL and Redis tests read them.
"""

from __future__ import annotations

import os
import subprocess
import sys

from harness.stack import MissingBinaryError, Stack


def main(argv: list[str]) -> int:
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command:
        print("usage: python -m harness.services -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    try:
        with Stack() as stack:
            postgres, redis = stack.add_postgres(), stack.add_redis()
            print(f"==> services: PostgreSQL on {postgres.jdbc_url}, Redis on {redis.redis_url}", flush=True)
            env = {
                "GATEWAY_TEST_PG_URL": postgres.jdbc_url,
                "GATEWAY_TEST_PG_USER": postgres.user,
                "GATEWAY_TEST_PG_PASSWORD": postgres.password,
                "GATEWAY_TEST_REDIS_URL": redis.redis_url,
            }
            return subprocess.call(command, env={**os.environ, **env})
    except MissingBinaryError as e:
        print(f"services: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
