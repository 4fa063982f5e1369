"""On PostgreSQL, pages seen again unchanged only move their sweep, and bargains answers as before.

A store's own page seen again with nothing changed reads, folds and writes no run: its sweep
moves, the counts move a column at a time, and only the products a median or another chain
judges (or whose price changed once) are read and reassessed. Over several weeks here: bargains,
flags and a group's member present, a product with several runs, a discount that appears and
ends, a cross-chain bargain that appears, goes and comes back with another chain's price and
expires when that chain goes stale, an outlier against the chain's median, a late page, a store
seen twice in a batch, a page with a product more (whose sweep takes the runs of another's). Then
the same with each store's shelf split over two or three pages sent in one batch, as a scrape
publishes a store's category pages: each page goes its own way (moved, merged or copied in) unless
the store's pages in the batch share a product. What bargains shows and announces is compared,
batch after batch, with the same prices folded one by one (no sweep at all).
"""

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import asyncpg
import pytest

from bargains import service_layer as bargains
from bargains.domain.answering import Run
from bargains.domain.bargains import Policy
from bargains.domain.history import Segment
from bargains.domain.listing import Key
from bargains.repository import PostgresBargainsRepository
from contracts.events import PriceObservation
from contracts.events.v1 import (
    MultiBuy,
    PricesScrapedPayload,
    ProductObservedPayload,
    StoreGroupChangedPayload,
)
from pricestream.stack import Stack
from servicekit.kept_reads import KeptReads
from tests.integration.test_columns_on_postgres import _Work
from tests.integration.test_sweeps_on_postgres import _shown
from tests.unit.test_price_columns import _as_columns
from testsupport import rolled_back

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
POLICY = Policy()
WRITTEN = """SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables
             WHERE relname = 'history'"""
"""History rows this transaction wrote so far."""
STORES = ("s1", "s2", "s3")
MEMBER = "m1"
"""Placed under s1: its prices are s1's but one."""
Shelf = dict[str, tuple[int, int | None]]


def _shelves() -> dict[str, Shelf]:
    """Each store's prices and was prices: s3's p0 a third of the others' (an outlier)."""
    s1: Shelf = {"p0": (500, None), "p1": (400, None), "p2": (250, None), "p3": (300, 350), "p4": (199, None)}
    return {
        "s1": s1,
        "s2": {**s1, "p1": (420, None), "p2": (260, None)},
        "s3": {**s1, "p0": (150, None), "p2": (255, None)},
        MEMBER: {**s1, "p4": (189, None)},
        "o1": {"q2": (400, None)},  # another chain's p2
    }


def _page(chain: str, store: str, shelf: Shelf, days_ago: float) -> PricesScrapedPayload:
    """A store's page of prices, seen at one moment; p3 with a member price, p4 a multi-buy."""
    at = NOW - timedelta(days=days_ago)
    return PricesScrapedPayload(
        chain=chain,
        store_id=store,
        source="scrape",
        observations=tuple(
            PriceObservation(
                sku=sku,
                price_cents=price,
                was_price_cents=was,
                observed_at=at,
                member_price_cents=price - 30 if sku == "p3" else None,
                multibuy=MultiBuy(quantity=2, total_cents=2 * price - 40) if sku == "p4" else None,
            )
            for sku, (price, was) in shelf.items()
        ),
    )


def _rounds(chain: str) -> list[tuple[float, list[list[PricesScrapedPayload]]]]:
    """Days ago and the batches folded then: the chain's own stores, then its member and the other chain."""
    other = f"{chain}-o"
    shelves = _shelves()
    rounds: list[tuple[float, list[list[PricesScrapedPayload]]]] = []

    def seen(days_ago: float, *, other_too: bool = True, together: bool = False) -> None:
        own = [_page(chain, store, dict(shelves[store]), days_ago) for store in STORES]
        rest = [_page(chain, MEMBER, dict(shelves[MEMBER]), days_ago)]
        if other_too:
            rest.append(_page(other, "o1", dict(shelves["o1"]), days_ago))
        # Together, the member's prices are judged against its anchor's as the batch folds them.
        rounds.append((days_ago, [own + rest] if together else [own, rest]))

    days_ago: float
    for days_ago in (40, 39, 37, 34):
        seen(days_ago)
    shelves["o1"]["q2"] = (270, None)  # p2 at 250 to 260 is no longer 10% below the other chain's
    seen(30)
    seen(27)
    shelves["o1"]["q2"] = (400, None)  # and again it is
    for days_ago in (24, 21, 18):
        seen(days_ago)
    shelves["s1"]["p1"] = shelves[MEMBER]["p1"] = (300, None)  # a discount on the regular 400
    for days_ago in (16, 15, 12):  # the other chain stale from here on: its cross-chain bargains expire
        seen(days_ago, other_too=days_ago > 12)
    seen(10, other_too=False)
    seen(8, other_too=False, together=True)  # s1 last seen two days before: only as the batch folds it
    shelves["s1"]["p1"] = shelves[MEMBER]["p1"] = (400, None)  # the discount ends
    shelves["s2"]["p0"] = (520, None)
    for days_ago in (6, 5, 4):
        seen(days_ago, other_too=False)
    rounds.append((4.5, [[_page(chain, "s3", dict(shelves["s3"]), 4.5)]]))  # late: older than its sweep
    twice = [_page(chain, "s2", dict(shelves["s2"]), days) for days in (3.5, 3)]
    more = _page(chain, "s3", {**shelves["s3"], "p5": (99, None)}, 3)  # its runs held by this page's sweep
    rounds.append((3, [[*twice, more]]))  # a store twice in a batch: no sweep keeps what it showed
    for days_ago in (2, 1, 0.5):
        seen(days_ago, other_too=False)
    return rounds


class _Counting(PostgresBargainsRepository):
    """The repository, counting the histories a fold reads and the sweeps it moves."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        super().__init__(conn)
        self.read: list[Key] = []
        self.moved = 0

    async def histories(self, *, chain: str, keys: Sequence[Key]) -> dict[Key, tuple[Segment, ...]]:
        """Count the pairs read, and read them."""
        self.read += keys
        return await super().histories(chain=chain, keys=keys)

    async def move_sweeps(self, *, chain: str, moved: Mapping[tuple[str, int], datetime]) -> None:
        """Count the sweeps moved, and move them."""
        self.moved += len(moved)
        await super().move_sweeps(chain=chain, moved=moved)


class Done(NamedTuple):
    """What folding one batch did: history rows written and read (skus by store), sweeps moved."""

    days_ago: float
    batch: int
    written: int
    read: dict[str, set[str]]
    moved: int


Rounds = list[tuple[float, list[list[PricesScrapedPayload]]]]


async def _folded(
    chain: str, columns: bool, conn: asyncpg.Connection, *, rounds: Callable[[str], Rounds] = _rounds
) -> dict[str, Any]:
    """Fold the rounds as rows or as columns; return what bargains shows and did after each batch."""
    repo = _Counting(conn)
    work = _Work(repo)
    kept: KeptReads[Run] = KeptReads()  # a process's: the anchor's runs kept while its mark stands
    start = NOW - timedelta(days=41)
    await bargains.change_group(
        work,  # type: ignore[arg-type]
        StoreGroupChangedPayload(
            chain=chain, group_id=f"{chain}-g", group_version=1, anchor_store_id="s1",
            member_store_ids=(MEMBER,), reason="formed",
        ),
        now=start,
        policy=POLICY,
    )  # fmt: skip
    for product_chain, sku in ((chain, "p2"), (f"{chain}-o", "q2")):
        await bargains.observe_product(
            work,  # type: ignore[arg-type]
            ProductObservedPayload(
                chain=product_chain,
                sku=sku,
                change="new",
                name="tea",
                barcode="9300000000012",
                observed_at=start,
            ),
            now=start,
            policy=POLICY,
        )
    shown, done = [], []
    for days_ago, batches in rounds(chain):
        now = NOW - timedelta(days=days_ago) + timedelta(hours=1)
        for i, batch in enumerate(batches):
            before, repo.read, repo.moved = await conn.fetchval(WRITTEN), [], 0
            pages = [_as_columns(p) for p in batch] if columns else batch
            await bargains.fold_prices(work, pages, now=now, policy=POLICY, anchor_runs=kept)  # type: ignore[arg-type]
            read: dict[str, set[str]] = {}
            for store, sku in repo.read:
                read.setdefault(store, set()).add(sku)
            done.append(Done(days_ago, i, await conn.fetchval(WRITTEN) - before, read, repo.moved))
            shown.append(await _shown(chain, conn))
    unique = {"event_id", "occurred_at", "correlation_id"}
    return {
        "shown": shown,
        "done": done,
        # A store's changes in an event come in the order bargains read them, which the
        # database does not fix: compared in one order.
        "published": [_in_order(e.model_dump(exclude=unique)) for e in work.published],
        "sweeps": await conn.fetch(
            "SELECT store_id, shelves IS NOT NULL AS kept, lone FROM sweeps WHERE chain = $1 ORDER BY 1",
            chain,
        ),
    }


def _in_order(event: dict[str, Any]) -> dict[str, Any]:
    """Return an event with its payload's changes sorted by bargain and kind."""
    changes = sorted(event["payload"]["changes"], key=lambda c: (c["bargain"]["bargain_id"], c["change"]))
    return {**event, "payload": {**event["payload"], "changes": changes}}


async def test_pages_seen_again_unchanged_move_their_sweep_and_answer_as_prices_one_by_one(
    stack: Stack,
) -> None:
    chain = f"swept-{uuid.uuid4().hex[:8]}"
    by_rows, by_columns = [
        await rolled_back(stack, "bargains", functools.partial(_folded, chain, columns))
        for columns in (False, True)
    ]
    for after, (columns, rows) in enumerate(zip(by_columns["shown"], by_rows["shown"], strict=True)):
        assert columns == rows, f"after batch {after}"
    assert by_columns["published"] == by_rows["published"]
    # Not vacuous: what the rounds go through is there.
    final = by_columns["shown"][-1]
    kinds = {(row[0], row[6]) for shown in by_columns["shown"] for row in shown["bargains"]}
    assert {("s1", "discount"), ("s2", "cross_chain"), ("s3", "cross_chain")} <= kinds
    assert [row[4] for row in final["flags"]] == ["outlier"], "s3's p0 against the chain's median"
    assert len([row for row in final["runs"] if row[0] == "s1" and row[3] == "p1"]) == 3, (
        "its price changed twice"
    )
    announced = [
        change["change"] for event in by_columns["published"] for change in event["payload"]["changes"]
    ]
    assert {"appeared", "expired"} <= set(announced)
    # Each batch of the own stores' pages all seen again unchanged moved their sweeps, wrote no run
    # and read only the histories of products that could list something: of s3, never changed,
    # those a median (p0) or another chain (p2, until it goes stale) judges.
    unchanged = {39, 37, 34, 30, 27, 24, 21, 18, 15, 12, 10, 5, 4, 1, 0.5}
    swept = [done for done in by_columns["done"] if done.batch == 0 and done.days_ago in unchanged]
    assert [(done.moved, done.written) for done in swept] == [(3, 0)] * len(unchanged)
    assert [sorted(done.read.get("s3", ())) for done in swept] == [["p0", "p2"]] * 11 + [["p0"]] * 4
    by_rows_read = [done.read for done in by_rows["done"] if done.batch == 0 and done.days_ago in unchanged]
    assert all(len(read["s3"]) == 5 for read in by_rows_read), "one by one, every history is read"
    assert all(done.moved == 0 for done in by_rows["done"])
    first = by_columns["done"][0]
    # First pages copied in: only the products the chain's median judges are read back.
    assert (first.written, first.read) == (15, {"s1": {"p0"}, "s2": {"p0"}, "s3": {"p0"}})
    assert sorted(tuple(row) for row in by_columns["sweeps"]) == [
        ("s1", True, False),  # its p1 changed
        ("s2", True, False),  # its p0 changed
        ("s3", False, True),  # the page with a product more: its runs are held by the first page's again
        ("s3", True, True),
    ]


async def _with_a_month_archived(
    chain: str, conn: asyncpg.Connection
) -> tuple[list[bool], dict[str, set[str]]]:
    """Fold first pages of a chain with a month in the archive, then the same pages again; return the
    sweeps' `lone` and the histories the second fold read."""
    await conn.execute("INSERT INTO archived_months VALUES ($1, '2025-01-01', now())", chain)
    repo = _Counting(conn)
    work = _Work(repo)
    shelves = _shelves()
    for days_ago in (2, 1):
        pages = [_as_columns(_page(chain, store, shelves[store], days_ago)) for store in ("s2", "s3")]
        repo.read = []
        await bargains.fold_prices(work, pages, now=NOW, policy=POLICY)  # type: ignore[arg-type]
    lone = [row[0] for row in await conn.fetch("SELECT lone FROM sweeps WHERE chain = $1", chain)]
    read: dict[str, set[str]] = {}
    for store, sku in repo.read:
        read.setdefault(store, set()).add(sku)
    return lone, read


async def test_while_a_month_lies_in_the_archive_no_run_a_sweep_holds_counts_as_never_changed(
    stack: Stack,
) -> None:
    """A month restored could put runs before those a sweep holds: their products are read and judged."""
    chain = f"swept-{uuid.uuid4().hex[:8]}"
    lone, read = await rolled_back(stack, "bargains", functools.partial(_with_a_month_archived, chain))
    assert lone == [False, False]
    assert read == {store: set(_shelves()[store]) for store in ("s2", "s3")}


SPLIT = {"s1": (("p0", "p1"), ("p2",), ("p3", "p4")), "s2": (("p0", "p1", "p2"), ("p3", "p4"))}
"""Each store's pages: s1's shelf over three, the others' over two (s3 and s4 as s2)."""


def _pages(
    chain: str, store: str, shelf: Shelf, days_ago: float, *, late: Mapping[int, float] | None = None
) -> list[PricesScrapedPayload]:
    """A store's pages of a shelf, all seen at one moment but those `late` (by page, hours before)."""
    late = late or {}
    return [
        _page(chain, store, {sku: shelf[sku] for sku in skus}, days_ago + late.get(p, 0) / 24)
        for p, skus in enumerate(SPLIT.get(store, SPLIT["s2"]))
    ]


def _several(chain: str) -> Rounds:
    """Days ago and the batches folded then, each of the chain's own stores sending its pages in one."""
    other = f"{chain}-o"
    shelves = _shelves()
    shelves["s4"] = dict(shelves["s2"])
    rounds: Rounds = []

    def seen(
        days_ago: float,
        *,
        other_too: bool = True,
        together: bool = False,
        stores: Sequence[str] = STORES,
        late: Mapping[str, Mapping[int, float]] | None = None,
        instead: Mapping[str, list[PricesScrapedPayload]] | None = None,
    ) -> None:
        own = [
            page
            for store in stores
            for page in (instead or {}).get(store)
            or _pages(chain, store, dict(shelves[store]), days_ago, late=(late or {}).get(store))
        ]
        rest = [_page(chain, MEMBER, dict(shelves[MEMBER]), days_ago)]
        if other_too:
            rest.append(_page(other, "o1", dict(shelves["o1"]), days_ago))
        rounds.append((days_ago, [own + rest] if together else [own, rest]))

    days_ago: float
    for days_ago in (40, 39, 37):  # first pages copied in, then each page seen again unchanged
        seen(days_ago)
    # A store's pages at different moments: each its own way, one older than its sweep by runs.
    seen(34, late={"s2": {1: 5}, "s3": {0: 4 * 24}})
    seen(30, together=True)  # the member judged against its anchor's pages as the batch folds them
    # Pages that share a product (s3's p2), and the same page twice (s2's): those stores by runs.
    s2 = _pages(chain, "s2", dict(shelves["s2"]), 27)
    shared = [
        _page(chain, "s3", {sku: shelves["s3"][sku] for sku in ("p0", "p1", "p2")}, 27),
        _page(chain, "s3", {sku: shelves["s3"][sku] for sku in ("p2", "p3", "p4")}, 27),
    ]
    seen(27, instead={"s2": [s2[0], *_pages(chain, "s2", dict(shelves["s2"]), 27.2)], "s3": shared})
    seen(25)  # their sweeps let go: s2's and s3's pages by runs, keeping again what they show
    shelves["s1"]["p1"] = shelves[MEMBER]["p1"] = (300, None)  # a discount: s1's first page changes
    for days_ago in (24, 21, 18):
        seen(days_ago)
    shelves["s1"]["p1"] = shelves[MEMBER]["p1"] = (400, None)  # the discount ends
    shelves["s2"]["p3"] = (280, 350)  # and s2's second page changes
    seen(15)
    seen(12, other_too=False)  # the other chain stale from here on: its cross-chain bargains expire
    for days_ago in (10, 8):  # a new store's first prices over two pages, one seen 3 hours before
        seen(days_ago, other_too=False, stores=(*STORES, "s4"), late={"s4": {1: 3}})
    for days_ago in (5, 2, 1):
        seen(days_ago, other_too=False, stores=(*STORES, "s4"))
    return rounds


async def test_a_stores_several_pages_in_a_batch_each_take_their_way_and_answer_as_prices_one_by_one(
    stack: Stack,
) -> None:
    chain = f"split-{uuid.uuid4().hex[:8]}"
    by_rows, by_columns = [
        await rolled_back(stack, "bargains", functools.partial(_folded, chain, columns, rounds=_several))
        for columns in (False, True)
    ]
    for after, (columns, rows) in enumerate(zip(by_columns["shown"], by_rows["shown"], strict=True)):
        assert columns == rows, f"after batch {after}"
    assert by_columns["published"] == by_rows["published"]
    # Not vacuous: what the rounds go through is there.
    kinds = {(row[0], row[6]) for shown in by_columns["shown"] for row in shown["bargains"]}
    assert {("s1", "discount"), ("s2", "cross_chain"), ("s3", "cross_chain")} <= kinds
    assert [row[4] for row in by_columns["shown"][-1]["flags"]] == ["outlier"], "s3's p0"
    announced = {c["change"] for event in by_columns["published"] for c in event["payload"]["changes"]}
    assert {"appeared", "expired"} <= announced
    assert all(done.moved == 0 for done in by_rows["done"])
    own = {done.days_ago: done for done in by_columns["done"] if done.batch == 0}
    # (history rows written, sweeps moved) by the batch of the own stores' pages, each day.
    assert {days_ago: (done.written, done.moved) for days_ago, done in own.items()} == {
        40: (15, 0),  # three stores' first prices, 15 over 7 pages: copied in, a row per price
        39: (0, 7),  # every page seen again unchanged: its sweep moves, no row written
        37: (0, 7),
        34: (0, 6),  # s3's first page older than its sweep: by runs, and nothing to write
        30: (1, 5),  # s1 beside its member: its 3 pages by runs (their rows kept held, the member's
        # own p4 written); s2's and s3's 4 pages and the other chain's move
        27: (2, 3),  # s2 sends a page twice, s3 two sharing p2: both by runs (s3's p3, p4 taken by
        # its second page's sweep); s1's pages move
        25: (2, 3),  # their sweeps keep nothing: by runs again (s3's p3, p4 back to their page's)
        24: (3, 6),  # s1's first page changed: p1's run ended and started, p0's end; 6 pages move
        21: (0, 7),
        18: (0, 7),
        15: (6, 5),  # one page of s1 and one of s2 changed, the stores' other pages move
        12: (0, 7),
        10: (5, 7),  # a fourth store's first prices over two pages at two moments: copied in
        8: (0, 9),
        5: (0, 9),
        2: (0, 9),
        1: (0, 9),
    }
    # Pages copied in or moved read only what a median (p0) or another chain (p2, while fresh) judges.
    assert own[40].read == {store: {"p0"} for store in STORES}
    assert own[39].read == {store: {"p0", "p2"} for store in STORES}
    assert own[1].read == {"s1": {"p0", "p1"}, "s2": {"p0", "p3", "p4"}, "s3": {"p0"}, "s4": {"p0"}}
    assert own[27].read["s2"] == own[27].read["s3"] == set(_shelves()["s3"]), "the slow way: all read"
    assert sorted(tuple(row) for row in by_columns["sweeps"]) == [
        ("s1", True, False),  # the page of its p1, changed twice
        ("s1", True, True),
        ("s1", True, True),
        ("s2", True, False),  # the page of its p3
        ("s2", True, True),
        ("s3", False, False),  # the page sharing p2: no sweep keeps what it showed
        ("s3", True, True),
        ("s3", True, True),
        ("s4", True, True),
        ("s4", True, True),
    ]
