"""Puts the repository root on sys.path, so that a bench script can import the shared harness (harness/).

Imported for that effect alone, before the harness: ``import harness_path  # noqa: F401``.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(1, ROOT)  # after the script's own folder, so that bench modules come first
