"""Request and object ids: unique, not secret.

``uuid.uuid4`` reads the OS's random source on every call, a system call that releases the GIL;
the engine thread then takes the GIL and the event loop waits (up to the interpreter's switch
interval) to get it back. A process-local generator, seeded once from the OS, costs nothing.
"""

from __future__ import annotations

import random
import secrets

_rng = random.Random(secrets.randbits(128))


def random_hex(chars: int = 32) -> str:
    """``chars`` random hex digits."""
    return f"{_rng.getrandbits(chars * 4):0{chars}x}"
