"""A scrape run traced across the services, and what every service's /metrics exposes."""

import asyncio
import json
from collections import defaultdict
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from contracts import SERVICES
from contracts.events import RescrapeRequested
from contracts.events.v1 import RescrapeRequestedPayload
from pricestream.cli import app
from pricestream.stack import Stack
from pricestream.trace_cli import Trace, find_trace
from servicekit.tracing import correlation_for
from testsupport import publish_events, wait_until

pytestmark = pytest.mark.integration


def _two_stores_of_a_zone(stack: Stack) -> tuple[str, list[str]]:
    """Return a chain and two stores of one of its pricing zones (one of them at least is a member)."""
    chains: dict[str, dict[str, str]] = httpx.get(f"{stack.config.storefront_url}/_truth/zones").json()[
        "chains"
    ]
    chain = min(chains)
    by_zone: dict[str, list[str]] = defaultdict(list)
    for store, zone in sorted(chains[chain].items()):
        by_zone[zone].append(store)
    return chain, next(stores[:2] for stores in by_zone.values() if len(stores) >= 2)


async def _rescrape_runs(stack: Stack, chain: str, stores: list[str]) -> list[str]:
    """Ask re-scrapes of stores; return the finished re-scrape runs that served them, newest first."""
    conn = await asyncpg.connect(stack.service_process("scraper").env["SCRAPER_DATABASE_URL"])
    try:
        asked_at = await conn.fetchval("SELECT now()")
        await publish_events(
            stack.config.bootstrap_servers,
            [
                RescrapeRequested.new(
                    producer="test",
                    payload=RescrapeRequestedPayload(chain=chain, store_id=s, reason="manual"),
                )
                for s in stores
            ],
        )
        # The idle scraper serves them in a run of its own, or two when the second came late.
        serving = """SELECT r.run_id, count(DISTINCT t.store_id) AS stores FROM scrape_runs r
                     JOIN scrape_tasks t USING (run_id)
                     WHERE r.scope = 'rescrape' AND r.status = 'finished' AND r.started_at > $1
                       AND t.chain = $2 AND t.store_id = ANY($3::text[])
                     GROUP BY r.run_id, r.started_at ORDER BY r.started_at DESC"""
        for _ in range(600):
            rows = await conn.fetch(serving, asked_at, chain, stores)
            if sum(row["stores"] for row in rows) >= len(stores):
                return [row["run_id"] for row in rows]
            await asyncio.sleep(0.1)
        raise AssertionError(f"no re-scrape run served {chain} {stores}")
    finally:
        await conn.close()


def _spread(trace: Trace) -> tuple[set[str], set[str]]:
    """Return the trace's producers and the services that handled its events."""
    return {e.producer for e in trace.events}, {s for e in trace.events for s in e.handled_by}


def _reaches_three_services(trace: Trace) -> bool:
    producers, handlers = _spread(trace)
    return {"scraper", "grouping"} <= producers and {"grouping", "bargains", "catalogue"} <= handlers


def test_a_scrape_runs_correlation_reaches_grouping_bargains_and_catalogue(stack: Stack) -> None:
    chain, stores = _two_stores_of_a_zone(stack)
    runs = asyncio.run(_rescrape_runs(stack, chain, stores))
    dsn = stack.postgres.dsn(database=stack.config.database)
    traces: list[Trace] = []

    def spread() -> bool:
        found = [
            asyncio.run(find_trace(dsn, run, bootstrap_servers=stack.config.bootstrap_servers))
            for run in runs
        ]
        traces[:] = sorted(found, key=_reaches_three_services, reverse=True)
        return _reaches_three_services(traces[0])

    # The grouping cycle judges stores once their prices go quiet: its events come a moment later.
    wait_until(spread, timeout=60, interval=0.5)
    trace = traces[0]
    run_id = trace.asked
    assert trace.correlation_id == correlation_for(run_id)
    producers, handlers = _spread(trace)
    assert {"scraper", "grouping"} <= producers, trace.as_dict()["events"][:5]
    assert {"grouping", "bargains", "catalogue"} <= handlers
    kinds = {e.event_type for e in trace.events}
    assert "PricesScraped" in kinds
    print(f"\ntrace of {run_id}: {len(trace.events)} events, {sorted(kinds)}, handled by {sorted(handlers)}")

    runner = CliRunner()
    home = str(stack.config.home)
    shown = runner.invoke(app, ["trace", run_id, "--home", home, "--limit", "3"])
    assert shown.exit_code == 0, shown.output
    assert str(trace.correlation_id) in shown.stdout
    assert "PricesScraped" in shown.stdout
    assert "grouping" in shown.stdout
    parsed = runner.invoke(app, ["trace", str(trace.events[0].event_id), "--home", home, "--json"])
    assert parsed.exit_code == 0, parsed.output
    document: dict[str, Any] = json.loads(parsed.stdout)
    assert document["correlation_id"] == str(trace.correlation_id), "an event id leads to its correlation"
    assert len(document["events"]) >= len(trace.events)
    unknown = runner.invoke(app, ["trace", "run-that-never-was", "--home", home, "--json"])
    assert unknown.exit_code == 1
    assert json.loads(unknown.stdout)["events"] == []


def test_every_service_exposes_outbox_lag_process_and_http_metrics(stack: Stack) -> None:
    for name in SERVICES:
        url = stack.service_process(name).url
        httpx.get(f"{url}/health/live", timeout=10).raise_for_status()
        families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)}
        assert [s.value for s in families["pricestream_outbox_waiting"].samples] != [], name
        assert {"process_cpu_seconds", "process_resident_memory_bytes"} <= set(families), name
        routes = {s.labels["route"] for s in families["pricestream_http_requests"].samples}
        assert "/health/live" in routes, name
        assert "pricestream_http_request_duration_seconds" in families, name
    # The catalogue consumes every price: its lag is shown per partition of the topic.
    catalogue = stack.service_process("catalogue").url
    lags = [
        s
        for f in text_string_to_metric_families(httpx.get(f"{catalogue}/metrics").text)
        if f.name == "pricestream_consumer_lag"
        for s in f.samples
    ]
    assert {s.labels["topic"] for s in lags} >= {"prices.scraped.v1"}
    assert all(s.labels["partition"].isdigit() and s.value >= 0 for s in lags)
