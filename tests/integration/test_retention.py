"""Topic retention comes from the registry and is applied when the stack creates its topics."""

import asyncio

import pytest

from contracts import TOPICS
from contracts.registry import DAY_MS
from pricestream.kafka import retention_held, topic_retention
from pricestream.stack import Stack

pytestmark = pytest.mark.integration


def test_every_topic_and_dlq_is_created_with_the_registrys_retention(stack: Stack) -> None:
    wanted = topic_retention()
    assert set(wanted) == {name for spec in TOPICS for name in (spec.name, spec.dlq)}
    assert wanted["prices.scraped.v1"] == 7 * DAY_MS
    assert wanted["groups.changed.v1"] == 30 * DAY_MS
    assert all(wanted[spec.dlq] >= wanted[spec.name] for spec in TOPICS)

    # The local broker records each topic's setting (it does not enforce it: docs/operations.md).
    held = asyncio.run(retention_held(stack.config.bootstrap_servers, sorted(wanted)))
    assert held == wanted
