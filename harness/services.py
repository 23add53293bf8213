"""Runs a command beside throwaway PostgreSQL and Redis servers started by the harness, with their
addresses in its environment; every server is removed when it ends, however it ends::

    python -m harness.services [--model-service] -- mvn -B -f java-gateway/pom.xml verify

The command sees ``GATEWAY_TEST_PG_URL``, ``GATEWAY_TEST_PG_USER``, ``GATEWAY_TEST_PG_PASSWORD`` and
``GATEWAY_TEST_REDIS_URL``: the gateway's PostgreSQL and Redis tests read them. With
``--model-service`` the demo model service runs too (started at once, without waiting: it warms up
while the command builds), at ``GATEWAY_TEST_MODEL_URL`` with the internal token
``GATEWAY_TEST_MODEL_TOKEN``; the gateway's tests against the real model service wait for its
``/ready``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from harness.stack import MissingBinaryError, Stack


def main(argv: list[str]) -> int:
    if "--" in argv:
        at = argv.index("--")
        options, command = argv[:at], argv[at + 1 :]
    else:
        options, command = [], argv
    parser = argparse.ArgumentParser(prog="python -m harness.services")
    parser.add_argument(
        "--model-service", action="store_true", help="also run the demo model service for the command"
    )
    args = parser.parse_args(options)
    if not command:
        print("usage: python -m harness.services [--model-service] -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    try:
        with Stack() as stack:
            env: dict[str, str] = {}
            model = None
            if args.model_service:
                model = stack.add_model_service(wait=False)
                env |= {"GATEWAY_TEST_MODEL_URL": model.url, "GATEWAY_TEST_MODEL_TOKEN": model.token}
                print(f"==> services: the demo model service on {model.url} (warming up)", flush=True)
            postgres, redis = stack.add_postgres(), stack.add_redis()
            print(f"==> services: PostgreSQL on {postgres.jdbc_url}, Redis on {redis.redis_url}", flush=True)
            env |= {
                "GATEWAY_TEST_PG_URL": postgres.jdbc_url,
                "GATEWAY_TEST_PG_USER": postgres.user,
                "GATEWAY_TEST_PG_PASSWORD": postgres.password,
                "GATEWAY_TEST_REDIS_URL": redis.redis_url,
            }
            status = subprocess.call(command, env={**os.environ, **env})
            if status != 0 and model is not None and not model.alive():
                print(f"services: the model service exited early:\n{model.output(4000)}", file=sys.stderr)
            return status
    except MissingBinaryError as e:
        print(f"services: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
