"""The integration tier: one real local stack (Tansu + PostgreSQL + services) per session."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from pricestream.stack import Stack
from tests.helpers import stack_config


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the whole stack on free ports once; stop it at the end of the session."""
    home: Path = tmp_path_factory.mktemp("stack") / ".pricestream"
    stack = Stack(stack_config(home))
    try:
        stack.up(report=lambda line: print(f"[stack] {line}"))
        yield stack
    finally:
        stack.down(report=lambda line: print(f"[stack] {line}"))
