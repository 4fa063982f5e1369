"""The substitutions service on the real stack: the world's equivalences, incremental updates, rebuild."""

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import CODEC, topic
from contracts.events import ProductObserved, SubstitutionsChanged
from contracts.events.v1 import ProductObservedPayload
from pricestream.stack import Stack
from servicekit.db import Database
from servicekit.settings import ServiceSettings
from servicekit.unit_of_work import unit_of_work_factory
from substitutions.bootstrap import MIGRATIONS
from substitutions.domain.catalogue import Description, SubstituteRow
from substitutions.domain.matching import Policy
from substitutions.queries import NamedSubstitute, SubstitutionsQueries
from substitutions.repository import PostgresSubstitutionsRepository
from substitutions.service_layer import Matcher
from tests.fakes.substitutions import HashingEncoder
from testsupport import rolled_back, wait_until

pytestmark = pytest.mark.integration

OBSERVED = topic("products.observed.v1")
CHANGED = topic("substitutions.changed.v1")


def _url(stack: Stack) -> str:
    return stack.service_process("substitutions").url


def _substitutes(stack: Stack, chain: str, sku: str, **params: Any) -> list[dict[str, Any]] | None:
    response = httpx.get(f"{_url(stack)}/v1/products/{chain}/{sku}/substitutions", params=params, timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()["substitutes"]
    return rows


def _stats(stack: Stack) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{_url(stack)}/v1/stats", timeout=10).json()
    return stats


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, list[str]]:
    """Have every product observed by a full scrape (an earlier one, or one here); wait for substitutions."""
    shop = stack.config.storefront_url
    chains = [c["chain"] for c in httpx.get(f"{shop}/v1/chains").json()["chains"]]
    skus = {
        chain: sorted(
            {
                r["sku"]
                for r in httpx.get(
                    f"{shop}/_truth/prices", params={"chain": chain, "day": 0}, timeout=30
                ).json()["prices"]
            }
        )
        for chain in chains
    }
    # A full scrape by an earlier test on this stack observed them all already; else scrape one.
    if not asyncio.run(rolled_back(stack, "substitutions", lambda conn: _holds_all(conn, skus))):
        scraper = stack.service_process("scraper").url
        body = {"scope": "all", "day": 0}
        run_id = httpx.post(f"{scraper}/v1/runs", json=body, timeout=60).json()["run_id"]
        assert wait_until(
            lambda: httpx.get(f"{scraper}/v1/runs/{run_id}").json()["status"] != "running", timeout=180
        )
    total = sum(len(s) for s in skus.values())
    started = time.monotonic()
    # Without a scrape of its own to wait for, the whole backlog of an earlier scrape is waited for here.
    assert wait_until(lambda: _stats(stack)["matcher"]["products"] >= total, timeout=420), _stats(stack)
    print(f"substitutions held {total} products {time.monotonic() - started:.1f} s after the scrape was done")
    return skus


async def _holds_all(conn: asyncpg.Connection, skus: dict[str, list[str]]) -> bool:
    """Tell whether substitutions stored every product of the world."""
    rows = await conn.fetch("SELECT chain, sku FROM products WHERE chain = ANY($1::text[])", list(skus))
    held = {(row["chain"], row["sku"]) for row in rows}
    return all((chain, sku) in held for chain, chain_skus in skus.items() for sku in chain_skus)


def test_the_worlds_equivalences_are_served_at_l1_and_l2(stack: Stack, world: dict[str, list[str]]) -> None:
    shop = stack.config.storefront_url
    equivalences = httpx.get(f"{shop}/_truth/equivalences").json()["equivalences"]
    truth: dict[tuple[str, str, str, str], str] = {}
    for e in equivalences:
        truth[(e["chain_a"], e["sku_a"], e["chain_b"], e["sku_b"])] = e["level"]
        truth[(e["chain_b"], e["sku_b"], e["chain_a"], e["sku_a"])] = e["level"]
    lists = {(chain, sku): _substitutes(stack, chain, sku) for chain, skus in world.items() for sku in skus}
    assert all(rows is not None for rows in lists.values())
    identical = [(key, row) for key, rows in lists.items() for row in rows or [] if row["level"] == "L1"]
    correct = sum(truth.get((*key, row["chain"], row["sku"])) in ("L1", "L2") for key, row in identical)
    first_same_item: dict[tuple[str, str, str], str] = {}
    for (chain, sku), rows in lists.items():
        for row in rows or []:
            if row["level"] in ("L1", "L2"):
                first_same_item.setdefault((chain, sku, row["chain"]), row["sku"])
    pairs = [key for key, level in truth.items() if level in ("L1", "L2")]
    found = sum(first_same_item.get((a, sku_a, b)) == sku_b for a, sku_a, b, sku_b in pairs)
    stats = _stats(stack)
    print(
        f"L1 precision {correct}/{len(identical)}, L1+L2 recall@1 {found}/{len(pairs)}; "
        f"incremental p50 {stats['matcher']['observe_ms_p50']} ms, "
        f"p99 {stats['matcher']['observe_ms_p99']} ms"
    )
    assert correct / len(identical) >= 0.99
    assert found / len(pairs) >= 0.95
    levels = _substitutes(stack, *pairs[0][:2], level="L1")
    assert levels
    assert {row["level"] for row in levels} == {"L1"}


def test_unknown_product_is_404_and_a_bad_level_400(stack: Stack) -> None:
    assert _substitutes(stack, "nochain", "0") is None
    response = httpx.get(f"{_url(stack)}/v1/products/x/y/substitutions", params={"level": "L9"})
    assert response.status_code == 400


async def _publish(stack: Stack, payload: ProductObservedPayload) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.config.bootstrap_servers)
    await producer.start()
    try:
        record = CODEC.encode(ProductObserved.new(producer="scraper", payload=payload))
        await producer.send_and_wait(
            OBSERVED.name, record.value, key=record.key, headers=list(record.headers)
        )
    finally:
        await producer.stop()


async def _changes_for(
    stack: Stack, keys: set[str], timeout: float = 60.0
) -> dict[str, SubstitutionsChanged]:
    """Read SubstitutionsChanged from the start of the topic until the newest one of each key is seen."""
    consumer = AIOKafkaConsumer(
        CHANGED.name,
        bootstrap_servers=stack.config.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    newest: dict[str, SubstitutionsChanged] = {}
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    event = CODEC.decode(record.value, dict(record.headers))
                    if isinstance(event, SubstitutionsChanged) and event.partition_key() in keys:
                        newest[event.partition_key()] = event
            if not batch and set(newest) == keys:
                break
    finally:
        await consumer.stop()
    return newest


def test_a_new_product_links_both_ways_and_a_rename_unlinks(
    stack: Stack, world: dict[str, list[str]]
) -> None:
    shop = stack.config.storefront_url
    chain, other_chain = sorted(world)[:2]
    known = next(
        p
        for sku in world[chain]
        if (p := httpx.get(f"{shop}/v1/chains/{chain}/products/{sku}").json())
        .get("barcode", "")
        .startswith("93")
    )
    new_sku = "9990001"
    now = datetime.now(UTC)
    same = ProductObservedPayload(
        chain=other_chain,
        sku=new_sku,
        change="new",
        name=known["name"],
        brand=known.get("brand"),
        size=known.get("size"),
        category=known.get("category"),
        barcode=known["barcode"],
        observed_at=now - timedelta(minutes=5),
    )
    asyncio.run(_publish(stack, same))
    assert wait_until(
        lambda: any(r["sku"] == new_sku for r in _substitutes(stack, chain, known["sku"]) or []), timeout=60
    )
    own = _substitutes(stack, other_chain, new_sku) or []
    assert {"level": "L1", "chain": chain, "sku": known["sku"]}.items() <= next(
        r for r in own if r["sku"] == known["sku"]
    ).items()

    renamed = same.model_copy(
        update={
            "change": "changed",
            "name": "Garden Hose Reel 30m",
            "brand": "Hoselink",
            "size": "30m",
            "category": "household",
            "barcode": "9300000000017",
            "observed_at": now,
        }
    )
    asyncio.run(_publish(stack, renamed))
    assert wait_until(
        lambda: all(r["sku"] != new_sku for r in _substitutes(stack, chain, known["sku"]) or []), timeout=60
    )
    # An older observation arriving late changes nothing.
    asyncio.run(_publish(stack, same.model_copy(update={"observed_at": now - timedelta(minutes=10)})))
    newest = asyncio.run(_changes_for(stack, {f"{other_chain}:{new_sku}", f"{chain}:{known['sku']}"}))
    assert all(s.sku != known["sku"] for s in newest[f"{other_chain}:{new_sku}"].payload.substitutes)
    assert all(s.sku != new_sku for s in newest[f"{chain}:{known['sku']}"].payload.substitutes)
    time.sleep(2)
    assert all(r["sku"] != new_sku for r in _substitutes(stack, chain, known["sku"]) or [])


def test_rebuild_from_the_cli_shows_progress_and_encodes_each_name_once(
    stack: Stack, world: dict[str, list[str]]
) -> None:
    cli = Path(sys.executable).with_name("pricestream")
    runs = []
    for _ in range(2):
        result = subprocess.run(
            [str(cli), "substitutions", "rebuild", "--home", str(stack.config.home)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        runs.append(_stats(stack)["matcher"]["rebuild"])
        print(result.stdout[-1200:])
    first, second = runs
    print(
        f"rebuild of {first['products']} products: {first['seconds']} s, {first['encoded']} names encoded, "
        f"{first['changed']} lists changed; again: {second['seconds']} s, {second['changed']} changed"
    )
    assert first["status"] == second["status"] == "done"
    assert first["products"] >= sum(len(skus) for skus in world.values())
    # Names are cached by (model, name): the second rebuild encodes none and changes nothing.
    assert second["encoded"] == 0
    assert second["changed"] == 0


# --- the SQL on its own, in a scratch schema of the stack's PostgreSQL ---------------------------

SCRATCH = "substitutions_sqltest"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[Database]:
    """A connected Database over an empty schema with the substitutions migrations applied."""
    dsn = stack.postgres.dsn(database=stack.config.database)
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"DROP SCHEMA IF EXISTS {SCRATCH} CASCADE; CREATE SCHEMA {SCRATCH}")
    database = Database(ServiceSettings(service_name=SCRATCH, database_url=dsn), MIGRATIONS)
    await database.connect()
    await database.migrate()
    yield database
    await database.close()
    await admin.execute(f"DROP SCHEMA {SCRATCH} CASCADE")
    await admin.close()


async def test_the_repository_keeps_the_newest_description_caches_vectors_and_round_trips_lists(
    db: Database,
) -> None:
    uow = unit_of_work_factory(db, PostgresSubstitutionsRepository)
    milk = Description("valueway", "milk", "Pauls Full Cream Milk", brand="Pauls", size="2L")
    renamed = Description("valueway", "milk", "Pauls Lite Milk", brand="Pauls", size="2L")
    rows = [
        SubstituteRow(level="L1", chain="freshmart", sku="milk", score=1.0, reason="same barcode 93"),
        SubstituteRow(level="L3", chain="freshmart", sku="lite", score=0.6123, reason="same kind"),
    ]
    async with uow() as work:
        repo = work.repo
        assert await repo.upsert_product(description=milk, observed_at=T0)
        assert not await repo.upsert_product(description=milk, observed_at=T0 + timedelta(hours=1))
        assert not await repo.upsert_product(description=renamed, observed_at=T0 - timedelta(hours=1))
        assert await repo.upsert_product(description=renamed, observed_at=T0 + timedelta(hours=2))
        await repo.upsert_product(description=Description("freshmart", "milk", "Milk"), observed_at=T0)
        assert await repo.products() == [Description("freshmart", "milk", "Milk"), renamed]
        # A description that differs only by its shared category is a change, and is kept.
        mapped = replace(renamed, shared_category="dairy/milk")
        assert await repo.upsert_product(description=mapped, observed_at=T0 + timedelta(hours=3))
        assert (await repo.products())[1] == mapped

        first = np.linspace(0, 1, 8, dtype=np.float32)
        await repo.store_vectors(model="m", vectors={"milk": first})
        await repo.store_vectors(model="m", vectors={"milk": first[::-1].copy(), "lite": first})
        cached = await repo.cached_vectors(model="m", texts=["milk", "lite", "bread"])
        assert set(cached) == {"milk", "lite"}
        np.testing.assert_array_equal(cached["milk"], first)  # a cached name is never re-written

        await repo.save_lists(lists={("valueway", "milk"): rows, ("freshmart", "milk"): []}, computed_at=T0)
        assert await repo.lists() == {("valueway", "milk"): rows, ("freshmart", "milk"): []}
        await repo.save_lists(lists={("valueway", "milk"): rows[:1]}, computed_at=T0 + timedelta(days=1))

    async with db.pool.acquire() as conn:
        kept = await conn.fetchval("SELECT observed_at FROM products WHERE chain = 'valueway'")
        computed = await conn.fetchval("SELECT computed_at FROM substitutes WHERE chain = 'valueway'")
        assert (kept, computed) == (T0 + timedelta(hours=3), T0 + timedelta(days=1))
        queries = SubstitutionsQueries(conn)
        found = await queries.substitutes(chain="valueway", sku="milk")
        assert found is not None
        assert (found.name, found.substitutes) == (
            "Pauls Lite Milk",
            [NamedSubstitute("L1", "freshmart", "milk", 1.0, "same barcode 93", "Milk")],
        )
        assert await queries.substitutes(chain="valueway", sku="milk", levels=["L3"]) is not None
        assert await queries.substitutes(chain="nowhere", sku="milk") is None
        figures = await queries.figures()
        assert (figures.products, figures.embeddings, figures.lists) == (2, 2, 2)
        assert figures.substitutes == {"L1": 1}


async def test_the_matcher_commits_lists_and_events_together_through_the_real_unit_of_work(
    db: Database,
) -> None:
    matcher = Matcher(
        uow=unit_of_work_factory(db, PostgresSubstitutionsRepository),
        encoder_factory=HashingEncoder,
        policy=Policy(),
    )
    await matcher.start()
    for chain in ("freshmart", "valueway"):
        milk = Description(
            chain, "milk", "Pauls Full Cream Milk", brand="Pauls", size="2L", barcode="9300000000011"
        )
        async with matcher.unit_of_work() as work:
            await matcher.observe(work, description=milk, observed_at=T0, now=T0)

    async with db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 3
        stored = await SubstitutionsQueries(conn).substitutes(chain="freshmart", sku="milk")
    assert stored is not None
    assert [(s.level, s.chain, s.sku) for s in stored.substitutes] == [("L1", "valueway", "milk")]
