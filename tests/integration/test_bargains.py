"""Bargains against the simulated world's ground truth, fed day by day through ingest, and their SQL.

These tests share the session's stack. The first ones feed the first store of every zone the
simulated days 0 to 16 as times of the past 16 days, under a chain of their own (the shop's
chain with `OWN` after it): a scrape of the storefront by another test, before them on the
same stack, prices the shop's chains now, and would make every older day's sighting a late one.
"""

import asyncio
import functools
import os
import random
import signal
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from bargains import service_layer
from bargains.domain.answering import Run
from bargains.domain.bargains import Policy, median
from bargains.domain.history import PriceMove, Segment, SoldBy, fold
from bargains.repository import BargainsRepository, PostgresBargainsRepository
from bargains.settings import BargainsSettings
from contracts import CODEC, ContractError, Event, topic
from contracts.events import BargainsChanged, PriceObservation, PricesScraped
from contracts.events.v1 import (
    PricesScrapedPayload,
    ProductObservedPayload,
    StoreGroupChangedPayload,
    Substitute,
    SubstitutionsChangedPayload,
)
from pricestream.stack import Stack
from servicekit.kept_reads import KeptReads
from servicekit.metrics import processed_counts
from servicekit.unit_of_work import Work
from tests.fakes.bargains import ANSWERED_BY_S1, InMemoryBargainsRepository, prices_of
from tests.fakes.unit_of_work import FakeUnitOfWork
from testsupport import rolled_back, wait_until

pytestmark = pytest.mark.integration

LAST_DAY = 16
OWN = "-bg"
"""What these tests' chains add to the shop's: theirs alone, whatever else prices the shop's."""
PRICES = topic("prices.scraped.v1")
E = TypeVar("E", bound=Event)
T = TypeVar("T")


@pytest.fixture(scope="module")
def zones(stack: Stack) -> dict[tuple[str, str], str]:
    """Return (chain, store) -> zone for the first store of every zone, under these tests' chains."""
    chains = httpx.get(f"{stack.config.storefront_url}/_truth/zones").json()["chains"]
    first: dict[tuple[str, str], str] = {}
    for chain, stores in chains.items():
        for store, zone in sorted(stores.items()):
            if zone not in {z for (c, _), z in first.items() if c == chain + OWN}:
                first[(chain + OWN, store)] = zone
    return first


def _day_time(day: int) -> datetime:
    """Map a simulated day to a real time: the last day is one hour ago."""
    last = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return last - timedelta(days=LAST_DAY - day)


def _ingest(
    stack: Stack,
    chain: str,
    store: str,
    day: int,
    *,
    as_store: str | None = None,
    later: timedelta = timedelta(),
) -> int:
    rows = _shelf(stack.config.storefront_url, chain.removesuffix(OWN), day)
    at = (_day_time(day) + later).isoformat()
    body = {
        "chain": chain,
        "store_id": as_store or store,
        "rows": [
            {
                "sku": r["sku"],
                "price_cents": r["price_cents"],
                "was_price_cents": r["was_price_cents"],
                "available": r["available"],
                "observed_at": at,
            }
            for r in rows
            if r["store_id"] == store
        ],
    }
    response = httpx.post(
        f"{stack.service_process('scraper').url}/v1/observations",
        json=body,
        headers={"Authorization": f"Bearer {stack.ingest_token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return int(response.json()["events"])


@functools.cache
def _shelf(shop: str, chain: str, day: int) -> list[dict[str, Any]]:
    """Return a chain's shelf prices at every store on a day, asked of the shop once (they never change)."""
    params: dict[str, Any] = {"chain": chain, "day": day}
    body = httpx.get(f"{shop}/_truth/prices", params=params, timeout=30).json()
    rows: list[dict[str, Any]] = body["prices"]
    return rows


def _all_bargains(stack: Stack, **params: Any) -> list[dict[str, Any]]:
    url = f"{stack.service_process('bargains').url}/v1/bargains"
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = httpx.get(url, params={**params, "limit": 25, **({"cursor": cursor} if cursor else {})}).json()
        found += body["bargains"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def _settled(stack: Stack, events_before: int, events: int) -> None:
    bargains = stack.service_process("bargains").url
    assert wait_until(lambda: processed_counts(bargains)[PRICES.name] >= events_before + events, timeout=120)


def test_true_specials_are_found_and_illusory_ones_flagged(
    stack: Stack, zones: dict[tuple[str, str], str]
) -> None:
    before = processed_counts(stack.service_process("bargains").url)[PRICES.name]
    events = sum(_ingest(stack, chain, store, day) for day in range(LAST_DAY + 1) for chain, store in zones)
    _settled(stack, before, events)

    specials = httpx.get(f"{stack.config.storefront_url}/_truth/specials", params={"day": LAST_DAY}).json()
    true = {(s["chain"] + OWN, s["zone"], s["sku"]) for s in specials["specials"] if s["kind"] == "true"}
    illusory = {
        (s["chain"] + OWN, s["zone"], s["sku"]) for s in specials["specials"] if s["kind"] == "illusory"
    }
    ours = [b for b in _all_bargains(stack, kind="discount") if (b["chain"], b["store_id"]) in zones]
    found = {(b["chain"], zones[(b["chain"], b["store_id"])], b["sku"]) for b in ours}
    flags = httpx.get(
        f"{stack.service_process('bargains').url}/v1/flags", params={"kind": "illusory", "limit": 10_000}
    ).json()
    flagged = {
        (f["chain"], zones[(f["chain"], f["store_id"])], f["sku"])
        for f in flags["flags"]
        if (f["chain"], f["store_id"]) in zones
    }

    precision = len(found & true) / len(found)
    recall = len(found & true) / len(true)
    caught = len(illusory & flagged - found) / len(illusory)
    listed_figures = f"{len(found)} discounts listed: precision {precision:.3f}, recall {recall:.3f}"
    print(f"\nday {LAST_DAY}: {len(true)} true specials, {listed_figures}; {caught:.1%} of illusory flagged")
    assert precision >= 0.95
    assert recall >= 0.95
    assert caught >= 0.90
    horizon = datetime.now(UTC) - timedelta(days=7)
    assert all(datetime.fromisoformat(b["observed_at"]) >= horizon for b in _all_bargains(stack))


def test_paging_returns_every_bargain_once_while_prices_arrive(
    stack: Stack, zones: dict[tuple[str, str], str]
) -> None:
    # Only these tests' chains hold still: another test's scrape of the shop may still be moving its own.
    ours = {chain for chain, _ in zones}
    expected = {b["bargain_id"] for b in _all_bargains(stack) if b["chain"] in ours}
    url = f"{stack.service_process('bargains').url}/v1/bargains"
    seen: list[str] = []
    cursor = None
    stores = list(zones)
    for page in range(10_000):
        body = httpx.get(url, params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        seen += [b["bargain_id"] for b in body["bargains"] if b["chain"] in ours]
        if page < len(stores):  # new prices of the last day keep arriving meanwhile
            chain, store = stores[page]
            _ingest(stack, chain, store, LAST_DAY, later=timedelta(minutes=10 + page))
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "no bargain twice"
    assert set(seen) == expected, "every bargain once"


def test_a_member_store_gets_its_anchors_bargains(stack: Stack, zones: dict[tuple[str, str], str]) -> None:
    chain, anchor = next(iter(zones))
    # A second store of the same zone, priced the same: grouping puts it with the first.
    _ingest(stack, chain, anchor, LAST_DAY, as_store=f"{anchor}-twin")
    bargains = stack.service_process("bargains").url

    def answered_by() -> str | None:
        body = httpx.get(f"{bargains}/v1/bargains", params={"chain": chain, "store": f"{anchor}-twin"}).json()
        return body["answered_by"]  # type: ignore[no-any-return]

    assert wait_until(lambda: answered_by() == anchor, timeout=60)
    listed = _all_bargains(stack, chain=chain, store=f"{anchor}-twin")
    assert listed
    assert {b["store_id"] for b in listed} == {anchor}
    bad = httpx.get(f"{bargains}/v1/bargains", params={"kind": "nonsense", "min_discount": "lots"})
    assert bad.status_code == 400
    assert {p["where"] for p in bad.json()["detail"]} == {"query.kind", "query.min_discount"}


def test_a_killed_bargains_service_resumes_without_loss(
    stack: Stack, zones: dict[tuple[str, str], str]
) -> None:
    """kill -9 mid-stream: every acknowledged price's effect is there once (the replay test checks)."""
    process = stack.services["bargains"]
    stores = list(zones)
    for i, (chain, store) in enumerate(stores):
        _ingest(stack, chain, store, LAST_DAY, later=timedelta(minutes=30))
        if i == len(stores) // 2:
            assert process.pid is not None
            os.kill(process.pid, signal.SIGKILL)
            assert wait_until(lambda: not process.running(), timeout=30)
    stack.start_service("bargains", report=lambda line: None)
    # The restarted process counts from zero: wait until its consumer group has no lag.
    assert wait_until(lambda: _lag(stack) == 0, timeout=120)
    print(f"\nbargains killed with -9 after {len(stores) // 2 + 1} of {len(stores)} stores' batches")


def _lag(stack: Stack) -> int:
    return sum(lag for group, name, _, _, lag in stack.lag() if group == "bargains" and name == PRICES.name)


def test_replaying_all_events_gives_the_same_history(stack: Stack) -> None:
    replayed: dict[tuple[str, str, str], tuple[Segment, ...]] = {}

    async def replay() -> None:
        consumer = AIOKafkaConsumer(
            PRICES.name, bootstrap_servers=stack.config.bootstrap_servers, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            idle = 0
            while idle < 4:
                batch = await consumer.getmany(timeout_ms=500)
                idle = 0 if batch else idle + 1
                for records in batch.values():
                    for record in records:
                        try:
                            event = CODEC.decode(record.value, dict(record.headers))
                        except ContractError:
                            continue  # dead-lettered by the service, as poison tests sent it
                        assert isinstance(event, PricesScraped)
                        p = event.payload
                        for o in p.sightings():
                            key = (p.chain, p.store_id, o.sku)
                            replayed[key] = fold(
                                replayed.get(key, ()),
                                price_cents=o.price_cents,
                                was_price_cents=o.was_price_cents,
                                observed_at=o.observed_at,
                            )
        finally:
            await consumer.stop()

    async def stored() -> tuple[dict[tuple[str, str, str], tuple[Segment, ...]], set[tuple[str, str]]]:
        conn = await asyncpg.connect(stack.service_process("bargains").env["BARGAINS_DATABASE_URL"])
        try:
            rows = await conn.fetch("SELECT * FROM runs ORDER BY chain, store_id, sku, starts_at")
            placed = await conn.fetch(
                "SELECT chain, store_id FROM placements WHERE anchor_store_id <> store_id"
            )
        finally:
            await conn.close()
        found: dict[tuple[str, str, str], list[Segment]] = {}
        for r in rows:
            found.setdefault((r["chain"], r["store_id"], r["sku"]), []).append(
                Segment(r["price_cents"], r["was_price_cents"], r["starts_at"], r["ends_at"])
            )
        return {k: tuple(v) for k, v in found.items()}, {(r["chain"], r["store_id"]) for r in placed}

    asyncio.run(replay())
    history, members = asyncio.run(stored())
    print(f"\nreplayed {len(replayed)} histories, {sum(len(v) for v in replayed.values())} segments")
    # Members hold a history only where they charge apart from their anchor (started anew after
    # giving way to it, maybe): its newest run is the replay's. Every other store's is the replay.
    assert {k: v for k, v in history.items() if k[:2] not in members} == {
        k: v for k, v in replayed.items() if k[:2] not in members
    }

    def newest(runs: tuple[Segment, ...]) -> tuple[int, int | None, datetime]:
        return runs[-1].price_cents, runs[-1].was_price_cents, runs[-1].ends_at

    own = {k: newest(v) for k, v in history.items() if k[:2] in members}
    assert own == {k: newest(replayed[k]) for k in own}
    assert len(own) < len([k for k in replayed if k[:2] in members]), "not vacuous: members answered"


def test_price_counts_agree_with_every_stores_current_price(stack: Stack) -> None:
    """The counts kept for chain medians equal a count of each store's latest segment on the days read."""
    # Days before the freshness window are read by no median: their moves are not counted.
    window = BargainsSettings.model_fields["freshness_days"].default
    read_from = (datetime.now(UTC) - timedelta(days=window)).date()

    async def both() -> tuple[list[Any], list[Any]]:
        conn = await asyncpg.connect(stack.service_process("bargains").env["BARGAINS_DATABASE_URL"])
        try:
            kept = await conn.fetch(
                """SELECT chain, sku, seen_on, price_cents, stores FROM price_counts
                   WHERE stores <> 0 AND seen_on >= $1 ORDER BY 1, 2, 3, 4""",
                read_from,
            )
            counted = await conn.fetch(
                """SELECT * FROM (
                       SELECT chain, sku, (ends_at AT TIME ZONE 'UTC')::date AS seen_on, price_cents,
                              count(*)::int AS stores
                       FROM (SELECT DISTINCT ON (chain, store_id, sku) * FROM runs
                             ORDER BY chain, store_id, sku, starts_at DESC) AS latest
                       GROUP BY 1, 2, 3, 4) AS counted
                   WHERE seen_on >= $1 ORDER BY 1, 2, 3, 4""",
                read_from,
            )
        finally:
            await conn.close()
        return kept, counted

    kept, counted = asyncio.run(both())
    print(f"\n{len(kept)} price counts over {sum(r['stores'] for r in kept)} store prices")
    assert counted
    assert [tuple(r) for r in kept] == [tuple(r) for r in counted]


def test_medians_taken_in_the_database_equal_the_median_of_every_store(stack: Stack) -> None:
    """Counted prices summed in the database give the median and the bounds; stale, empty counts left out."""
    rng = random.Random(8)
    today = datetime.now(UTC)
    counts = {
        f"m{n}": {rng.randrange(100, 130): rng.randrange(1, 5) for _ in range(rng.randrange(1, 8))}
        for n in range(60)
    }
    # Each price counted on one of the window's last four days: the bounds walk day by day.
    moves = [
        PriceMove(sku, price, (today - timedelta(days=rng.randrange(4))).date(), n)
        for sku, by_price in counts.items()
        for price, n in by_price.items()
    ]
    moves += [
        PriceMove("m0", 9_999, (today - timedelta(days=30)).date(), 1),
        PriceMove("m1", 5, today.date(), 0),
    ]

    # Then every store leaves the lowest price of the products priced more than one way.
    leaving = {sku: min(by_price) for sku, by_price in counts.items() if len(by_price) > 1}
    left = [
        PriceMove(m.sku, m.price_cents, m.seen_on, -m.delta)
        for m in moves
        if leaving.get(m.sku) == m.price_cents
    ]

    async def medians() -> tuple[list[dict[str, float]], list[dict[str, tuple[int, int]]]]:
        conn = await asyncpg.connect(stack.service_process("bargains").env["BARGAINS_DATABASE_URL"])
        transaction = conn.transaction()
        await transaction.start()
        try:  # rolled back: the service's tables keep nothing of it
            repo = PostgresBargainsRepository(conn)
            fresh_after = today - timedelta(days=7)
            found, bounds = [], []
            for batch in (moves, left):
                await repo.move_current_prices(chain="median-check", moves=batch)
                skus = list(counts)
                found.append(
                    await repo.current_medians(chain="median-check", skus=skus, fresh_after=fresh_after)
                )
                bounds.append(
                    await repo.price_bounds(chain="median-check", skus=skus, fresh_after=fresh_after)
                )
            return found, bounds
        finally:
            await transaction.rollback()
            await conn.close()

    (found, found_after), (bounds, bounds_after) = asyncio.run(medians())
    assert found == {sku: median(by_price) for sku, by_price in counts.items()}
    # The stale 9,999 (30 days old) and the zero count (5) are neither the lowest nor the highest.
    assert bounds == {sku: (min(by_price), max(by_price)) for sku, by_price in counts.items()}
    assert leaving
    remaining = {
        sku: {p: n for p, n in by_price.items() if leaving.get(sku) != p} for sku, by_price in counts.items()
    }
    assert found_after == {sku: median(by_price) for sku, by_price in remaining.items()}
    # Bounds only widen within a day: a price no store charges any more still bounds its day.
    assert bounds_after == bounds


def test_how_each_product_was_last_sold_is_kept_new_changed_or_unknown_before(stack: Stack) -> None:
    """A product's way of selling is stored when new, changed, or not known yet; an unchanged one stays."""

    async def kept() -> list[dict[str, str | None]]:
        conn = await asyncpg.connect(stack.service_process("bargains").env["BARGAINS_DATABASE_URL"])
        transaction = conn.transaction()
        await transaction.start()
        try:  # rolled back: the service's tables keep nothing of it
            repo = PostgresBargainsRepository(conn)
            await repo.save_product(chain="sold-check", sku="barcode-only", barcode="9300000000001")
            seen = []
            rounds: list[dict[str, SoldBy]] = [
                {"a": "each", "b": "kg"},
                {"a": "kg", "b": "kg", "c": "each", "barcode-only": "each"},
                {"a": "kg"},
            ]
            for ways in rounds:
                await repo.save_sold_by(chain="sold-check", sold_by=ways)
                rows = await conn.fetch("SELECT sku, sold_by FROM products WHERE chain = 'sold-check'")
                seen.append({r["sku"]: r["sold_by"] for r in rows})
            return seen
        finally:
            await transaction.rollback()
            await conn.close()

    assert asyncio.run(kept()) == [
        {"barcode-only": None, "a": "each", "b": "kg"},
        {"barcode-only": "each", "a": "kg", "b": "kg", "c": "each"},
        {"barcode-only": "each", "a": "kg", "b": "kg", "c": "each"},
    ]


def test_a_days_price_range_widens_with_each_price_counted_outside_it(stack: Stack) -> None:
    """Bounds widen as prices outside them are counted on a day, and never narrow."""
    today = datetime.now(UTC)
    day = today.date()
    rounds = [
        [PriceMove("w1", 100, day, 1), PriceMove("w2", 500, day, 1)],
        [PriceMove("w1", 95, day, 1), PriceMove("w1", 90, day, 1), PriceMove("w2", 500, day, 1)],
        [PriceMove("w1", 120, day, 1), PriceMove("w1", 100, day, 1), PriceMove("w2", 400, day, -1)],
        [PriceMove("w1", 110, day, 1)],
    ]

    async def bounds() -> list[dict[str, tuple[int, int]]]:
        conn = await asyncpg.connect(stack.service_process("bargains").env["BARGAINS_DATABASE_URL"])
        transaction = conn.transaction()
        await transaction.start()
        try:  # rolled back: the service's tables keep nothing of it
            repo = PostgresBargainsRepository(conn)
            seen = []
            for moves in rounds:
                await repo.move_current_prices(chain="range-check", moves=moves)
                seen.append(
                    await repo.price_bounds(
                        chain="range-check", skus=["w1", "w2"], fresh_after=today - timedelta(days=1)
                    )
                )
            return seen
        finally:
            await transaction.rollback()
            await conn.close()

    assert asyncio.run(bounds()) == [
        {"w1": (100, 100), "w2": (500, 500)},
        {"w1": (90, 100), "w2": (500, 500)},
        {"w1": (90, 120), "w2": (500, 500)},
        {"w1": (90, 120), "w2": (500, 500)},
    ]


def test_histories_read_by_stores_and_products_or_by_pairs_hold_exactly_the_pairs_asked(stack: Stack) -> None:
    """A batch read as its stores by its products, or pair by pair, returns its pairs' runs, oldest first."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    stores, skus = [f"h{n}" for n in range(6)], [f"k{n}" for n in range(6)]
    # Each pair two runs (stored newest first), so the order is the repository's doing.
    runs = {
        (store, sku): [
            Segment(300 + n, None, start + timedelta(days=1), start + timedelta(days=2)),
            Segment(200 + n, None, start, start + timedelta(hours=n)),
        ]
        for n, (store, sku) in enumerate((store, sku) for store in stores for sku in skus)
    }
    shapes = {
        "every store by every product": list(runs),
        "most pairs (stores by products, the rest left out)": list(runs)[:-10],
        "a diagonal (pair by pair)": [(store, sku) for store, sku in zip(stores, skus, strict=True)],
        "pairs never seen among them": [*list(runs)[:3], ("h0", "new"), ("new", "k0")],
    }

    async def read() -> dict[str, dict[tuple[str, str], tuple[Segment, ...]]]:
        conn = await asyncpg.connect(stack.service_process("bargains").env["BARGAINS_DATABASE_URL"])
        transaction = conn.transaction()
        await transaction.start()
        try:  # rolled back: the service's tables keep nothing of it
            repo = PostgresBargainsRepository(conn)
            await repo.save_segments(chain="history-read", started=runs, extended={})
            return {
                name: await repo.histories(chain="history-read", keys=keys) for name, keys in shapes.items()
            }
        finally:
            await transaction.rollback()
            await conn.close()

    found = asyncio.run(read())
    for name, keys in shapes.items():
        expected = {key: tuple(reversed(runs[key])) for key in keys if key in runs}
        assert found[name] == expected, name


def test_a_stores_history_mark_changes_with_its_history_and_only_then(stack: Stack) -> None:
    """Marks are drawn anew by every write of a placed store's history, never by a read."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    chain = "history-marks"
    group = StoreGroupChangedPayload(
        chain=chain,
        group_id="hm",
        group_version=1,
        anchor_store_id="a",
        member_store_ids=("m",),
        reason="formed",
    )

    async def marks(conn: asyncpg.Connection) -> list[dict[str, int]]:
        repo = PostgresBargainsRepository(conn)
        seen = [await repo.history_marks(chain=chain, store_ids=["a", "m", "alone"])]
        await repo.apply_group(group=group)
        seen.append(await repo.history_marks(chain=chain, store_ids=["a", "m", "alone"]))
        run = Segment(300, None, start, start + timedelta(hours=1))
        await repo.save_segments(
            chain=chain, started={("a", "milk"): [run], ("alone", "milk"): [run]}, extended={}
        )
        seen.append(await repo.history_marks(chain=chain, store_ids=["a", "m"]))
        await repo.newest_runs(chain=chain, keys=[("a", "milk")])
        await repo.histories(chain=chain, keys=[("a", "milk")])
        seen.append(await repo.history_marks(chain=chain, store_ids=["a", "m"]))
        longer = Segment(300, None, start, start + timedelta(hours=2))
        await repo.save_segments(chain=chain, started={}, extended={("a", "milk"): [longer]})
        seen.append(await repo.history_marks(chain=chain, store_ids=["a", "m"]))
        await repo.drop_histories(chain=chain, keys=[("m", "milk")])
        seen.append(await repo.history_marks(chain=chain, store_ids=["a", "m"]))
        return seen

    unplaced, placed, written, read, extended, dropped = asyncio.run(rolled_back(stack, "bargains", marks))
    assert unplaced == {}, "a store outside any group has no mark"
    assert set(placed) == {"a", "m"}
    assert written["a"] != placed["a"]
    assert written["m"] == placed["m"]
    assert read == written, "reading changes no mark"
    assert extended["a"] != written["a"]
    assert extended["m"] == written["m"]
    assert dropped["m"] != extended["m"]
    assert dropped["a"] == extended["a"]


def _post_rows(stack: Stack, chain: str, store: str, rows: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{stack.service_process('scraper').url}/v1/observations",
        json={"chain": chain, "store_id": store, "rows": rows},
        headers={"Authorization": f"Bearer {stack.ingest_token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text


def test_cross_chain_bargains_and_suspicious_outliers(stack: Stack) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    milk = {"name": "Full Cream Milk 2L", "barcode": "9300000000017", "observed_at": now.isoformat()}
    for store in ("b1", "b2", "b3"):
        _post_rows(stack, "xb", store, [{**milk, "sku": "b-milk", "price_cents": 500}])
    # 20% below the other chain's median price of the same barcode: a cross-chain bargain.
    _post_rows(stack, "xa", "a1", [{**milk, "sku": "a-milk", "price_cents": 400}])
    # One store of a chain at a sixth of the product's median: suspicious, never a bargain.
    tea = {"name": "Tea 100 bags", "observed_at": now.isoformat(), "sku": "tea"}
    bargains = stack.service_process("bargains").url
    for store in ("c1", "c2"):
        _post_rows(stack, "xc", store, [{**tea, "price_cents": 600}])

    def priced_at() -> int:
        history = httpx.get(f"{bargains}/v1/products/xc/tea/history").json()["history"]
        return len({row["store_id"] for row in history})

    assert wait_until(lambda: priced_at() == 2, timeout=30), "the median is known before the odd price"
    _post_rows(stack, "xc", "c3", [{**tea, "price_cents": 100}])

    def cross_chain() -> list[dict[str, Any]]:
        return _all_bargains(stack, chain="xa", kind="cross_chain")

    assert wait_until(lambda: len(cross_chain()) == 1, timeout=30)
    found = cross_chain()[0]
    assert (found["store_id"], found["sku"], found["price_cents"], found["reference_cents"]) == (
        "a1",
        "a-milk",
        400,
        500,
    )

    def outliers() -> list[dict[str, Any]]:
        flags: list[dict[str, Any]] = httpx.get(f"{bargains}/v1/flags", params={"kind": "outlier"}).json()[
            "flags"
        ]
        return flags

    assert wait_until(lambda: any(f["store_id"] == "c3" for f in outliers()), timeout=30)
    assert not _all_bargains(stack, chain="xc")


_BATCH_AT = datetime.now(UTC) - timedelta(hours=3)
SAME_BARCODE = "99999999000001"


def _at(days: int, hours: int = 0) -> datetime:
    return _BATCH_AT - timedelta(days=days) + timedelta(hours=hours)


class _InTransaction:
    """A unit of work over a connection whose transaction the test owns (and rolls back)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.repo = PostgresBargainsRepository(conn)
        self.published: list[Event] = []

    async def claim(self, events: Sequence[E]) -> list[E]:
        return list(events)

    def publish(self, events: Iterable[Event]) -> None:
        self.published.extend(events)

    async def try_lock(self, name: str) -> bool:
        return True

    def correlate(self, correlation_id: UUID) -> None:
        pass


def _announced(events: Sequence[Event], chain: str) -> set[tuple[str, str]]:
    """Return the (change, bargain id without the chain) announced for a chain."""
    return {
        (change.change, change.bargain.bargain_id.replace(f":{chain}:", ":"))
        for event in events
        if isinstance(event, BargainsChanged) and event.payload.chain == chain
        for change in event.payload.changes
    }


def _group(chain: str) -> StoreGroupChangedPayload:
    """s1 answers for m1."""
    return StoreGroupChangedPayload(
        chain=chain,
        group_id=f"g-{chain}",
        group_version=1,
        anchor_store_id="s1",
        member_store_ids=("m1",),
        reason="formed",
    )


async def _postgres_projection(conn: asyncpg.Connection, chain: str) -> dict[str, list[tuple[Any, ...]]]:
    """A chain's history, current price counts, bargains and flags, without the chain's name."""
    history = await conn.fetch(
        """SELECT store_id, sku, price_cents, was_price_cents, starts_at, ends_at FROM runs
           WHERE chain = $1""",
        chain,
    )
    counts = await conn.fetch(
        "SELECT sku, seen_on, price_cents, stores FROM price_counts WHERE chain = $1 AND stores <> 0", chain
    )
    bargains = await conn.fetch(
        """SELECT bargain_id, store_id, sku, category, kind, price_cents, reference_cents, score, reason,
                  observed_at FROM bargains WHERE chain = $1""",
        chain,
    )
    flags = await conn.fetch(
        "SELECT store_id, sku, kind, reason, observed_at FROM flags WHERE chain = $1", chain
    )
    return _sorted(
        {
            "history": [tuple(r) for r in history],
            "price_counts": [tuple(r) for r in counts],
            "bargains": [(r["bargain_id"].replace(f":{chain}:", ":"), *tuple(r)[1:]) for r in bargains],
            "flags": [tuple(r) for r in flags],
        }
    )


def _sorted(projection: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """Order each part by its key in Python, not by the database's collation."""
    keys: dict[str, Callable[[tuple[Any, ...]], tuple[Any, ...]]] = {
        "history": lambda r: (r[0], r[1], r[4]),  # store, sku, starts_at
        "price_counts": lambda r: r[:3],  # sku, seen_on, price
        "bargains": lambda r: r[:1],  # bargain id
        "flags": lambda r: r[:3],  # store, sku, kind
    }
    return {part: sorted(rows, key=keys[part]) for part, rows in projection.items()}


def _fake_projection(repo: InMemoryBargainsRepository, chain: str) -> dict[str, list[tuple[Any, ...]]]:
    """The same projection of the in-memory repository."""
    return _sorted(
        {
            "history": [
                (store, sku, s.price_cents, s.was_price_cents, s.starts_at, s.ends_at)
                for (c, store, sku), segments in repo.history.items()
                if c == chain
                for s in segments.values()
            ],
            "price_counts": [
                (sku, seen_on, price, stores)
                for (c, sku, seen_on, price), stores in repo.price_counts.items()
                if c == chain and stores
            ],
            "bargains": [
                (
                    b.bargain_id.replace(f":{chain}:", ":"),
                    b.store_id,
                    b.sku,
                    b.category,
                    b.kind,
                    b.price_cents,
                    b.reference_cents,
                    b.score,
                    b.reason,
                    b.observed_at,
                )
                for b in repo.bargains.values()
                if b.chain == chain
            ],
            "flags": [
                (f.store_id, f.sku, f.kind, f.reason, f.observed_at)
                for (c, *_), f in repo.flags.items()
                if c == chain
            ],
        }
    )


def test_folding_a_batch_of_prices_at_once_equals_folding_them_one_by_one(stack: Stack) -> None:
    """One fold_prices call over many events of several stores leaves what one call per event leaves."""
    now = datetime.now(UTC)

    async def both(conn: asyncpg.Connection) -> tuple[dict[str, Any], dict[str, Any], set[tuple[str, str]]]:
        work = _InTransaction(conn)
        for chain in ("batch-a", "batch-b"):
            await service_layer.change_group(work, _group(chain), now=now, policy=Policy())
        await service_layer.fold_prices(work, prices_of("batch-a", at=_BATCH_AT), now=now, policy=Policy())
        for payload in prices_of("batch-b", at=_BATCH_AT):
            await service_layer.fold_prices(work, [payload], now=now, policy=Policy())
        announced = _announced(work.published, "batch-a")
        return (
            await _postgres_projection(conn, "batch-a"),
            await _postgres_projection(conn, "batch-b"),
            announced,
        )

    batched, one_by_one, announced = asyncio.run(rolled_back(stack, "bargains", both))
    # What the events amount to, folded in arrival order by the domain alone.
    folded: dict[tuple[str, str], tuple[Segment, ...]] = {}
    for payload in prices_of("batch-a", at=_BATCH_AT):
        for o in payload.sightings():
            key = (payload.store_id, o.sku)
            folded[key] = fold(
                folded.get(key, ()),
                price_cents=o.price_cents,
                was_price_cents=o.was_price_cents,
                observed_at=o.observed_at,
            )
    del folded[ANSWERED_BY_S1]
    assert batched["history"] == [
        (store, sku, s.price_cents, s.was_price_cents, s.starts_at, s.ends_at)
        for (store, sku), segments in sorted(folded.items())
        for s in segments
    ]
    assert [(s.price_cents, s.starts_at) for s in folded["s2", "milk"]] == [(500, _at(20)), (440, _at(2))]
    # Not vacuous: a discount and a historical low, an illusory special and an outlier; none for a member.
    kinds = {(b[1], b[2], b[4]) for b in batched["bargains"]}
    assert {
        ("s1", "milk", "discount"),
        ("s1", "bread", "discount"),
        ("s1", "bread", "historical_low"),
    } <= kinds
    assert {(f[0], f[1], f[2]) for f in batched["flags"]} >= {
        ("s1", "tea", "illusory"),
        ("s3", "milk", "outlier"),
    }
    assert all(b[1] != "m1" for b in batched["bargains"])
    assert all(f[0] != "m1" for f in batched["flags"])
    assert announced == {("appeared", b[0]) for b in batched["bargains"]}
    for part in ("history", "price_counts", "flags"):
        assert batched[part] == one_by_one[part], part
    assert [b[:-1] for b in batched["bargains"]] == [b[:-1] for b in one_by_one["bargains"]]
    # A bargain rests on its price's latest sighting however the events were batched.
    assert batched["bargains"] == one_by_one["bargains"], "observed_at of the bargains"


async def _every_use_case(
    work: Work[BargainsRepository], chain: str, other: str, now: datetime, runs: KeptReads[Run] | None = None
) -> None:
    """Group, fold, link by substitute and by barcode, then expire: each use case over two chains."""
    policy = Policy()
    fold = functools.partial(service_layer.fold_prices, anchor_runs=runs)
    for c in (chain, other):
        await service_layer.change_group(work, _group(c), now=now, policy=policy)
    await fold(work, prices_of(chain, at=_BATCH_AT), now=now, policy=policy)
    # Two more stores, then placed under s1: m2 shows every price s1 does (its histories go by
    # store), m3 all but its tea (they go pair by pair); their counts go with them.
    twins = [
        PricesScrapedPayload(
            chain=chain,
            store_id=store,
            source="ingest",
            observations=tuple(
                PriceObservation(sku=sku, price_cents=price, was_price_cents=was, observed_at=_at(1))
                for sku, price, was in (
                    ("milk", 400, 500),
                    ("tea", tea, None if tea == 350 else 400),
                    ("bread", 150, None),
                )
            ),
        )
        for store, tea in (("m2", 300), ("m3", 350))
    ]
    await fold(work, twins, now=now, policy=policy)
    grown = _group(chain).model_copy(update={"group_version": 2, "member_store_ids": ("m1", "m2", "m3")})
    await service_layer.change_group(work, grown, now=now, policy=policy)
    elsewhere = [
        PricesScrapedPayload(
            chain=other,
            store_id=store,
            source="ingest",
            observations=(
                PriceObservation(sku="milk", price_cents=700, was_price_cents=None, observed_at=_at(0)),
                PriceObservation(sku="bread", price_cents=300, was_price_cents=None, observed_at=_at(0)),
            ),
        )
        for store in ("x1", "x2")
    ]
    await fold(work, elsewhere, now=now, policy=policy)
    same = Substitute(level="L1", chain=other, sku="milk", score=1.0, reason="the same product")
    await service_layer.change_substitutes(
        work,
        SubstitutionsChangedPayload(chain=chain, sku="milk", substitutes=(same,)),
        now=now,
        policy=policy,
    )
    for c in (chain, other):
        product = ProductObservedPayload(
            chain=c, sku="bread", change="new", name="Bread", barcode=SAME_BARCODE, observed_at=_at(0)
        )
        await service_layer.observe_product(work, product, now=now, policy=policy)


def test_the_in_memory_repository_does_what_the_sql_does(stack: Stack) -> None:
    """Every use case over PostgreSQL and over the unit tests' fake leaves the same tables."""
    now = datetime.now(UTC)
    fake = FakeUnitOfWork(InMemoryBargainsRepository())

    async def run_fake() -> tuple[dict[str, Any], dict[str, Any]]:
        async with fake:
            await _every_use_case(fake, "parity-a", "parity-b", now)
        before = _fake_projection(fake.repo, "parity-a")
        async with fake:
            await service_layer.expire(fake, now=now + timedelta(days=7), policy=Policy())
        return before, _fake_projection(fake.repo, "parity-a")

    async def run_postgres(conn: asyncpg.Connection) -> tuple[dict[str, Any], dict[str, Any], list[Event]]:
        work = _InTransaction(conn)
        # Anchors' runs kept between batches under the SQL's marks: the same answers as reading them.
        await _every_use_case(work, "parity-a", "parity-b", now, KeptReads())
        before = await _postgres_projection(conn, "parity-a")
        await service_layer.expire(work, now=now + timedelta(days=7), policy=Policy())
        return before, await _postgres_projection(conn, "parity-a"), work.published

    fake_before, fake_after = asyncio.run(run_fake())
    sql_before, sql_after, published = asyncio.run(rolled_back(stack, "bargains", run_postgres))

    kinds = {b[0].split(":")[0] for b in sql_before["bargains"]}
    assert kinds == {"discount", "historical_low", "cross_chain"}, "not vacuous"
    assert {(b[1], b[2]) for b in sql_before["bargains"] if b[0].startswith("cross_chain")} == {
        ("s1", "milk"),  # 400 against 700 at the L1 substitute
        ("s2", "milk"),
        ("s1", "bread"),  # 150 against 300 at the product with the same barcode
        ("s2", "bread"),
    }
    assert sql_before == fake_before
    assert {(h[0], h[1]) for h in sql_before["history"] if h[0] in ("m2", "m3")} == {("m3", "tea")}
    assert not sql_after["bargains"], "every bargain expired a week later"
    assert sql_after == fake_after
    assert _announced(published, "parity-a") == _announced(fake.published, "parity-a")
