"""On PostgreSQL, the catalogue folds pages seen whole through sweeps exactly as the same prices one by one.

A page seen again unchanged moves one sweep row instead of every current price's last sighting,
and a store's first page is copied in from its columns. The rounds (tests/unit/test_catalogue_pages.py)
walk every way a price is held and let go: a first page, the page again unchanged (and at the
same moment), a price changed, a late page, a page with a product more, a page seen over time,
another label at the same moment, the same store twice in a batch, a member's page, a group
formed and dissolved. What the catalogue answers (current prices with their last sighting, history
runs, the queries' answers) is compared with the same prices folded one by one (no sweep at all).
"""

import functools
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from catalogue.queries import CatalogueQueries
from catalogue.repository import PostgresCatalogueRepository
from contracts.events.v1 import StoreGroupChangedPayload
from pricestream.stack import Stack
from tests.integration.test_columns_on_postgres import _Work
from tests.unit.test_catalogue_pages import (
    MEMBERS,
    NOW,
    PAGE,
    SHEET_STORES,
    SHEETS,
    STORES,
    Step,
    fold_rounds,
    page_rounds,
    sweep_rounds,
)
from testsupport import rolled_back

pytestmark = pytest.mark.integration

SHOWN = {"current_prices": "store_id, *", "history": "store_id, *"}
"""What the catalogue keeps of a chain's prices, as read (a sweep's prices with its last sighting)."""
CARRIED = """SELECT count(*) FROM prices p
             JOIN sweeps s ON s.chain = p.chain AND s.store_id = p.store_id AND s.page = p.sweep
             WHERE p.chain = $1 AND s.seen_at > p.observed_at"""
"""Prices whose last sighting a sweep carries past their own."""
WRITTEN = """SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables
             WHERE schemaname = current_schema() AND relname = 'prices'"""
"""Rows of current prices this transaction wrote so far."""


def _on_chain(chain: str, rounds: list[Step]) -> list[Step]:
    return [
        step.model_copy(update={"chain": chain})
        if isinstance(step, StoreGroupChangedPayload)
        else [page.model_copy(update={"chain": chain}) for page in step]
        for step in rounds
    ]


async def _folded(
    chain: str,
    rounds: list[Step],
    stores: list[str],
    skus: list[str],
    columns: bool,
    conn: asyncpg.Connection,
) -> dict[str, Any]:
    """Fold the rounds as rows or as columns; return what the catalogue shows after each, and what
    it answers of these stores and products at the end."""
    work = _Work(PostgresCatalogueRepository(conn))
    shown: list[dict[str, list[tuple[Any, ...]]]] = []
    written: list[int] = []

    async def each() -> None:
        shown.append(
            {
                table: sorted(
                    (
                        tuple(r)
                        for r in await conn.fetch(f"SELECT {fields} FROM {table} WHERE chain = $1", chain)
                    ),
                    key=repr,
                )
                for table, fields in SHOWN.items()
            }
        )
        written.append(await conn.fetchval(WRITTEN) - sum(written))

    await fold_rounds(work, _on_chain(chain, rounds), columns=columns, each=each)
    queries = CatalogueQueries(conn, fresh_after=NOW - timedelta(days=30))
    answered = {
        "answers": sorted(
            (a.store_id, a.price) for a in await queries.answers(chain=chain, store_ids=stores, skus=skus)
        ),
        "cheapest": await queries.cheapest([(chain, sku) for sku in skus]),
        "history": [await queries.history(chain=chain, sku=sku, store_ids=stores) for sku in skus],
        "export": (
            await queries.export_page(chain=chain, store_id=None, observed_since=None, after=None, limit=100)
        ).prices_json,
        "counts": await queries.store_counts(chain=chain),
    }
    return {
        "shown": shown,
        "written": written,
        "answered": answered,
        "carried": await conn.fetchval(CARRIED, chain),
    }


@pytest.mark.parametrize("seed", range(3))
async def test_pages_fold_through_the_catalogues_sweeps_as_prices_one_by_one(stack: Stack, seed: int) -> None:
    chain = f"csweep-{uuid.uuid4().hex[:8]}"
    fold = functools.partial(_folded, chain, sweep_rounds(seed), [*STORES, *MEMBERS], [*PAGE, "extra"])
    by_rows, by_columns = [
        await rolled_back(stack, "catalogue", functools.partial(fold, columns)) for columns in (False, True)
    ]
    for after, (columns, rows) in enumerate(zip(by_columns["shown"], by_rows["shown"], strict=True)):
        assert columns == rows, f"after round {after}"
    assert by_columns["answered"] == by_rows["answered"]
    assert by_rows["carried"] == 0, "prices one by one are never held"
    assert by_columns["carried"] > 0, "not vacuous: sweeps carried prices' last sightings"
    # The fast ways are taken: a page seen again unchanged writes no price, and pages one by one do.
    prices = len(PAGE) * (len(STORES) + len(MEMBERS))
    assert by_columns["written"][:3] == [prices, 0, 0], "first pages copied, then only their sweeps moved"
    assert by_rows["written"][1] == prices, "one by one, the same prices again rewrite each"


@pytest.mark.parametrize("seed", range(2))
async def test_several_pages_of_a_store_in_one_batch_each_take_their_way(stack: Stack, seed: int) -> None:
    chain = f"cpages-{uuid.uuid4().hex[:8]}"
    skus = [sku for name in SHEETS for sku in SHEETS[name]]
    fold = functools.partial(_folded, chain, page_rounds(seed), list(SHEET_STORES), skus)
    by_rows, by_columns = [
        await rolled_back(stack, "catalogue", functools.partial(fold, columns)) for columns in (False, True)
    ]
    for after, (columns, rows) in enumerate(zip(by_columns["shown"], by_rows["shown"], strict=True)):
        assert columns == rows, f"after round {after}"
    assert by_columns["answered"] == by_rows["answered"]
    assert by_columns["carried"] > 0, "not vacuous: sweeps carried prices' last sightings"
    # Each page of a store takes its own way (tests/unit/test_catalogue_pages.py, page_rounds):
    # nine pages of four stores, four products each.
    first = 9 * 4
    assert by_rows["written"][1] == first, "one by one, the same prices again rewrite each"
    written = by_columns["written"]
    assert written[0] == first, "new stores' pages copied in, two or three at once"
    assert written[1] == 0, "every page of a store unchanged: only their sweeps moved"
    assert written[2] == 2 * 4, "one page of s1 and one of s2 changed: their rows merged, not the rest"
    assert written[3] == 0, "a store's pages at different moments: each sweep moved to its own"
    assert written[5] == 4, "a store's new page merged beside its pages unchanged"
    assert written[6] == 2 * 4, "s1's pages sharing a product merged as one by one, s2's pages moved"
    assert written[7] == 2 * 4, "the pages s1 wrote one by one held again, its third page moved"
    assert written[8] == 0, "and all three moved"
