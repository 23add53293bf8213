"""Runs the scale-out setup (``Stack.add_replicas``: nginx in front of two gateways sharing PostgreSQL
and Redis, two model services) for a test written in another language, until its standard input
closes or it gets SIGTERM; then stops every process::

    python -m harness.scale --logs DIR

Once everything is ready it prints one JSON line: ``url`` (nginx), ``gateways`` (each gateway's own
URL) and ``adminKey``. The processes' logs go to DIR and stay; their state goes with them. A caller
that dies closes the pipe, so nothing outlives it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from harness.stack import MissingBinaryError, Stack


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, required=True, help="folder for the processes' logs")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    try:
        with Stack(logs=args.logs) as stack:
            replicas = stack.add_replicas()
            ready = {
                "url": replicas.balancer.url,
                "gateways": [g.url for g in replicas.gateways],
                "adminKey": stack.admin_key,
            }
            print(json.dumps(ready), flush=True)
            sys.stdin.read()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping already: nothing may cut it short
    except MissingBinaryError as e:
        print(f"scale: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _stop(signum: int, frame: object) -> None:
    """SIGTERM leaves the stack's block as an exception would, so that every process is stopped; a
    second one is ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(128 + signum)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
