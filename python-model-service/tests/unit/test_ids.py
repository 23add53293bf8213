import re

from app.core.ids import random_hex


def test_ids_are_hex_of_the_asked_length_and_do_not_repeat() -> None:
    ids = [random_hex() for _ in range(20_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert re.fullmatch(r"[0-9a-f]{8}", random_hex(8))
