"""The integration tier: one real local stack (Tansu + PostgreSQL + services) per session."""

import contextlib
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


SECOND = "second_stack"
_second = contextlib.ExitStack()


@pytest.fixture(scope="session")
def second_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start a second stack for tests that need the shop's stores unplaced, or no other test's dead letters.

    Grouping's tests scrape it first (in file order), then the pipeline page's test poisons it. It
    is brought down after the last of them, not at the session's end: idle, it still costs CPU.
    """
    with _second:
        yield _second.enter_context(
            running_stack(tmp_path_factory.mktemp("second") / ".pricestream", "second stack")
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the second stack's tests one after the other, from where the first of them is."""
    users = [item for item in items if _uses_second(item)]
    if users:
        first = items.index(users[0])
        rest = [item for item in items if not _uses_second(item)]
        items[:] = [*rest[:first], *users, *rest[first:]]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Bring the second stack down once the last test that uses it is done."""
    if _uses_second(item) and (nextitem is None or not _uses_second(nextitem)):
        _second.close()


def _uses_second(item: pytest.Item) -> bool:
    return SECOND in getattr(item, "fixturenames", ())
