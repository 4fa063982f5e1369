"""The integration tier: one real local stack (Tansu + PostgreSQL + services) per session."""

import os
from collections.abc import Iterator

import pytest

from pricestream.stack import Stack
from testsupport import running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the whole stack on free ports once; stop it at the end of the session."""
    # Services inherit the environment. A tripped site defence pauses its host for 30 s; the
    # defence tests trip six in a row on two hosts, and the pause's length is not what they test.
    os.environ.setdefault("SCRAPER_HOST_PAUSE_S", "3")
    with running_stack(tmp_path_factory.mktemp("stack") / ".pricestream", "stack") as stack:
        yield stack
