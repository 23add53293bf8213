"""Writes python-model-service/requirements-runtime.lock: the lines of requirements.lock that the model
service needs at run time (pyproject's `dependencies` and what they pull in), without the dev, test
and bench tools. The images install it. Run it after requirements.lock changes::

    python scripts/runtime-lock.py      # (make runtime-lock)

pip resolves pyproject's dependencies with requirements.lock as constraints (a dry run: it downloads
metadata only and installs nothing), so every version is the lock's own.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

SERVICE = Path(__file__).resolve().parent.parent / "python-model-service"
LOCK = SERVICE / "requirements.lock"
RUNTIME_LOCK = SERVICE / "requirements-runtime.lock"
HEADER = """\
# The model service's run-time dependencies: the lines of requirements.lock that pyproject.toml's
# `dependencies` need, nothing for tests, linting or benchmarks. Written by scripts/runtime-lock.py
# (make runtime-lock); the images install it.
"""


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    dependencies = tomllib.loads((SERVICE / "pyproject.toml").read_text())["project"]["dependencies"]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--dry-run",
             "--ignore-installed", "--report", str(report), "-c", str(LOCK), *dependencies],
            check=True,
        )  # fmt: skip
        resolved = {
            normalize(i["metadata"]["name"]): f"{i['metadata']['name']}=={i['metadata']['version']}"
            for i in json.loads(report.read_text())["install"]
        }
    lines = [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    kept = [line for line in lines if normalize(line.split("==", 1)[0]) in resolved]
    # pip freeze leaves setuptools out of requirements.lock; torch needs it: the version pip chose.
    missing = resolved.keys() - {normalize(line.split("==", 1)[0]) for line in kept}
    if missing - {"setuptools"}:
        print(f"runtime-lock: not in requirements.lock: {sorted(missing)}", file=sys.stderr)
        return 1
    kept = sorted(kept + [resolved[name] for name in missing], key=str.lower)
    RUNTIME_LOCK.write_text(HEADER + "\n".join(kept) + "\n")
    print(f"runtime-lock: {len(kept)} of {len(lines)} packages -> {RUNTIME_LOCK.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
