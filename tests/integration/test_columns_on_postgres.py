"""On PostgreSQL, members' pages of columns (judged a column at a time) fold exactly like the same
prices one by one, in every service."""

import functools
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from bargains import service_layer as bargains
from bargains.domain.bargains import Policy
from bargains.repository import PostgresBargainsRepository
from catalogue import service_layer as catalogue
from catalogue.repository import PostgresCatalogueRepository
from contracts import Event
from contracts.events.v1 import PricesScrapedPayload
from grouping import service_layer as grouping
from grouping.repository import PostgresGroupingRepository
from pricestream.stack import Stack
from servicekit.kept_reads import KeptReads
from tests.fakes.grouping import POLICY as GROUPING_POLICY
from tests.unit.test_price_columns import ANCHOR, GROUP, MEMBERS, NOW, _as_columns, _world
from tests.unit.test_price_columns import _seed as seed
from testsupport import rolled_back

pytestmark = pytest.mark.integration

TABLES = {
    "grouping": {
        # The latest prices as read: a sweep may hold a price's last sighting.
        "seen_prices": "store_id, sku, price_cents, was_price_cents, available, observed_at",
        "stores": "store_id, observed, answered_since_check, compared_since_check, changed_since_check",
    },
    "bargains": {
        "runs": "store_id, *",  # the history as read: a sweep may hold a run's last sighting
        "price_counts": "sku, *",
        "bargains": "store_id, *",
        "flags": "store_id, *",
    },
    # The current prices as read: a sweep may hold a price's last sighting.
    "catalogue": {"current_prices": "store_id, *", "history": "store_id, *"},
}
"""What each service keeps of a chain's prices, as compared."""


class _Work:
    """A unit of work over a connection whose transaction the test owns (and rolls back)."""

    def __init__(self, repo: Any) -> None:
        self.repo = repo
        self.published: list[Event] = []

    def publish(self, events: list[Event]) -> None:
        self.published += events


async def _folded(service: str, chain: str, columns: bool, conn: asyncpg.Connection) -> dict[str, Any]:
    """Place the members, fold the world's batches as rows or as columns; return the chain's rows."""
    world = [[batch.model_copy(update={"chain": chain}) for batch in batches] for batches in _world(3)]
    group = GROUP.model_copy(update={"chain": chain})
    if service == "grouping":
        work = _Work(PostgresGroupingRepository(conn))
        for store in (ANCHOR, *MEMBERS):  # a store grouping has not seen cannot be placed
            await work.repo.note_store_prices(
                batches=[_seed(chain, store)], received_at=NOW - timedelta(days=6)
            )
        await work.repo.create_group(group_id=f"{chain}-g1", chain=chain, anchor=ANCHOR, members=MEMBERS)
    elif service == "bargains":
        work = _Work(PostgresBargainsRepository(conn))
        await bargains.change_group(work, group, now=NOW - timedelta(days=6), policy=Policy())  # type: ignore[arg-type]
    else:
        work = _Work(PostgresCatalogueRepository(conn))
        await catalogue.change_group(work, group)  # type: ignore[arg-type]
    kept: KeptReads[Any] = KeptReads()
    for batches in world:
        batch = [_as_columns(b) for b in batches] if columns else batches
        if service == "grouping":
            await grouping.fold_prices(work, batch, now=NOW, policy=GROUPING_POLICY)  # type: ignore[arg-type]
        elif service == "bargains":
            await bargains.fold_prices(work, batch, now=NOW, policy=Policy(), anchor_runs=kept)  # type: ignore[arg-type]
        else:
            await catalogue.fold_prices(work, batch, anchor_shelves=kept)  # type: ignore[arg-type]
    rows = {
        table: sorted(
            (tuple(row) for row in await conn.fetch(f"SELECT {fields} FROM {table} WHERE chain = $1", chain)),
            key=repr,  # rows hold nulls: ordered by their text
        )
        for table, fields in TABLES[service].items()
    }
    unique = {"event_id", "occurred_at", "correlation_id"}
    return rows | {"published": [e.model_dump(exclude=unique) for e in work.published]}


def _seed(chain: str, store: str) -> PricesScrapedPayload:
    return seed(store).model_copy(update={"chain": chain})


@pytest.mark.parametrize("service", sorted(TABLES))
async def test_members_pages_of_columns_fold_like_prices_one_by_one_on_postgres(
    stack: Stack, service: str
) -> None:
    chain = f"cols-{uuid.uuid4().hex[:8]}"
    by_rows, by_columns = [
        await rolled_back(stack, service, functools.partial(_folded, service, chain, columns))
        for columns in (False, True)
    ]
    assert by_columns == by_rows
    kept = by_rows[{"grouping": "seen_prices", "bargains": "runs"}.get(service, "history")]
    assert {row[0] for row in kept} >= {ANCHOR}, "not vacuous: the anchor's prices kept"
    assert any(row[0] in MEMBERS for row in kept), "not vacuous: a member's own price kept"
