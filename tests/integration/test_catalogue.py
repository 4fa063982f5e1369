"""The catalogue on the real stack: events in, answers out, members through anchors, export pages.

Events are published as their producers would (a chain of its own, so no other test's data
mixes in); the catalogue's answers are read through its API with a token made by the CLI's code.
"""

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import httpx
import pytest

from catalogue import service_layer
from catalogue.domain.answering import Shelf
from catalogue.queries import CatalogueQueries
from catalogue.repository import PostgresCatalogueRepository
from catalogue.views import ExportPage
from contracts import Event
from contracts.events import (
    BargainsChanged,
    MultiBuy,
    PriceObservation,
    PricesScraped,
    ProductObserved,
    StoreGroupChanged,
    SubstitutionsChanged,
)
from contracts.events.v1 import (
    Bargain,
    BargainChange,
    BargainsChangedPayload,
    PricesScrapedPayload,
    ProductObservedPayload,
    StoreGroupChangedPayload,
    Substitute,
    SubstitutionsChangedPayload,
)
from pricestream.stack import Stack
from pricestream.tokens_cli import make_token
from servicekit.kept_reads import KeptReads
from tests.fakes.catalogue import InMemoryCatalogueRepository
from tests.fakes.unit_of_work import FakeUnitOfWork
from testsupport import publish_events, rolled_back

pytestmark = pytest.mark.integration

CHAIN = "cat-test"
E = TypeVar("E", bound=Event)


def _chain() -> str:
    """Return a chain id of this test alone."""
    return f"{CHAIN}-{uuid.uuid4().hex[:6]}"


async def _publish(stack: Stack, events: Iterable[Event]) -> None:
    await publish_events(stack.config.bootstrap_servers, events)


def _prices(
    chain: str, store: str, prices: dict[str, int], at: datetime, multibuys: dict[str, MultiBuy] | None = None
) -> PricesScraped:
    deals = multibuys or {}
    observations = tuple(
        PriceObservation(sku=sku, price_cents=p, observed_at=at, multibuy=deals.get(sku))
        for sku, p in prices.items()
    )
    payload = PricesScrapedPayload(chain=chain, store_id=store, source="ingest", observations=observations)
    return PricesScraped.new(producer="scraper", payload=payload)


def _product(
    chain: str,
    sku: str,
    name: str,
    at: datetime,
    *,
    category: str | None = None,
    shared: str | None = "dairy/milk",
) -> ProductObserved:
    payload = ProductObservedPayload(
        chain=chain,
        sku=sku,
        change="changed",
        name=name,
        size="1L",
        category=category,
        observed_at=at,
        shared_category=shared,
    )
    return ProductObserved.new(producer="scraper", payload=payload)


def _group(chain: str, group: str, version: int, anchor: str, *members: str) -> StoreGroupChanged:
    payload = StoreGroupChangedPayload(
        chain=chain,
        group_id=group,
        group_version=version,
        anchor_store_id=anchor,
        member_store_ids=members,
        reason="formed" if version == 1 else "member_joined",
    )
    return StoreGroupChanged.new(producer="grouping", payload=payload)


async def _moved(client: httpx.AsyncClient, chain: str) -> dict[str, Any] | None:
    price = await _price_at(client, chain, "milk", "m")
    return price if price and price["answered_by"] == "a2" else None


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """Return a client of the catalogue with a token (the higher rate limit)."""
    token = await asyncio.to_thread(make_token, stack, "integration-tests")
    async with httpx.AsyncClient(
        base_url=stack.service_url("catalogue"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        yield client


async def _listed(client: httpx.AsyncClient, path: str, params: dict[str, Any], key: str) -> list[Any]:
    """Return what a list answers; nothing while the catalogue has seen nothing of the chain yet (a 400)."""
    response = await client.get(path, params=params)
    if response.status_code == 400 and "is known" in response.json()["detail"]:
        return []
    listed: list[Any] = response.json()[key]
    return listed


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """Poll check() until it returns something truthy; return that."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await check()
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def _price_at(client: httpx.AsyncClient, chain: str, sku: str, store: str) -> dict[str, Any] | None:
    response = await client.get(f"/v1/products/{chain}/{sku}", params={"store": f"{chain}:{store}"})
    if response.status_code != 200:
        return None
    prices: list[dict[str, Any]] = response.json()["prices"]
    return prices[0] if prices else None


async def _placed(
    stack: Stack, client: httpx.AsyncClient, anchor: str, member: str
) -> tuple[str, dict[str, Any]]:
    """Price milk at an anchor of a new chain, place a member under it; return the chain and the
    member's answer once the catalogue gives one."""
    chain, now = _chain(), datetime.now(UTC) - timedelta(minutes=5)
    await _publish(
        stack,
        [
            _product(chain, "milk", "Farm Milk 1L", now),
            _prices(chain, anchor, {"milk": 310}, now),
            _group(chain, "g1", 1, anchor, member),
        ],
    )
    answer = await _until(lambda: _price_at(client, chain, "milk", member))
    assert answer is not None
    return chain, answer


async def test_a_member_store_is_answered_through_its_anchor_after_pruning(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    # The member's own copy was pruned long ago: only the anchor's prices are current.
    chain, answer = await _placed(stack, client, "anchor", "member")
    assert (answer["store_id"], answer["answered_by"], answer["price_cents"]) == ("member", "anchor", 310)
    assert answer["unit"]["unit_price"]["text"] == "$0.31 per 100mL"
    exported = (await client.get("/v1/export/prices", params={"chain": chain})).json()
    assert [(p["store_id"], p["answered_by"]) for p in exported["prices"]] == [
        ("anchor", "anchor"),
        ("member", "anchor"),
    ]
    assert exported["next_cursor"] is None


async def test_a_members_own_price_stands_until_its_anchors_price_changes(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    chain, t0 = _chain(), datetime.now(UTC) - timedelta(hours=3)
    t1, t2, t3 = t0 + timedelta(hours=1), t0 + timedelta(hours=2), t0 + timedelta(hours=2, minutes=30)

    async def member_price(sku: str, cents: int) -> dict[str, Any] | None:
        price = await _price_at(client, chain, sku, "member")
        return price if price and price["price_cents"] == cents else None

    await _publish(
        stack,
        [
            _product(chain, "milk", "Farm Milk 1L", t0),
            _prices(chain, "anchor", {"milk": 310, "eggs": 500}, t0),
            _group(chain, "g1", 1, "anchor", "member"),
        ],
    )
    # The member is placed and its anchor priced before the member's prices come: published
    # together, they travel on other partitions and could be folded first, as a store alone's.
    assert await _until(lambda: member_price("milk", 310)) is not None
    await _publish(
        stack,
        [
            # A health check saw the member charge its own price for milk, its zone's for eggs
            # (answered by the anchor: not stored twice).
            _prices(chain, "member", {"milk": 290, "eggs": 500}, t1),
            # The anchor, scraped again later, still charges what it did: the member's milk stands.
            _prices(chain, "anchor", {"milk": 310, "eggs": 500}, t2),
        ],
    )
    own = await _until(lambda: member_price("milk", 290))
    assert own is not None
    assert own["answered_by"] == "member"
    # The zone's price changes after the member was seen: the anchor answers again.
    await _publish(stack, [_prices(chain, "anchor", {"milk": 330}, t3)])
    changed = await _until(lambda: member_price("milk", 330))
    assert changed is not None
    assert changed["answered_by"] == "anchor"
    exported = (await client.get("/v1/export/prices", params={"chain": chain, "store": "member"})).json()
    assert {(p["sku"], p["price_cents"], p["answered_by"]) for p in exported["prices"]} == {
        ("milk", 330, "anchor"),
        ("eggs", 500, "anchor"),
    }


async def test_a_store_changing_group_is_answered_by_its_new_anchor(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    chain, now = _chain(), datetime.now(UTC) - timedelta(minutes=5)
    await _publish(
        stack,
        [
            _product(chain, "milk", "Farm Milk 1L", now),
            _prices(chain, "a1", {"milk": 300}, now),
            _prices(chain, "a2", {"milk": 280}, now),
            _group(chain, "g1", 1, "a1", "m"),
        ],
    )
    first = await _until(lambda: _price_at(client, chain, "milk", "m"))
    assert first is not None
    assert first["answered_by"] == "a1"

    await _publish(stack, [_group(chain, "g2", 1, "a2", "m"), _group(chain, "g1", 2, "a1")])

    moved = await _until(lambda: _moved(client, chain))
    assert moved
    assert moved["price_cents"] == 280


async def test_a_renamed_product_is_found_by_its_new_name(stack: Stack, client: httpx.AsyncClient) -> None:
    chain, now = _chain(), datetime.now(UTC) - timedelta(minutes=5)
    await _publish(
        stack,
        [
            _product(chain, "wb", "Weet-Bix Cereal 575g", now - timedelta(hours=1)),
            _product(chain, "ch", "Bega Tasty Cheddar Cheese 500g", now),
            _prices(chain, "s1", {"wb": 450}, now),
        ],
    )

    async def found(query: str) -> list[str]:
        hits = await _listed(client, "/v1/search", {"q": query, "chain": chain}, "results")
        return [hit["product"]["name"] for hit in hits]

    assert await _until(lambda: found("weetbix")) == ["Weet-Bix Cereal 575g"]
    await _publish(stack, [_product(chain, "wb", "Weet-Bix Wholegrain Breakfast 575g", now)])
    renamed = await _until(lambda: found("wholegrain"))
    assert renamed == ["Weet-Bix Wholegrain Breakfast 575g"]
    assert await found("weetbix") == ["Weet-Bix Wholegrain Breakfast 575g"]
    assert await found("cereal") == []
    assert await found("chedar") == ["Bega Tasty Cheddar Cheese 500g"]
    hit = (await client.get("/v1/search", params={"q": "weet bix", "chain": chain})).json()["results"][0]
    assert hit["cheapest"]["price_cents"] == 450


async def test_export_pages_cover_every_fresh_price_once_while_prices_keep_arriving(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    chain, now = _chain(), datetime.now(UTC) - timedelta(minutes=30)
    stores, skus = [f"s{i:02d}" for i in range(12)], [f"p{i:03d}" for i in range(150)]
    stale = now - timedelta(days=8)
    await _publish(
        stack, [_prices(chain, store, {sku: 100 + i for i, sku in enumerate(skus)}, now) for store in stores]
    )
    # A stale price is not exported: the store's last sighting of it is over a week old.
    await _publish(stack, [_prices(chain, "s00", {"old": 999}, stale)])
    expected = {(store, sku) for store in stores for sku in skus}

    async def total() -> bool:
        params: dict[str, Any] = {"chain": chain, "limit": 5000}
        page = await _listed(client, "/v1/export/prices", params, "prices")
        return len(page) == len(expected)

    assert await _until(total, timeout=60)

    async def keep_publishing() -> None:
        for round_ in range(1, 6):
            later = now + timedelta(minutes=round_)
            await _publish(
                stack, [_prices(chain, store, dict.fromkeys(skus, 200 + round_), later) for store in stores]
            )
            await asyncio.sleep(0.1)

    publishing = asyncio.create_task(keep_publishing())
    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"chain": chain, "limit": 97}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/v1/export/prices", params=params)).json()
        ExportPage.model_validate(body)  # the JSON PostgreSQL writes is the documented shape
        seen.extend((p["store_id"], p["sku"]) for p in body["prices"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        await asyncio.sleep(0.05)
    await publishing

    assert len(seen) == len(set(seen)), "a price was exported twice"
    assert set(seen) == expected
    assert pages == -(-len(expected) // 97)
    # The filters filter: one store's export is that store's prices only, and since a time only newer ones.
    one = (
        await client.get("/v1/export/prices", params={"chain": chain, "store": "s03", "limit": 1000})
    ).json()
    assert {p["store_id"] for p in one["prices"]} == {"s03"}
    assert len(one["prices"]) == len(skus)
    since = (now + timedelta(minutes=5)).isoformat()

    async def newest() -> list[dict[str, Any]]:
        params: dict[str, Any] = {"chain": chain, "observed_since": since, "limit": 5000}
        found: list[dict[str, Any]] = (await client.get("/v1/export/prices", params=params)).json()["prices"]
        # The last round was published, not yet necessarily folded in: wait for all of it.
        return found if len(found) == len(expected) else []

    latest = await _until(newest, timeout=60)
    assert len(latest) == len(expected)
    assert {p["price_cents"] for p in latest} == {205}


async def test_a_basket_bargains_and_categories_answer_with_names(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    x, y, now = _chain(), _chain(), datetime.now(UTC) - timedelta(minutes=5)
    # The stack's own substitutions service lists these products too, and the catalogue keeps the
    # newest set: the test's sets are dated after any it publishes meanwhile (within the clock skew).
    later = datetime.now(UTC) + timedelta(minutes=2)
    substitutes = SubstitutionsChangedPayload(
        chain=x,
        sku="milk",
        substitutes=(Substitute(level="L1", chain=y, sku="milk2", score=1.0, reason="same barcode"),),
    )
    bread_substitutes = SubstitutionsChangedPayload(
        chain=x,
        sku="bread",
        substitutes=(
            Substitute(level="L3", chain=y, sku="rolls", score=0.8, reason="same kind"),
            # Cheaper but hardly alike: the basket offers the closest kinds only.
            Substitute(level="L3", chain=y, sku="crackers", score=0.55, reason="same kind"),
        ),
    )
    bargain = Bargain(
        bargain_id=f"discount:{x}:s1:milk",
        kind="discount",
        chain=x,
        store_id="s1",
        sku="milk",
        price_cents=300,
        reference_cents=400,
        score=0.5,
        reason="25% below its usual price",
        observed_at=now,
    )
    await _publish(
        stack,
        [
            _product(x, "milk", "Farm Milk 1L", now),
            _product(y, "milk2", "Farm Milk 1L", now),
            _product(x, "bread", "Crusty Loaf", now, category="Bakery Stuff", shared=None),
            _product(y, "rolls", "Bread Rolls 6 pack", now, shared="bakery/bread"),
            _product(y, "crackers", "Water Crackers 6 pack", now, shared="pantry/biscuits"),
            _prices(x, "s1", {"milk": 300, "bread": 250}, now),
            # Two of y's milk cost less together: the basket buys its two at the offer.
            _prices(
                y,
                "t1",
                {"milk2": 280, "rolls": 199, "crackers": 99},
                now,
                {"milk2": MultiBuy(quantity=2, total_cents=500)},
            ),
            SubstitutionsChanged.new(producer="substitutions", payload=substitutes, occurred_at=later),
            SubstitutionsChanged.new(producer="substitutions", payload=bread_substitutes, occurred_at=later),
            BargainsChanged.new(
                producer="bargains",
                payload=BargainsChangedPayload(
                    chain=x, store_id="s1", changes=(BargainChange(change="appeared", bargain=bargain),)
                ),
            ),
        ],
    )
    basket = {
        "items": [{"chain": x, "sku": "milk", "quantity": 2}, {"chain": x, "sku": "bread", "quantity": 1}],
        "stores": [f"{x}:s1", f"{y}:t1"],
        "max_stores": 2,
    }

    last: list[dict[str, Any]] = []

    async def compared() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.post("/v1/baskets/compare", json=basket)).json()
        last[:] = [body]
        complete = {s["store"]: s for s in body.get("stores", [])}
        # Each store's prices come on a partition of their own: wait for both stores' lines.
        ready = (
            len(complete) == 2
            and complete[f"{x}:s1"]["lines"]
            and complete[f"{y}:t1"]["lines"]
            and complete[f"{y}:t1"]["missing"]
        )
        return body if ready and complete[f"{y}:t1"]["missing"][0]["substitute"] else None

    result = await _until(compared, timeout=60)
    assert result is not None, f"the last answer: {last}"
    totals = {s["store"]: (s["total_cents"], s["complete"]) for s in result["stores"]}
    assert totals == {f"{x}:s1": (850, True), f"{y}:t1": (500, False)}
    assert result["stores"][1]["missing"][0]["substitute"]["product"] == f"{y}:rolls"
    assert result["best_split"]["stores"] == [f"{x}:s1", f"{y}:t1"]
    assert result["best_split"]["total_cents"] == 500 + 250
    milk = next(line for line in result["best_split"]["lines"] if line["product"] == f"{y}:milk2")
    assert (milk["unit_cents"], milk["cost_cents"], milk["multibuy_quantity"]) == (280, 500, 2)
    assert result["saving_cents"] == 850 - 750

    async def bargains() -> list[dict[str, Any]]:
        params = {"chain": x, "category": "dairy"}
        found: list[dict[str, Any]] = (await client.get("/v1/bargains", params=params)).json()["bargains"]
        return found

    # Bargains arrive on a topic of their own: the basket being ready says nothing of them.
    listed = await _until(bargains)
    assert [(b["bargain_id"], b["name"]) for b in listed] == [(f"discount:{x}:s1:milk", "Farm Milk 1L")]
    assert (await client.get("/v1/bargains", params={"chain": x, "kind": "cross_chain"})).json()[
        "bargains"
    ] == []

    categories = (await client.get("/v1/categories")).json()
    dairy = next(node for node in categories["tree"] if node["path"] == "dairy")
    assert "dairy/milk" in [child["path"] for child in dairy["children"]]
    assert dairy["bargains"] >= 1
    assert {"chain": x, "category": "Bakery Stuff", "products": 1} in categories["unmapped"]


async def test_the_database_folds_prices_like_the_in_memory_repository(stack: Stack) -> None:
    """Current runs kept with the prices: batches with repeats and late sightings fold as one by one."""
    chain = _chain()
    rng = random.Random(4)
    start = datetime.now(UTC) - timedelta(days=3)
    sightings = [(store, sku, rng.choice((300, 300, 280, 250)), rng.randrange(48)) for store in ("s1", "s2")
                 for sku in ("milk", "tea", "bread") for _ in range(rng.randrange(1, 7))]  # fmt: skip
    rng.shuffle(sightings)
    events = [
        _prices(chain, store, {sku: price}, start + timedelta(hours=hours)).payload
        for store, sku, price, hours in sightings
    ]
    fake = FakeUnitOfWork(InMemoryCatalogueRepository())
    for event in events:
        async with fake:
            await service_layer.fold_prices(fake, [event])
    keys = list(fake.repo.history)

    async def folded(conn: asyncpg.Connection) -> tuple[Any, Any, Any]:
        work = _InTransaction(conn)
        # Stored first, then batches extend, end, split and bridge the runs already there.
        for batch in (events[:4], events[4:9], events[9:]):
            await service_layer.fold_prices(work, batch)
        queries = CatalogueQueries(conn, fresh_after=start - timedelta(days=1))
        answered = {
            (chain, store, sku): await queries.history(chain=chain, sku=sku, store_ids=[store])
            for _, store, sku in keys
        }
        held = await conn.fetch(
            "SELECT chain, store_id, sku, price_cents, observed_at FROM current_prices WHERE chain = $1",
            chain,
        )
        return await work.repo.histories(keys), answered, held

    stored, answered, held = await rolled_back(stack, "catalogue", folded)

    assert stored == fake.repo.history
    assert {k: [(s.starts_at, s.ends_at, s.price_cents) for s in v] for k, v in answered.items()} == {
        k: [(s.starts_at, s.ends_at, s.price_cents) for s in v] for k, v in fake.repo.history.items()
    }
    assert {(r["chain"], r["store_id"], r["sku"]): (r["price_cents"], r["observed_at"]) for r in held} == {
        k: (p.price_cents, p.observed_at) for k, p in fake.repo.prices.items()
    }
    assert sum(len(runs) for runs in stored.values()) > len(stored) + 3, "not vacuous: runs ended"


async def test_members_answered_by_their_anchor_fold_like_the_in_memory_repository(stack: Stack) -> None:
    """Members' prices their anchor answers, in SQL as in memory: left out, or ended (their run kept)."""
    chain = _chain()
    rng = random.Random(9)
    start = datetime.now(UTC) - timedelta(days=2)

    def sightings(hours: range) -> list[PricesScrapedPayload]:
        return [
            _prices(
                chain, store, {sku: rng.choice((300, 300, 300, 280))}, start + timedelta(hours=hour)
            ).payload
            for hour in hours
            for store in ("a", "m1", "m2")
            for sku in ("milk", "tea", "bread")
        ]

    before, after = sightings(range(0, 6, 2)), sightings(range(6, 30, 3))
    # m3 showed what the anchor did all along: placed, it holds nothing (dropped by store).
    before += [e.model_copy(update={"store_id": "m3"}) for e in before if e.store_id == "a"]
    group = _group(chain, "g1", 1, "a", "m1", "m2", "m3").payload

    async def fold_all(work: Any, shelves: KeptReads[Shelf] | None = None) -> None:
        for event in before:
            await service_layer.fold_prices(work, [event], anchor_shelves=shelves)
        await service_layer.change_group(work, group)
        for event in after:
            await service_layer.fold_prices(work, [event], anchor_shelves=shelves)

    fake = FakeUnitOfWork(InMemoryCatalogueRepository())
    async with fake:
        await fold_all(fake)

    async def folded(conn: asyncpg.Connection) -> tuple[Any, Any]:
        work = _InTransaction(conn)
        # Anchors' prices kept between batches under the SQL's marks: the same answers as reading them.
        await fold_all(work, KeptReads())
        held = await conn.fetch(
            "SELECT chain, store_id, sku, price_cents, observed_at FROM current_prices WHERE chain = $1",
            chain,
        )
        return await work.repo.histories(list(fake.repo.history)), held

    stored, held = await rolled_back(stack, "catalogue", folded)

    assert {(r["chain"], r["store_id"], r["sku"]): (r["price_cents"], r["observed_at"]) for r in held} == {
        k: (p.price_cents, p.observed_at) for k, p in fake.repo.prices.items()
    }
    assert stored == fake.repo.history
    assert not [key for key in fake.repo.prices if key[1] == "m3"]
    members = [key for key in fake.repo.history if key[1] != "a"]
    assert len([key for key in members if key in fake.repo.prices]) < len(members), "not vacuous: answered"
    assert any(key in fake.repo.prices for key in members), "not vacuous: a member's own price"


class _InTransaction:
    """A unit of work over a connection whose transaction the test owns (and rolls back)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.repo = PostgresCatalogueRepository(conn)

    async def claim(self, events: Sequence[E]) -> list[E]:
        return list(events)

    def publish(self, events: Iterable[Event]) -> None:
        pass

    async def try_lock(self, name: str) -> bool:
        return True

    def correlate(self, correlation_id: UUID) -> None:
        pass


async def test_a_chain_never_seen_is_a_400_naming_it_and_the_chain_meant(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    chain, _ = await _placed(stack, client, "s1", "m1")
    typo = chain[:-1] + ("y" if chain.endswith("x") else "x")
    refused = [
        await client.get("/v1/search", params={"q": "milk", "chain": typo}),
        await client.get("/v1/bargains", params={"chain": typo}),
        await client.get("/v1/export/prices", params={"chain": typo}),
    ]
    assert [r.status_code for r in refused] == [400, 400, 400]
    assert [[p["name"] for p in r.json()["invalid-params"]] for r in refused] == [["chain"]] * 3
    assert all(f"no chain '{typo}' is known (did you mean {chain}" in r.json()["detail"] for r in refused)
    # The chain itself is answered.
    found = await client.get("/v1/search", params={"q": "milk", "chain": chain})
    assert [hit["product"]["sku"] for hit in found.json()["results"]] == ["milk"]
    assert (await client.get("/v1/bargains", params={"chain": chain})).status_code == 200


async def test_a_store_never_priced_or_a_product_never_seen_is_a_400_naming_it(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    # A member never priced itself is known from its placement.
    chain, _ = await _placed(stack, client, "s1", "m1")

    refused = [
        await client.get(f"/v1/products/{chain}/milk", params={"store": f"{chain}:s9"}),
        await client.get("/v1/bargains", params={"chain": chain, "store": "s9"}),
        await client.get("/v1/export/prices", params={"chain": chain, "store": "s9"}),
        await client.post(
            "/v1/baskets/compare",
            json={
                "items": [{"chain": chain, "sku": "milk", "quantity": 1}],
                "stores": [f"{chain}:s1", f"{chain}:s9"],
            },
        ),
    ]
    assert [r.status_code for r in refused] == [400, 400, 400, 400]
    names = [[p["name"] for p in r.json()["invalid-params"]] for r in refused]
    assert names == [["store"], ["store"], ["store"], ["stores"]]
    # The reason says which store is unknown and which the catalogue does know.
    assert all("'s9'" in r.json()["detail"] and "has m1, s1)" in r.json()["detail"] for r in refused)

    typo = await client.post(
        "/v1/baskets/compare",
        json={
            "items": [
                {"chain": chain, "sku": "milk", "quantity": 1},
                {"chain": chain, "sku": "mlik", "quantity": 1},
            ],
            "stores": [f"{chain}:s1"],
        },
    )
    assert typo.status_code == 400
    assert [p["name"] for p in typo.json()["invalid-params"]] == ["items.1"]
    assert "no product 'mlik'" in typo.json()["detail"]

    known = await client.post(
        "/v1/baskets/compare",
        json={"items": [{"chain": chain, "sku": "milk", "quantity": 1}], "stores": [f"{chain}:m1"]},
    )
    assert known.status_code == 200
    assert known.json()["best_store"] == f"{chain}:m1"
    exported = await client.get("/v1/export/prices", params={"chain": chain, "store": "m1"})
    assert [(p["sku"], p["answered_by"]) for p in exported.json()["prices"]] == [("milk", "s1")]
