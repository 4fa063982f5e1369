"""Readiness follows the broker: not ready while it is down, ready again when it is back."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from contracts import SERVICES
from pricestream.kafka import ensure_topics
from pricestream.stack import Stack
from tests.helpers import running_stack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: this module stops its broker, which would disturb other tests."""
    with running_stack(tmp_path_factory.mktemp("outage") / ".pricestream", "outage stack") as stack:
        yield stack


def _readiness(stack: Stack) -> dict[str, tuple[int, dict[str, bool]]]:
    result = {}
    for name in SERVICES:
        response = httpx.get(f"{stack.service_process(name).url}/health/ready", timeout=10)
        result[name] = (response.status_code, response.json()["checks"])
    return result


def test_ready_turns_off_without_the_broker_and_back_on_with_it(own_stack: Stack) -> None:
    assert all(code == 200 for code, _ in _readiness(own_stack).values())

    own_stack.broker.process.stop(timeout=10)
    assert wait_until(lambda: all(code == 503 for code, _ in _readiness(own_stack).values()), timeout=30), (
        _readiness(own_stack)
    )
    for _, checks in _readiness(own_stack).values():
        assert checks == {"broker": False, "database": True, "migrations": True}
    # The process stays up while it waits for the broker: liveness is not readiness.
    for name in SERVICES:
        assert httpx.get(f"{own_stack.service_process(name).url}/health/live").status_code == 200

    own_stack.broker.start()
    asyncio.run(ensure_topics(own_stack.config.bootstrap_servers))
    assert wait_until(lambda: all(code == 200 for code, _ in _readiness(own_stack).values()), timeout=60), (
        _readiness(own_stack)
    )
