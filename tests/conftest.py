"""Fixtures for the cross-tier tests: one real stack for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import Stack, running_stack


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-images",
        action="store_true",
        help="run test_images.py: the compose stack from the built images (make test-images)",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # The image tests need podman and the built images, and take many minutes: make test-images.
    if collection_path.name == "test_images.py" and not config.getoption("--run-images"):
        return True
    return None


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as s:
        yield s
