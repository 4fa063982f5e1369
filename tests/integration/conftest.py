"""The integration tier: one real local stack (Tansu + PostgreSQL + services) per session."""

from collections.abc import Iterator

import pytest

from pricestream.stack import Stack
from testsupport import running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the whole stack on free ports once; stop it at the end of the session."""
    with running_stack(tmp_path_factory.mktemp("stack") / ".pricestream", "stack") as stack:
        yield stack
