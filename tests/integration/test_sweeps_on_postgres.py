"""On PostgreSQL, pages seen whole again fold through sweeps exactly as the same prices one by one.

A sweep moves one row for a page seen again unchanged (servicekit.sweeps). Its rounds here walk
every way a row is held and let go: a first page, the page again unchanged, a price changed
(the held run ends, a new one starts held), a late page, a page with a product more, the
first page again, prices seen over time, the same store twice in a batch. What bargains
shows is compared with the same prices folded one by one (no sweep at all).
"""

import functools
import random
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from bargains import service_layer as bargains
from bargains.domain.bargains import Policy
from bargains.repository import PostgresBargainsRepository
from contracts.events import PriceObservation
from contracts.events.v1 import PricesScrapedPayload
from pricestream.stack import Stack
from tests.integration.test_columns_on_postgres import _Work
from tests.unit.test_price_columns import NOW, _as_columns, _observation
from testsupport import rolled_back

pytestmark = pytest.mark.integration

SHOWN = {"runs": "store_id, *", "price_counts": "sku, *", "bargains": "store_id, *", "flags": "store_id, *"}
"""What bargains shows of a chain's prices, as compared (a sweep's rows as read)."""
CARRIED = """SELECT count(*) FROM history h
             JOIN sweeps s ON s.chain = h.chain AND s.store_id = h.store_id AND s.page = h.sweep
             WHERE h.chain = $1 AND s.seen_at > h.ends_at"""
"""Rows whose last sighting a sweep carries past their own."""
PAGE = [f"p{i}" for i in range(5)]
STORES = ("s1", "s2")


def _page(
    store: str, prices: dict[str, PriceObservation], hours_ago: float, *, late: float = 0
) -> PricesScrapedPayload:
    """A store's page of these prices seen at one moment (`late`: the first half seen that much earlier)."""
    at = NOW - timedelta(hours=hours_ago)
    half = len(prices) // 2
    return PricesScrapedPayload(
        chain="c",
        store_id=store,
        source="scrape",
        observations=tuple(
            o.model_copy(update={"observed_at": at - timedelta(hours=late if i < half else 0)})
            for i, o in enumerate(prices.values())
        ),
    )


class Shelves(dict[str, dict[str, PriceObservation]]):
    """What each store shows, product by product: pages are read off it, prices changed on it."""

    def page(self, store: str, skus: Sequence[str] = PAGE) -> dict[str, PriceObservation]:
        """Return a store's prices of these products."""
        return {sku: self[store][sku] for sku in skus}

    def change(self, store: str, sku: str) -> None:
        """Raise one of a store's prices by 37 cents."""
        old = self[store][sku]
        self[store][sku] = old.model_copy(update={"price_cents": old.price_cents + 37})


def _rounds(seed: int) -> list[list[PricesScrapedPayload]]:
    """Batches of pages that hold, move, end and let go of sweeps."""
    rng = random.Random(seed)
    shelf = Shelves(
        {store: {sku: _observation(rng, sku, NOW) for sku in [*PAGE, "extra"]} for store in STORES}
    )
    page, change = shelf.page, shelf.change
    rounds = [[_page(s, page(s), 144) for s in STORES], [_page(s, page(s), 120) for s in STORES]]
    change("s1", "p1")
    rounds += [[_page(s, page(s), 96) for s in STORES], [_page(s, page(s), 72) for s in STORES]]
    change("s1", "p2")
    rounds.append([_page("s1", page("s1"), 84)])  # late: older than what is held
    rounds.append([_page("s1", page("s1", [*PAGE, "extra"]), 48), _page("s2", page("s2"), 48)])
    rounds.append([_page(s, page(s), 24) for s in STORES])  # s1's first page again
    rounds.append([_page("s1", page("s1"), 20, late=2)])  # seen over time: no sweep
    rounds.append([_page(s, page(s), 12) for s in STORES])
    change("s2", "p0")
    rounds.append([_page("s2", page("s2"), 6), _page("s2", page("s2"), 5)])  # a store twice
    rounds.append([_page(s, page(s), 1) for s in STORES])
    return rounds


async def _shown(chain: str, conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Return what bargains shows of the chain now."""
    return {
        table: sorted(
            (tuple(row) for row in await conn.fetch(f"SELECT {fields} FROM {table} WHERE chain = $1", chain)),
            key=repr,
        )
        for table, fields in SHOWN.items()
    }


async def _folded(chain: str, seed: int, columns: bool, conn: asyncpg.Connection) -> dict[str, Any]:
    """Fold the rounds as rows or as columns; return what bargains shows after each, and rows carried."""
    # One repository for every batch: what it remembers of held rows must stay true between saves.
    work = _Work(PostgresBargainsRepository(conn))
    shown = []
    for batch in _rounds(seed):
        pages = [p.model_copy(update={"chain": chain}) for p in batch]
        pages = [_as_columns(p) for p in pages] if columns else pages
        await bargains.fold_prices(work, pages, now=NOW, policy=Policy())  # type: ignore[arg-type]
        shown.append(await _shown(chain, conn))
    unique = {"event_id", "occurred_at", "correlation_id"}
    return {
        "shown": shown,
        "published": [e.model_dump(exclude=unique) for e in work.published],
        "carried": await conn.fetchval(CARRIED, chain),
    }


@pytest.mark.parametrize("seed", range(3))
async def test_pages_seen_again_fold_through_sweeps_as_prices_one_by_one(stack: Stack, seed: int) -> None:
    chain = f"sweep-{uuid.uuid4().hex[:8]}"
    by_rows, by_columns = [
        await rolled_back(stack, "bargains", functools.partial(_folded, chain, seed, columns))
        for columns in (False, True)
    ]
    for after, (columns, rows) in enumerate(zip(by_columns["shown"], by_rows["shown"], strict=True)):
        assert columns == rows, f"after round {after}"
    assert by_columns["published"] == by_rows["published"]
    assert by_rows["carried"] == 0, "prices one by one are never held"
    assert by_columns["carried"] > 0, "not vacuous: sweeps carried rows' last sightings"
