"""Grouping against the simulated world's ground truth, on a stack of its own."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from contracts import CODEC, topic
from contracts.events import PriceObservation, PricesScraped, RescrapeRequested, StoreGroupChanged
from contracts.events.v1 import PricesScrapedPayload
from grouping import service_layer
from grouping.bootstrap import MIGRATIONS
from grouping.queries import GroupingQueries
from grouping.repository import PostgresGroupingRepository
from grouping.service_layer import CycleReport
from grouping.settings import GroupingSettings
from grouping.workers import GroupingGauges, GroupingWorker
from pricestream.stack import Stack
from servicekit.db import KIT_MIGRATIONS, KIT_MIGRATIONS_TABLE, Database, migrate
from servicekit.idempotency import mark_processed_many
from servicekit.unit_of_work import unit_of_work_factory
from simulator.evaluation import adjusted_rand_index
from testsupport import rolled_back, wait_until

pytestmark = pytest.mark.integration

DAY = 10
T = TypeVar("T")


@pytest.fixture(scope="module")
def stack(second_stack: Stack) -> Stack:
    """Not the session's stack, so every store starts unplaced and days do not mix."""
    return second_stack


def _grouping(stack: Stack) -> str:
    return stack.service_process("grouping").url


def _assignment(stack: Stack) -> dict[tuple[str, str], str]:
    """Read every group, page by page; return store -> group id."""
    placed: dict[tuple[str, str], str] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(f"{_grouping(stack)}/v1/groups", params=params, timeout=10).json()
        for group in body["groups"]:
            for store in (group["anchor_store_id"], *group["members"]):
                assert (group["chain"], store) not in placed, "a store is in one group only"
                placed[(group["chain"], store)] = group["group_id"]
        cursor = body["next_cursor"]
        if cursor is None:
            return placed


def _stable(stack: Stack, stores: int, timeout: float = 90) -> dict[tuple[str, str], str]:
    """Wait until every store is placed and the groups stop changing."""
    last: dict[tuple[str, str], str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = _assignment(stack)
        if len(now) >= stores and now == last:
            return now
        last = now
        time.sleep(3)
    raise AssertionError(f"groups did not settle: {len(last)} of {stores} stores placed")


def _scrape(stack: Stack, day: int, chains: list[str] | None = None) -> None:
    url = stack.service_process("scraper").url
    # Chains served as Coles or Woolworths price the shop's day, as a real site prices today.
    httpx.post(f"{stack.config.storefront_url}/v1/clock", json={"day": day}, timeout=10).raise_for_status()
    run_id = httpx.post(
        f"{url}/v1/runs", json={"scope": "all", "day": day, "chains": chains or []}, timeout=60
    )
    run_id = run_id.json()["run_id"]
    assert wait_until(lambda: httpx.get(f"{url}/v1/runs/{run_id}").json()["status"] != "running", timeout=180)


def _zones(stack: Stack) -> dict[tuple[str, str], str]:
    chains = httpx.get(f"{stack.config.storefront_url}/_truth/zones").json()["chains"]
    return {(chain, store): zone for chain, stores in chains.items() for store, zone in stores.items()}


def test_groups_equal_the_true_pricing_zones(stack: Stack) -> None:
    zones = _zones(stack)
    _scrape(stack, DAY)
    placed = _stable(stack, len(zones))
    for chain in sorted({c for c, _ in zones}):
        stores = sorted(s for c, s in zones if c == chain)
        truth = [zones[(chain, s)] for s in stores]
        found = [placed[(chain, s)] for s in stores]
        ari = adjusted_rand_index(truth, found)
        print(f"\n{chain}: {len(set(truth))} zones, {len(set(found))} groups, adjusted Rand index {ari:.3f}")
        assert ari >= 0.95
        for group in set(found):
            assert len({zones[(chain, s)] for s in stores if placed[(chain, s)] == group}) == 1, (
                "two zones merged"
            )


def test_every_store_answers_its_true_prices_after_pruning(stack: Stack) -> None:
    stats = httpx.get(f"{_grouping(stack)}/v1/stats").json()
    print(f"\ngrouping stats: {stats}")
    groups = httpx.get(f"{_grouping(stack)}/v1/groups", params={"limit": 1000}).json()["groups"]
    anchor_of = {(g["chain"], m): g["anchor_store_id"] for g in groups for m in g["members"]}
    shop = stack.config.storefront_url
    expected_held = 0
    for chain in {c for c, _ in _zones(stack)}:
        truth: dict[str, dict[str, tuple[int, int | None, bool]]] = {}
        params: dict[str, Any] = {"chain": chain, "day": DAY}
        for row in httpx.get(f"{shop}/_truth/prices", params=params, timeout=30).json()["prices"]:
            shelf = (row["price_cents"], row["was_price_cents"], row["available"])
            truth.setdefault(row["store_id"], {})[row["sku"]] = shelf
        for store, expected in truth.items():
            body = httpx.get(f"{_grouping(stack)}/v1/stores/{chain}/{store}/prices", timeout=10).json()
            answered = {
                p["sku"]: (p["price_cents"], p["was_price_cents"], p["available"]) for p in body["prices"]
            }
            assert answered == expected, f"{chain}/{store} answers differ from the shop"
            anchor = anchor_of.get((chain, store))
            # An anchor holds all its prices; a member only those that differ from its anchor's.
            own = expected if anchor is None else {k: v for k, v in expected.items() if truth[anchor][k] != v}
            expected_held += len(own)
    assert stats["prices_held"] == expected_held
    assert stats["compression_ratio"] >= 3


def test_a_drifting_store_is_split_out_after_its_next_scrape(stack: Stack) -> None:
    placed = _assignment(stack)
    groups = httpx.get(f"{_grouping(stack)}/v1/groups", params={"limit": 1000}).json()["groups"]
    group = next(g for g in groups if len(g["members"]) >= 2)
    chain, store = group["chain"], group["members"][0]
    rows = httpx.get(
        f"{stack.config.storefront_url}/_truth/prices", params={"chain": chain, "day": DAY}, timeout=30
    ).json()["prices"]
    mine = [r for r in rows if r["store_id"] == store]
    drifted = [
        {"sku": r["sku"], "price_cents": r["price_cents"] + (7 if i % 10 == 0 else 0)}
        for i, r in enumerate(mine)
    ]

    def scrape_drifted() -> None:
        response = httpx.post(
            f"{stack.service_process('scraper').url}/v1/observations",
            json={"rows": drifted, "chain": chain, "store_id": store},
            headers={"Authorization": f"Bearer {stack.ingest_token}"},
        )
        assert response.json()["accepted"] == len(mine)

    def mine_now() -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(f"{_grouping(stack)}/v1/stores/{chain}/{store}/group").json()
        return found

    scrape_drifted()
    assert wait_until(lambda: mine_now()["group_id"] != group["group_id"], timeout=30)
    # Its own group comes with its chain's next regroup: in the cycle that split it, unless its chain
    # had waited a minute since its last regroup and was regrouped as a busy chain while the drifted
    # prices arrived; then once its next prices go quiet.
    if not wait_until(lambda: mine_now()["anchor_store_id"] == store, timeout=5):
        scrape_drifted()
    assert wait_until(lambda: mine_now()["anchor_store_id"] == store, timeout=30), (
        "it matches no other store: a group of its own"
    )
    assert placed[(chain, store)] == group["group_id"]
    events = asyncio.run(_events(stack, "groups.changed.v1"))
    split = [e for e in events if isinstance(e, StoreGroupChanged) and e.payload.reason == "split"]
    assert any(
        e.payload.group_id == group["group_id"] and store not in e.payload.member_store_ids for e in split
    )


async def _events(stack: Stack, name: str) -> list[Any]:
    consumer = AIOKafkaConsumer(
        name, bootstrap_servers=stack.config.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    events = []
    try:
        for _ in range(6):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                events += [CODEC.decode(r.value, dict(r.headers)) for r in records]
    finally:
        await consumer.stop()
    return events


def _ingest(stack: Stack, store: str, observed_at: datetime, *, chain: str, raise_every: int = 0) -> None:
    """Post 60 prices of a store; every raise_every-th one 30 cents dearer."""
    rows = [
        {
            "sku": f"p{i}",
            "price_cents": 100 + i + (30 if raise_every and i % raise_every == 0 else 0),
            "observed_at": observed_at.isoformat(),
        }
        for i in range(60)
    ]
    response = httpx.post(
        f"{stack.service_process('scraper').url}/v1/observations",
        json={"rows": rows, "chain": chain, "store_id": store},
        headers={"Authorization": f"Bearer {stack.ingest_token}"},
    )
    assert response.json()["accepted"] == 60, response.text


def _payload(store: str, at: datetime, *prices: tuple[str, int]) -> PricesScrapedPayload:
    observations = tuple(
        PriceObservation(sku=sku, price_cents=cents, observed_at=at) for sku, cents in prices
    )
    return PricesScrapedPayload(chain="batch-g", store_id=store, source="ingest", observations=observations)


def test_an_anchor_whose_prices_mostly_change_has_its_members_rechecked(stack: Stack) -> None:
    for store in ("a1", "a2", "a3"):
        _ingest(stack, store, datetime.now(UTC), chain="movechain")

    def together() -> bool:
        placed = _assignment(stack)
        return len({placed.get(("movechain", store)) for store in ("a1", "a2", "a3")} - {None}) == 1 and all(
            ("movechain", store) in placed for store in ("a1", "a2", "a3")
        )

    assert wait_until(together, timeout=30)
    anchor = httpx.get(f"{_grouping(stack)}/v1/stores/movechain/a1/group").json()["anchor_store_id"]
    members = sorted({"a1", "a2", "a3"} - {anchor})

    def rechecks() -> dict[str, int]:
        events = asyncio.run(_events(stack, topic("rescrapes.requested.v1").name))
        asked = [e.payload for e in events if isinstance(e, RescrapeRequested)]
        return {m: sum(1 for p in asked if p.store_id == m and p.reason == "health_check") for m in members}

    assert rechecks() == dict.fromkeys(members, 0)
    _ingest(stack, anchor, datetime.now(UTC), chain="movechain", raise_every=1)  # another zone's prices
    assert wait_until(lambda: rechecks() == dict.fromkeys(members, 1), timeout=30), rechecks()


def test_a_batch_of_prices_keeps_each_products_newest_price(stack: Stack) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    older, old = now - timedelta(hours=2), now - timedelta(hours=1)

    async def work(conn: asyncpg.Connection) -> dict[tuple[str, str], tuple[int, datetime]]:
        repo = PostgresGroupingRepository(conn)
        fresh_since, lag = now - timedelta(days=7), timedelta(days=1)
        await repo.upsert_prices(
            batches=[_payload("ga", now, ("p1", 900), ("p2", 100))], fresh_since=fresh_since, anchor_lag=lag
        )
        written = await repo.upsert_prices(
            fresh_since=fresh_since,
            anchor_lag=lag,
            batches=[
                _payload("gm", old, ("p1", 300)),
                _payload("gm", older, ("p1", 200), ("p2", 210)),  # later in the list, older: p1 stays 300
                _payload("ga", old, ("p1", 800), ("p2", 110)),  # older than what is stored: nothing changes
                _payload("gm", now, ("p3", 50)),
            ],
        )
        assert written == 3, "one row per new (store, product); none for an older price than the stored one"
        assert await conn.fetchval("SELECT count(*) FROM incoming_prices") == 0, "nothing left staged"
        rows = await conn.fetch(
            "SELECT store_id, sku, price_cents, observed_at FROM latest_prices WHERE chain = 'batch-g'"
        )
        return {(r["store_id"], r["sku"]): (r["price_cents"], r["observed_at"]) for r in rows}

    assert asyncio.run(rolled_back(stack, "grouping", work)) == {
        ("ga", "p1"): (900, now),
        ("ga", "p2"): (100, now),
        ("gm", "p1"): (300, old),
        ("gm", "p2"): (210, older),
        ("gm", "p3"): (50, now),
    }


def test_only_an_anchor_with_members_has_its_changed_prices_counted(stack: Stack) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    before = now - timedelta(hours=1)

    async def work(conn: asyncpg.Connection) -> dict[str, tuple[int, int]]:
        await conn.execute(
            """INSERT INTO groups (group_id, chain, anchor_store_id)
               VALUES ('g-count-1', 'batch-g', 'ga'), ('g-count-2', 'batch-g', 'gz')"""
        )
        await conn.execute(
            """INSERT INTO stores (chain, store_id, group_id)
               VALUES ('batch-g', 'ga', 'g-count-1'), ('batch-g', 'gm', 'g-count-1'),
                      ('batch-g', 'gz', 'g-count-2')"""
        )
        repo = PostgresGroupingRepository(conn)
        fresh_since, lag = now - timedelta(days=7), timedelta(days=1)
        for store in ("ga", "gz"):  # an anchor with a member, and a store alone in its group
            await repo.upsert_prices(
                batches=[_payload(store, before, ("p1", 100), ("p2", 200))],
                fresh_since=fresh_since,
                anchor_lag=lag,
            )
            await repo.upsert_prices(
                batches=[_payload(store, now, ("p1", 150), ("p2", 200))],
                fresh_since=fresh_since,
                anchor_lag=lag,
            )
        rows = await conn.fetch(
            """SELECT store_id, compared_since_check, changed_since_check FROM stores
               WHERE chain = 'batch-g' AND store_id IN ('ga', 'gz')"""
        )
        return {r["store_id"]: (r["compared_since_check"], r["changed_since_check"]) for r in rows}

    # Counted to re-check an anchor's members when most of its prices change: one alone has none.
    assert asyncio.run(rolled_back(stack, "grouping", work)) == {"ga": (2, 1), "gz": (0, 0)}


def test_noting_a_batch_of_prices_counts_them_and_marks_members_due(stack: Stack) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    before = now - timedelta(days=1)
    asked = now - timedelta(hours=1)

    async def work(conn: asyncpg.Connection) -> tuple[dict[str, tuple[Any, ...]], dict[str, datetime | None]]:
        await conn.execute(
            """INSERT INTO groups (group_id, chain, anchor_store_id, rescrape_requested_at)
               VALUES ('g-batch-1', 'batch-g', 'ga', $1), ('g-batch-2', 'batch-g', 'gx', $1)""",
            asked,
        )
        await conn.execute(
            """INSERT INTO stores (chain, store_id, group_id, observed, last_observed_at, last_received_at)
               VALUES ('batch-g', 'ga', 'g-batch-1', 10, $1, $1), ('batch-g', 'gm', 'g-batch-1', 5, $1, $1),
                      ('batch-g', 'gx', 'g-batch-2', 7, $1, $1), ('batch-g', 'gy', 'g-batch-2', 7, $1, $1)""",
            before,
        )
        await PostgresGroupingRepository(conn).note_store_prices(
            received_at=now,
            batches=[
                _payload("gm", now - timedelta(hours=1), ("p1", 1), ("p2", 2)),
                _payload("ga", now, ("p1", 1)),
                _payload("gm", now, ("p3", 3)),
                _payload("gm", now - timedelta(hours=2), ("p4", 4)),  # older: last_observed_at stays
                _payload("gn", now - timedelta(hours=3), ("p1", 1), ("p2", 2)),  # a new store
            ],
        )
        stores = await conn.fetch(
            """SELECT store_id, group_id, observed, last_observed_at, check_due, last_received_at
               FROM stores WHERE chain = 'batch-g'"""
        )
        groups = await conn.fetch(
            "SELECT group_id, rescrape_requested_at FROM groups WHERE chain = 'batch-g'"
        )
        return (
            {r["store_id"]: tuple(r)[1:] for r in stores},
            {r["group_id"]: r["rescrape_requested_at"] for r in groups},
        )

    stores, groups = asyncio.run(rolled_back(stack, "grouping", work))
    assert stores == {
        "ga": ("g-batch-1", 11, now, False, now),  # the anchor: never due for a check against itself
        "gm": ("g-batch-1", 5 + 4, now, True, now),  # a member: due for a check against its anchor
        "gn": (None, 2, now - timedelta(hours=3), False, now),  # received when the handler says
        "gx": ("g-batch-2", 7, before, False, before),  # no prices: untouched
        "gy": ("g-batch-2", 7, before, False, before),
    }
    assert groups == {"g-batch-1": None, "g-batch-2": asked}, "the anchor's prices answer its re-scrape only"


def test_marking_a_batch_processed_returns_each_new_event_once(stack: Stack) -> None:
    at = datetime.now(UTC) - timedelta(minutes=5)
    seen, first, second = (
        PricesScraped.new(producer="scraper", payload=_payload(store, at, ("p1", 100)))
        for store in ("ga", "gm", "gn")
    )

    async def work(conn: asyncpg.Connection) -> tuple[list[PricesScraped], list[PricesScraped], int]:
        assert await mark_processed_many(conn, [seen]) == [seen]
        fresh = await mark_processed_many(conn, [first, seen, second, first, seen])
        again = await mark_processed_many(conn, [second, first])
        recorded: int = await conn.fetchval(
            "SELECT count(*) FROM processed_events WHERE event_id = ANY($1::uuid[])",
            [seen.event_id, first.event_id, second.event_id],
        )
        return fresh, again, recorded

    fresh, again, recorded = asyncio.run(rolled_back(stack, "grouping", work))
    assert [e.event_id for e in fresh] == [first.event_id, second.event_id]
    assert again == []
    assert recorded == 3


# --- the cycle on PostgreSQL, in a scratch schema, on a test clock --------------------------------
# The decisions are the unit tier's (tests/unit/test_grouping_service_layer.py, on an in-memory
# repository); these run the same use cases on the real SQL, with no waiting on a wall clock.

SCRATCH = "groupingcycle"
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
QUIET = timedelta(seconds=3)
ZONE_A = {f"p{i:02d}": 100 + i for i in range(60)}
ZONE_B = {sku: cents + 13 for sku, cents in ZONE_A.items()}
SPECIAL = {sku: cents + (7 if sku in ("p00", "p01", "p02") else 0) for sku, cents in ZONE_A.items()}


class Cycles:
    """The grouping worker and its handler's use case over a scratch schema, on a settable clock."""

    def __init__(self, db: Database, settings: GroupingSettings) -> None:
        self.db = db
        self.queries = GroupingQueries(db)
        self.now = T0
        self.uow = unit_of_work_factory(db, PostgresGroupingRepository)
        self.policy = settings.policy()
        self.worker = GroupingWorker(
            uow=self.uow,
            counts=self.queries.counts,
            gauges=GroupingGauges.register(CollectorRegistry()),
            policy=settings.policy(),
            every_s=settings.cycle_s,
            clock=lambda: self.now,
        )

    async def scrape(self, store: str, prices: dict[str, int], *, at: datetime) -> None:
        """Claim and fold one page of a store's prices as the handler does, received at `at`."""
        await self.scrape_together({store: prices}, at=at)

    async def scrape_together(self, pages: dict[str, dict[str, int]], *, at: datetime) -> None:
        """Claim and fold pages of several stores in one batch, as the handler does, received at `at`."""
        events = [
            PricesScraped.new(
                producer="scraper",
                payload=PricesScrapedPayload(
                    chain="cyc",
                    store_id=store,
                    source="scrape",
                    observations=tuple(
                        PriceObservation(sku=s, price_cents=c, observed_at=at) for s, c in prices.items()
                    ),
                ),
            )
            for store, prices in pages.items()
        ]
        async with self.uow() as work:
            fresh = await work.claim([*events, *events])
            await service_layer.fold_prices(work, [e.payload for e in fresh], now=at, policy=self.policy)

    async def held(self, store: str) -> dict[str, int]:
        """Return the prices a store holds itself, sku -> cents."""
        rows = await self.db.pool.fetch(
            "SELECT sku, price_cents FROM latest_prices WHERE chain = 'cyc' AND store_id = $1", store
        )
        return {r["sku"]: r["price_cents"] for r in rows}

    async def answered(self, store: str) -> int:
        """Return how many of a member's prices its anchor answered since its last check."""
        count: int = await self.db.pool.fetchval(
            "SELECT answered_since_check FROM stores WHERE chain = 'cyc' AND store_id = $1", store
        )
        return count

    async def cycle(self, now: datetime) -> CycleReport:
        self.now = now
        return await self.worker.tick()

    async def layout(self) -> dict[str, tuple[str, ...]]:
        groups = await self.queries.list_groups(chain="cyc", after=None, limit=100)
        return {group.anchor_store_id: group.members for group in groups}

    async def outbox(self) -> dict[str, int]:
        rows = await self.db.pool.fetch("SELECT topic, count(*) AS n FROM outbox GROUP BY topic")
        return {r["topic"]: r["n"] for r in rows}


@pytest.fixture
async def cycles(stack: Stack) -> AsyncIterator[Cycles]:
    """Grouping's tables (and servicekit's) in an empty schema of the stack's PostgreSQL."""
    dsn = stack.postgres.dsn(database=stack.config.database)
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"DROP SCHEMA IF EXISTS {SCRATCH} CASCADE; CREATE SCHEMA {SCRATCH}")
    await migrate(admin, schema=SCRATCH, directory=KIT_MIGRATIONS, table=KIT_MIGRATIONS_TABLE)
    await migrate(admin, schema=SCRATCH, directory=MIGRATIONS)
    settings = GroupingSettings(service_name=SCRATCH, database_url=dsn)
    db = Database(settings, MIGRATIONS)
    await db.connect()
    try:
        yield Cycles(db, settings)
    finally:
        await db.close()
        await admin.execute(f"DROP SCHEMA {SCRATCH} CASCADE")
        await admin.close()


def _reasons(report: CycleReport) -> list[str]:
    return [
        e.payload.reason if isinstance(e, StoreGroupChanged | RescrapeRequested) else "pruned"
        for e in report.events
    ]


async def test_on_postgres_groups_form_merge_and_members_are_answered_by_the_anchor(cycles: Cycles) -> None:
    for store in ("a1", "a2"):
        await cycles.scrape(store, ZONE_A, at=T0)
    for store in ("b1", "b2", "b3"):
        await cycles.scrape(store, SPECIAL, at=T0)
    report = await cycles.cycle(T0 + QUIET)
    assert await cycles.layout() == {"a1": ("a2",), "b1": ("b2", "b3")}
    assert (report.formed, report.pruned_rows) == (2, 3 * 60)
    counts = await cycles.queries.counts()
    assert (counts.stores, counts.groups, counts.observations_received) == (5, 2, 5 * 60)
    assert (counts.prices_held, counts.prices_answerable) == (2 * 60, 5 * 60)

    t1 = T0 + timedelta(hours=1)
    await cycles.scrape("b1", ZONE_A, at=t1)  # its special ends: 3 of 60 prices change, not a move
    report = await cycles.cycle(t1 + QUIET)

    assert await cycles.layout() == {"b1": ("a1", "a2", "b2", "b3")}
    assert _reasons(report) == [
        "dissolved",
        "health_check",
        "health_check",
        "health_check",
        "merged",
        "pruned",
    ]
    [group] = await cycles.queries.list_groups(chain="cyc", after=None, limit=10)
    assert group.version == 2
    # The merged members were checked against the new anchor in this cycle.
    assert group.verified_at == t1 + QUIET
    answered = await cycles.queries.store_prices(chain="cyc", store_id="b2")
    assert answered is not None
    assert answered.anchor_store_id == "b1"
    assert {(p.sku, p.price_cents, p.answered_by) for p in answered.prices} == {
        (sku, cents, "b1") for sku, cents in ZONE_A.items()
    }
    assert await cycles.outbox() == {
        "groups.changed.v1": 4,
        "prices.pruned.v1": 3,
        "rescrapes.requested.v1": 3,
    }


async def test_on_postgres_a_members_prices_its_anchor_charges_are_answered_not_stored(
    cycles: Cycles,
) -> None:
    for store in ("a1", "m1", "m2"):
        await cycles.scrape(store, ZONE_A, at=T0)
    await cycles.cycle(T0 + QUIET)
    assert await cycles.layout() == {"a1": ("m1", "m2")}

    t1 = T0 + timedelta(hours=1)
    await cycles.scrape("m1", {**ZONE_A, "p00": 999}, at=t1)
    assert (await cycles.held("m1"), await cycles.answered("m1")) == ({"p00": 999}, 59)
    report = await cycles.cycle(t1 + QUIET)
    assert (report.checked, report.split, await cycles.answered("m1")) == (1, 0, 0)

    # One batch: the anchor reprices p01; m1 still charges the old price, m2 the new one.
    t2 = t1 + timedelta(hours=1)
    await cycles.scrape_together(
        {"m1": ZONE_A, "a1": {**ZONE_A, "p01": 555}, "m2": {**ZONE_A, "p01": 555}}, at=t2
    )
    assert await cycles.held("m1") == {"p01": 101}, "p00 is its anchor's again; p01 is not its anchor's new"
    assert await cycles.held("m2") == {}, "judged against the anchor's newest price, in the same batch"
    assert (await cycles.answered("m1"), await cycles.answered("m2")) == (59, 60)

    t3 = t2 + timedelta(days=2)  # the anchor's prices now lag the member's by more than a day
    await cycles.scrape("m2", {**ZONE_A, "p01": 555}, at=t3)
    assert len(await cycles.held("m2")) == 60, "kept for a check against a fresher anchor"


async def test_on_postgres_a_stale_anchor_is_asked_for_once_then_its_members_are_judged(
    cycles: Cycles,
) -> None:
    for store in ("s1", "s2", "s3"):
        await cycles.scrape(store, ZONE_A, at=T0)
    await cycles.cycle(T0 + QUIET)
    t1 = T0 + timedelta(days=8)  # the anchor's prices left the week's window
    for member in ("s2", "s3"):
        await cycles.scrape(member, ZONE_A, at=t1)
    report = await cycles.cycle(t1 + QUIET)
    assert (_reasons(report), report.checked) == (["stale_anchor"], 0)
    [asked] = report.events
    assert isinstance(asked, RescrapeRequested)
    assert (asked.payload.store_id, asked.payload.last_observed_at) == ("s1", T0)

    t2 = t1 + timedelta(hours=1)
    await cycles.scrape("s2", ZONE_A, at=t2)
    assert (await cycles.cycle(t2 + QUIET)).events == [], "one request, not one per member scrape"

    t3 = t2 + timedelta(hours=1)
    await cycles.scrape("s1", ZONE_A, at=t3)  # the anchor's prices answer the request
    report = await cycles.cycle(t3 + QUIET)
    assert (_reasons(report), report.checked, report.pruned_rows) == (["pruned"], 2, 120)
    judged = await cycles.queries.store_group(chain="cyc", store_id="s3")
    assert judged is not None
    assert (judged.anchor_store_id, judged.checked_at, judged.last_observed_at) == ("s1", t3 + QUIET, t1)
    assert (await cycles.outbox())["rescrapes.requested.v1"] == 1


async def test_on_postgres_a_member_splits_one_with_too_few_prices_waits_and_a_moved_anchor_asks(
    cycles: Cycles,
) -> None:
    for store in ("s1", "s2", "s3", "s4"):
        await cycles.scrape(store, ZONE_A, at=T0)
    await cycles.cycle(T0 + QUIET)
    t1 = T0 + timedelta(hours=1)
    await cycles.scrape("s2", {**ZONE_A, "p00": 999, "p01": 999}, at=t1)  # 58 of 60: split
    await cycles.scrape("s3", {"p00": 100, "p01": 101, "p02": 102, "p03": 999}, at=t1)  # too few to judge
    report = await cycles.cycle(t1 + QUIET)

    # s3's three prices equal to its anchor's were answered as they came: pruned on arrival.
    assert (report.checked, report.split, report.formed, report.pruned_rows) == (1, 1, 1, 3)
    assert _reasons(report) == ["split", "formed"]
    assert await cycles.layout() == {"s1": ("s3", "s4"), "s2": ()}
    too_few = await cycles.queries.store_group(chain="cyc", store_id="s3")
    assert too_few is not None
    assert too_few.checked_at == T0 + QUIET, "not judged"
    answered = await cycles.queries.store_prices(chain="cyc", store_id="s3")
    assert answered is not None
    assert [(p.sku, p.answered_by) for p in answered.prices if p.answered_by == "s3"] == [("p03", "s3")]

    t2 = t1 + timedelta(hours=1)
    await cycles.scrape("s1", ZONE_B, at=t2)  # the anchor charges another zone's prices
    report = await cycles.cycle(t2 + QUIET)
    assert [
        (e.payload.store_id, e.payload.reason) for e in report.events if isinstance(e, RescrapeRequested)
    ] == [
        ("s3", "health_check"),
        ("s4", "health_check"),
    ]
    assert (await cycles.cycle(t2 + 2 * QUIET)).rescrapes == 0, "asked once"
