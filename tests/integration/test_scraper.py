"""The scraper against the simulated storefront: complete, faithful, resumable, polite."""

import asyncio
import functools
import json
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import CODEC, ContractError, Event, topic, topic_for
from contracts.events import PricesScraped, RescrapeRequested, Sighting, StoreGroupChanged
from contracts.events.v1 import RescrapeRequestedPayload, StoreGroupChangedPayload
from pricestream.processes import ManagedProcess
from pricestream.stack import Stack
from scraper.repository import PostgresScraperRepository
from testsupport import wait_until

pytestmark = pytest.mark.integration

PRICES = topic("prices.scraped.v1")
Prices = dict[tuple[str, str, str], tuple[int, int | None]]


def _scraper(stack: Stack) -> str:
    return stack.service_process("scraper").url


def _start_run(stack: Stack, **body: Any) -> str:
    if "day" in body:
        # Chains served as Coles or Woolworths price the shop's day, as a real site prices today.
        clock = httpx.post(f"{stack.config.storefront_url}/v1/clock", json={"day": body["day"]}, timeout=10)
        clock.raise_for_status()
    response = httpx.post(f"{_scraper(stack)}/v1/runs", json=body, timeout=60)
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


def _run(stack: Stack, run_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{_scraper(stack)}/v1/runs/{run_id}", timeout=10).json()
    return body


def _wait_finished(stack: Stack, run_id: str, timeout: float = 180) -> dict[str, Any]:
    assert wait_until(lambda: _run(stack, run_id)["status"] != "running", timeout=timeout), _run(
        stack, run_id
    )
    return _run(stack, run_id)


async def _published(stack: Stack, run_id: str, expected_observations: int, timeout: float = 60) -> Prices:
    """Read the run's published prices and was-prices until all its observations arrived."""
    observed = await published_observations(stack, run_id, expected_observations, timeout)
    return {key: (o.price_cents, o.was_price_cents) for key, o in observed.items()}


async def published_observations(
    stack: Stack, run_id: str, expected_observations: int, timeout: float = 60
) -> dict[tuple[str, str, str], Sighting]:
    """Read the run's PricesScraped events from the topic until as many distinct observations arrived.

    Distinct, since a scraper killed after its outbox relay sent an event but before it marked it
    sent sends it again on restart: counting those twice would stop the read a page short.
    """
    consumer = AIOKafkaConsumer(
        PRICES.name, bootstrap_servers=stack.config.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    prices: dict[tuple[str, str, str], Sighting] = {}
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(prices) < expected_observations and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        event = CODEC.decode(record.value, dict(record.headers))
                    except ContractError:
                        continue  # Other tests put poison on this topic; consumers skip it too.
                    assert isinstance(event, PricesScraped)
                    if event.payload.run_id != run_id:
                        continue
                    for o in event.payload.sightings():
                        prices[(event.payload.chain, event.payload.store_id, o.sku)] = o
    finally:
        await consumer.stop()
    return prices


def _chains(stack: Stack) -> list[str]:
    # From the truth, which is never throttled nor failed like the shop's /v1/chains.
    return list(httpx.get(f"{stack.config.storefront_url}/_truth/zones", timeout=30).json()["chains"])


def _truth(stack: Stack, day: int, chains: list[str] | None = None) -> Prices:
    shop = stack.config.storefront_url
    truth: Prices = {}
    for chain in chains or _chains(stack):
        rows = httpx.get(f"{shop}/_truth/prices", params={"chain": chain, "day": day}, timeout=30).json()[
            "prices"
        ]
        for row in rows:
            truth[(chain, row["store_id"], row["sku"])] = (row["price_cents"], row["was_price_cents"])
    return truth


def _page_fetches(stack: Stack, day: int) -> dict[str, int]:
    pages: dict[str, int] = httpx.get(f"{stack.config.storefront_url}/_truth/requests").json()["pages"]
    return {key: count for key, count in pages.items() if key.endswith(f"/{day}")}


@pytest.fixture
def shop_control(stack: Stack) -> Iterator[None]:
    """Restore the storefront's failure settings after a test that changes them."""
    before = httpx.get(f"{stack.config.storefront_url}/_control").json()
    yield
    httpx.post(f"{stack.config.storefront_url}/_control", json=before)


async def test_a_full_scrape_publishes_exactly_the_storefronts_prices(stack: Stack) -> None:
    run_id = _start_run(stack, scope="all", day=3)
    summary = _wait_finished(stack, run_id)
    assert summary["status"] == "finished", summary
    truth = _truth(stack, day=3)
    assert summary["observations"] == len(truth)
    published = await _published(stack, run_id, len(truth))
    print(
        f"\nfull scrape: {summary['stores']} stores, {summary['pages_done']} pages, {len(published)} prices"
    )
    assert published == truth
    assert await _fetched_twice(stack, 3, run_id) == 0, "no page was fetched twice"
    conn = await _scraper_conn(stack)
    try:
        # Other tests on this stack ingest products of made-up chains: only the shop's count here.
        unmapped = await conn.fetch(
            """SELECT DISTINCT chain, category FROM products
               WHERE shared_category IS NULL AND chain = ANY($1::text[])""",
            _chains(stack),
        )
    finally:
        await conn.close()
    assert [tuple(row) for row in unmapped] == [], "every simulated category is on the shared tree"


async def _scraper_conn(stack: Stack) -> asyncpg.Connection:
    return await asyncpg.connect(stack.service_process("scraper").env["SCRAPER_DATABASE_URL"])


async def test_a_stopped_scraper_resumes_its_run_after_sigterm_and_after_kill_9(stack: Stack) -> None:
    # One run of one chain, stopped twice: gracefully at a quarter, then killed at half.
    chain, day = _chains(stack)[0], 4
    run_id = _start_run(stack, scope="all", day=day, chains=[chain])
    total = _run(stack, run_id)["pages_total"]
    done_before = 0
    for sig, share in ((signal.SIGTERM, 1 / 4), (signal.SIGKILL, 1 / 2)):
        assert wait_until(functools.partial(_has_done, stack, run_id, total * share), timeout=120)
        process = stack.services["scraper"]
        assert process.pid is not None
        os.kill(process.pid, sig)
        assert wait_until(functools.partial(_gone, process), timeout=30)
        conn = await _scraper_conn(stack)
        try:
            done_at_stop = await conn.fetchval(
                "SELECT count(*) FROM scrape_tasks WHERE run_id = $1 AND done_at IS NOT NULL", run_id
            )
        finally:
            await conn.close()
        name = signal.Signals(sig).name
        assert done_before < done_at_stop < total, f"{name}: stopped mid-run"
        print(f"\n{name}: stopped after {done_at_stop}/{total} pages")
        # So far the run resumed only from the graceful stop, which finished its in-flight pages.
        assert await _fetched_twice(stack, day, run_id) == 0, "after a graceful stop nothing is fetched again"
        stack.start_service("scraper")
        done_before = done_at_stop

    summary = _wait_finished(stack, run_id)
    assert summary["status"] == "finished"
    assert summary["pages_done"] == total
    truth = _truth(stack, day=day, chains=[chain])
    assert await _published(stack, run_id, len(truth)) == truth, "no observation missing, none wrong"
    twice = await _fetched_twice(stack, day, run_id)
    print(f"fetched twice after the kill: {twice}")
    workers = 8
    assert twice <= workers, "only pages in flight at the kill are fetched again"


def _has_done(stack: Stack, run_id: str, pages: float) -> bool:
    return bool(_run(stack, run_id)["pages_done"] >= pages)


def _gone(process: ManagedProcess) -> bool:
    return not process.running()


async def _fetched_twice(stack: Stack, day: int, run_id: str) -> int:
    """Count the pages of `day` fetched more than once, leaving out stores that later runs fetched anew."""
    # The shop first: a run that fetched a page was planned before, so the scraper knows it by then.
    fetches = _page_fetches(stack, day=day)
    rescraped = await _rescraped(stack, run_id)
    # A page's key starts with its chain and store: "chain/store/category/page/day".
    return sum(1 for key, count in fetches.items() if count > 1 and key.rsplit("/", 3)[0] not in rescraped)


async def _rescraped(stack: Stack, run_id: str) -> set[str]:
    """Return the stores ("chain/store") of runs planned after `run_id`.

    Grouping asks for a re-scrape of anchors it finds stale, and the scraper starts that run
    as soon as the test's run ends: its pages are the shop's today's pages too.
    """
    conn = await _scraper_conn(stack)
    try:
        rows = await conn.fetch(
            """SELECT DISTINCT t.chain, t.store_id FROM scrape_tasks t JOIN scrape_runs r USING (run_id)
               WHERE r.started_at > (SELECT started_at FROM scrape_runs WHERE run_id = $1)""",
            run_id,
        )
    finally:
        await conn.close()
    return {f"{row['chain']}/{row['store_id']}" for row in rows}


async def test_a_storm_of_429_and_5xx_is_survived(stack: Stack, shop_control: None) -> None:
    shop = stack.config.storefront_url
    # 20 a second: below what the scraper asks even of a Coles-like site's bigger, slower pages.
    httpx.post(f"{shop}/_control", json={"error_rate": 0.1, "rate_limit_rps": 20})
    chain = _chains(stack)[0]
    run_id = _start_run(stack, scope="all", day=6, chains=[chain])
    summary = _wait_finished(stack, run_id, timeout=300)
    assert summary["status"] == "finished", summary
    metrics = httpx.get(f"{_scraper(stack)}/metrics").text
    retries = {
        line.split('reason="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("scraper_fetch_retries_total{")
    }
    requests = httpx.get(f"{shop}/_truth/requests").json()
    sent = f"shop sent {requests['throttled']} 429 and {requests['errors']} 5xx"
    print(f"\nstorm: retries by reason {retries}; {sent}")
    assert retries.get("503", 0) > 0
    assert retries.get("429", 0) > 0
    assert requests["errors"] > 0
    assert requests["throttled"] > 0
    truth = _truth(stack, day=6, chains=[chain])
    assert await _published(stack, run_id, len(truth)) == truth


async def test_bad_rows_are_quarantined_and_duplicates_skipped(stack: Stack, tmp_path: Path) -> None:
    rows = [
        {"sku": "q-1", "price_cents": 250, "observed_at": "2026-11-01T10:00:00Z"},
        {"sku": "q-2", "price_cents": -5, "observed_at": "2026-11-01T10:00:00Z"},
        {"price_cents": 100, "observed_at": "2026-11-01T10:00:00Z"},
        {"sku": "q-3", "price": 1.5, "unit": "parsecs", "observed_at": "2026-11-01T10:00:00Z"},
        {"sku": "q-4", "price": 2.5, "observed_at": "2026-11-01T10:00:00"},
    ]
    auth = {"Authorization": f"Bearer {stack.ingest_token}"}
    body = {"rows": rows, "chain": "testchain", "store_id": "q1", "source": "import"}
    url = f"{_scraper(stack)}/v1/observations"
    first = httpx.post(url, json=body, headers=auth).json()
    assert first == {
        "accepted": 1,
        "quarantined": 4,
        "duplicates": 0,
        "events": 1,
        # The sender learns which rows were refused and why, by their index in `rows`.
        "problems": [
            {"row": 1, "reason": "negative price"},
            {"row": 2, "reason": "missing sku"},
            {"row": 3, "reason": "unknown unit 'parsecs'"},
            {"row": 4, "reason": "timestamp has no timezone"},
        ],
    }
    again = httpx.post(url, json=body, headers=auth).json()
    assert again["accepted"] == 0
    assert again["duplicates"] == 1
    conn = await _scraper_conn(stack)
    try:
        reasons = {
            r["reason"]
            for r in await conn.fetch(
                "SELECT reason FROM quarantine WHERE raw->>'sku' LIKE 'q-%' OR raw->>'sku' IS NULL"
            )
        }
        forgotten = await _tidied_long_after(conn)
    finally:
        await conn.close()
    assert {"negative price", "missing sku", "unknown unit 'parsecs'", "timestamp has no timezone"} <= reasons
    assert json.dumps(rows)  # rows stay JSON-serialisable for the quarantine
    assert forgotten == (1, 2 * 4, 0), "the run with its page, and the bad rows of both posts"


async def _tidied_long_after(conn: asyncpg.Connection) -> tuple[int, int, int]:
    """Age this test's quarantined rows and an ended run of its own, tidy, and count what went."""
    now = datetime.now(UTC)
    await conn.execute(
        """UPDATE quarantine SET received_at = $1 WHERE raw->>'sku' LIKE 'q-%' OR raw->>'sku' IS NULL""",
        now - timedelta(days=91),
    )
    await conn.execute(
        """INSERT INTO scrape_runs (run_id, scope, status, started_at, finished_at)
           VALUES ('run-tidy-test', 'plan', 'finished', $1, $1)""",
        now - timedelta(days=31),
    )
    await conn.execute(
        """INSERT INTO scrape_tasks (run_id, chain, store_id, category, page, reason)
           VALUES ('run-tidy-test', 'testchain', 'q1', 'dairy', 1, 'full')"""
    )
    runs, quarantined = await PostgresScraperRepository(conn).forget_old(
        runs_before=now - timedelta(days=30), quarantine_before=now - timedelta(days=90)
    )
    pages_left: int = await conn.fetchval("SELECT count(*) FROM scrape_tasks WHERE run_id = 'run-tidy-test'")
    return runs, quarantined, pages_left


async def _produce(stack: Stack, event: Event) -> None:
    record = CODEC.encode(event)
    producer = AIOKafkaProducer(bootstrap_servers=stack.config.bootstrap_servers)
    await producer.start()
    try:
        name = topic_for(type(event)).name
        await producer.send_and_wait(name, record.value, key=record.key, headers=list(record.headers))
    finally:
        await producer.stop()


def _chain_stores(stack: Stack) -> tuple[str, list[str]]:
    shop = stack.config.storefront_url
    chain = httpx.get(f"{shop}/v1/chains").json()["chains"][-1]["chain"]
    return chain, [s["id"] for s in httpx.get(f"{shop}/v1/chains/{chain}/stores").json()["stores"]]


async def test_groups_shape_the_plan_and_a_rescrape_request_is_served(stack: Stack) -> None:
    chain, stores = _chain_stores(stack)
    anchor, members = stores[0], stores[1:]
    # Make every store of the chain known to the scraper first.
    assert _wait_finished(stack, _start_run(stack, scope="all", chains=[chain]))["status"] == "finished"
    group = StoreGroupChangedPayload(
        chain=chain,
        group_id=f"{chain}-g-test",
        group_version=1,
        anchor_store_id=anchor,
        member_store_ids=tuple(members),
        reason="formed",
    )
    await _produce(stack, StoreGroupChanged.new(producer="test", payload=group))

    conn = await _scraper_conn(stack)
    try:
        in_group = "SELECT count(*) FROM stores WHERE group_id = $1"
        for _ in range(100):
            if await conn.fetchval(in_group, group.group_id) == len(stores):
                break
            await asyncio.sleep(0.2)
        rows = await conn.fetch("SELECT store_id, role FROM stores WHERE chain = $1", chain)
        roles: dict[str, str] = {row["store_id"]: row["role"] for row in rows}
    finally:
        await conn.close()
    assert roles[anchor] == "anchor"
    assert {roles[m] for m in members} == {"member"}

    # The anchor was just scraped, so a routine plan for the chain only samples members.
    plan = _wait_finished(stack, _start_run(stack, scope="plan", chains=[chain]))
    assert plan["stores"] == 0, "members were checked by the full scrape a moment ago; anchor not due"

    conn = await _scraper_conn(stack)
    try:
        asked_at = await conn.fetchval("SELECT now()")
        await _produce(
            stack,
            RescrapeRequested.new(
                producer="test",
                payload=RescrapeRequestedPayload(chain=chain, store_id=anchor, reason="stale_anchor"),
            ),
        )
        # Grouping may ask re-scrapes of its own meanwhile: the run serving ours may hold them too.
        serving = """SELECT r.run_id FROM scrape_runs r JOIN scrape_tasks t USING (run_id)
                     WHERE r.scope = 'rescrape' AND r.status = 'finished' AND r.started_at > $3
                       AND t.chain = $1 AND t.store_id = $2 AND t.reason = 'rescrape'"""
        run_id = None
        for _ in range(300):
            run_id = await conn.fetchval(serving, chain, anchor, asked_at)
            if run_id is not None:
                break
            await asyncio.sleep(0.2)
        assert run_id is not None, "the re-scrape request was served by a re-scrape run"
        others = await conn.fetchval(
            "SELECT count(*) FROM scrape_tasks WHERE run_id = $1 AND reason <> 'rescrape'", run_id
        )
    finally:
        await conn.close()
    assert others == 0, "a re-scrape run fetches only the stores asked for"
