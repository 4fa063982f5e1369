"""On PostgreSQL, grouping folds pages seen whole again through sweeps exactly as prices one by one.

A page seen again unchanged moves its sweep only (servicekit.sweeps); every reader takes a held
price's last sighting from it. The rounds (the bargains sweep test's, plus an anchor with a
member) walk every way a row is held and let go; what grouping shows after each (its prices as
read, its stores' counts, a health check's comparison) is compared with the same prices folded
one by one, which no sweep ever holds.
"""

import functools
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from contracts.events.v1 import PricesScrapedPayload
from grouping import service_layer
from grouping.repository import PostgresGroupingRepository
from pricestream.stack import Stack
from tests.fakes.grouping import POLICY
from tests.integration.test_columns_on_postgres import _Work
from tests.integration.test_sweeps_on_postgres import _rounds
from tests.unit.test_price_columns import NOW, _as_columns
from testsupport import rolled_back

pytestmark = pytest.mark.integration

SHOWN = {
    "seen_prices": "store_id, sku, price_cents, was_price_cents, available, observed_at",
    "stores": "store_id, observed, last_observed_at, answered_since_check, compared_since_check, "
    "changed_since_check",
}
"""What grouping shows of a chain's prices, as compared (a sweep's rows as read)."""
CARRIED = """SELECT count(*) FROM latest_prices p
             JOIN sweeps s ON s.chain = p.chain AND s.store_id = p.store_id AND s.page = p.sweep
             WHERE p.chain = $1 AND s.seen_at > p.observed_at"""
"""Rows whose last sighting a sweep carries past their own."""
UPDATED = "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'latest_prices'"
"""Rows of latest prices updated by this transaction so far."""


async def _shown(chain: str, repo: PostgresGroupingRepository, conn: asyncpg.Connection) -> dict[str, Any]:
    """Return what grouping shows of the chain now, and how its anchor's member compares."""
    shown: dict[str, Any] = {
        table: sorted(
            (tuple(row) for row in await conn.fetch(f"SELECT {fields} FROM {table} WHERE chain = $1", chain)),
            key=repr,
        )
        for table, fields in SHOWN.items()
    }
    shown["compared"] = await repo.compare(
        chain=chain, store_id="m1", anchor="s1", since=NOW - timedelta(days=7)
    )
    return shown


def _seen(page: PricesScrapedPayload, hours_ago: float, *, change: bool = False) -> PricesScrapedPayload:
    """Return a page seen hours ago (with its first price changed)."""
    at = NOW - timedelta(hours=hours_ago)
    shown = [o.model_copy(update={"observed_at": at}) for o in page.observations]
    if change:
        shown[0] = shown[0].model_copy(update={"price_cents": shown[0].price_cents + 11})
    return page.model_copy(update={"observations": tuple(shown)})


def _halves(
    page: PricesScrapedPayload, hours_ago: float, *, change: bool = False, later: float = 0
) -> list[PricesScrapedPayload]:
    """Return a page seen hours ago as two pages of its first products and the rest (the second
    seen `later` hours after the first, its first price changed if asked)."""
    seen = _seen(page, hours_ago)
    half = len(seen.observations) // 2
    first = seen.model_copy(update={"observations": seen.observations[:half]})
    rest = seen.model_copy(update={"observations": seen.observations[half:]})
    return [first, _seen(rest, hours_ago - later, change=change)]


async def _folded(chain: str, seed: int, columns: bool, conn: asyncpg.Connection) -> dict[str, Any]:
    """Fold the rounds as rows or as columns; return what grouping shows after each, and rows carried."""
    repo = PostgresGroupingRepository(conn)
    work = _Work(repo)
    rounds = _rounds(seed)

    def with_member(batch: list[PricesScrapedPayload], hours_ago: float) -> list[PricesScrapedPayload]:
        """Return the batch seen hours ago, s1's page seen by its member m1 too."""
        pages = [_seen(p, hours_ago) for p in batch]
        return [*pages, *(p.model_copy(update={"store_id": "m1"}) for p in pages if p.store_id == "s1")]

    # m1 is priced alone first, then as s1's member with s1's page unchanged, more than the
    # anchor lag after s1's last sighting: only s1's newest rows of the same batch answer it.
    rounds[0] = with_member(rounds[0], 144)
    rounds[1] = with_member(rounds[1], 100)
    # Then each store's page as two pages of one batch, as a scrape's category pages come: both
    # new, both unchanged, one of them changed, seen at two moments, and two that share a product.
    last = rounds[-1]
    rounds += [
        [half for p in last for half in _halves(p, 0.9)],
        [half for p in last for half in _halves(p, 0.8)],
        [half for p in last for half in _halves(p, 0.7, change=p.store_id == "s2")],
        [half for p in last for half in _halves(p, 0.6, later=0.1)],
        [*(_seen(p, 0.4) for p in last), *(_halves(p, 0.4)[1] for p in last)],
    ]
    shown, updated, carried = [], [], []
    for number, batch in enumerate(rounds):
        pages = [p.model_copy(update={"chain": chain}) for p in batch]
        pages = [_as_columns(p) for p in pages] if columns else pages
        before = await conn.fetchval(UPDATED) or 0
        await service_layer.fold_prices(work, pages, now=NOW, policy=POLICY)  # type: ignore[arg-type]
        updated.append((await conn.fetchval(UPDATED) or 0) - before)
        if number == 0:
            await repo.create_group(group_id=f"{chain}-g", chain=chain, anchor="s1", members=["m1"])
        shown.append(await _shown(chain, repo, conn))
        carried.append(await conn.fetchval(CARRIED, chain))
    return {"shown": shown, "carried": carried, "updated": updated}


@pytest.mark.parametrize("seed", range(3))
async def test_pages_seen_again_fold_through_grouping_sweeps_as_prices_one_by_one(
    stack: Stack, seed: int
) -> None:
    chain = f"gsweep-{uuid.uuid4().hex[:8]}"
    by_rows, by_columns = [
        await rolled_back(stack, "grouping", functools.partial(_folded, chain, seed, columns))
        for columns in (False, True)
    ]
    for after, (columns, rows) in enumerate(zip(by_columns["shown"], by_rows["shown"], strict=True)):
        assert columns == rows, f"after round {after}"
    assert not any(by_rows["carried"]), "prices one by one are never held"
    assert any(by_columns["carried"]), "not vacuous: sweeps carried rows' last sightings"
    # The fourth round sees every page of the third again unchanged, and so does the second of
    # the rounds of two pages a store: no price row is written.
    assert by_columns["updated"][3] == 0 < by_rows["updated"][3]
    assert by_columns["updated"][-4] == 0 < by_rows["updated"][-4]
