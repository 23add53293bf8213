"""Fixtures for the cross-tier tests: one real stack for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.stack import Stack, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as s:
        yield s
