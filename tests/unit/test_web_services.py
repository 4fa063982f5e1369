"""The web page's reading of the other services and the broker: health, counts, lag, runs, groups, stores."""

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import ConsumerRecord, TopicPartition

from catalogue.web import services as web_services
from catalogue.web.deadletters import DeadLetter, dead_letter
from catalogue.web.lag import TopicLag, consumer_groups, topic_lags
from catalogue.web.services import GroupTimes, ServiceClient
from contracts import SERVICES, consumed_by
from servicekit.metrics import Metrics

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, tzinfo=UTC)
URLS = {"scraper": "http://scraper", "bargains": "http://bargains"}


def _metrics_text() -> str:
    metrics = Metrics()
    metrics.consumed.labels("prices.scraped.v1").inc(4)
    metrics.processed.labels("prices.scraped.v1").inc(4)
    return metrics.render().decode()


class _Services:
    """The scraper answers; the bargains service is down. Counts every request."""

    def __init__(self) -> None:
        self.requests = 0
        self.runs_status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if request.url.host == "bargains":
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/health/ready":
            return httpx.Response(200, json={"status": "ready", "checks": {"broker": True, "database": True}})
        if request.url.path == "/metrics":
            return httpx.Response(200, text=_metrics_text())
        run = {
            "run_id": "r1",
            "started_at": "2026-03-01T00:00:00+00:00",
            "finished_at": None,
            "pages_done": 3,
        }
        return httpx.Response(self.runs_status, json={"runs": [run]})


def _client(services: _Services) -> ServiceClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(services))
    return ServiceClient(URLS, timeout_s=1, flags_ttl_s=0, http=http)


async def test_the_pipeline_says_who_answers_and_who_does_not() -> None:
    found = await _client(_Services()).pipeline(runs_shown=5, now=NOW)

    scraper, bargains = found.states
    assert (scraper.name, scraper.ready, scraper.checks) == (
        "scraper",
        True,
        {"broker": True, "database": True},
    )
    assert [(t.topic, t.consumed, t.processed) for t in scraper.topics] == [("prices.scraped.v1", 4, 4)]
    assert (bargains.ready, bargains.topics) == (False, [])
    assert bargains.problem is not None
    assert "ConnectError" in bargains.problem
    assert found.runs[0]["started_at"] == datetime(2026, 3, 1, tzinfo=UTC)
    assert found.runs[0]["finished_at"] is None
    assert found.runs_problem is None


async def test_a_scraper_that_fails_is_said_not_guessed() -> None:
    services = _Services()
    services.runs_status = 500
    found = await _client(services).pipeline(runs_shown=5, now=NOW)
    assert found.runs == []
    assert found.runs_problem == "the scraper did not answer (HTTPStatusError)"


async def test_a_page_never_waits_once_there_is_an_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _Services()
    client = _client(services)
    first = await client.pipeline(runs_shown=5, now=NOW)
    asked = services.requests
    assert await client.pipeline(runs_shown=5, now=NOW) is first, "a fresh answer is reused"
    assert services.requests == asked

    monkeypatch.setattr(web_services, "PIPELINE_TTL_S", 0.0)
    later = datetime(2026, 3, 1, 0, 1, tzinfo=UTC)
    assert await client.pipeline(runs_shown=5, now=later) is first, "the old answer, at once"
    # The services are asked again behind it; a later page gets that answer.
    for _ in range(100):
        await asyncio.sleep(0.01)
        if (await client.pipeline(runs_shown=5, now=later)).taken_at == later:
            break
    assert (await client.pipeline(runs_shown=5, now=later)).taken_at == later
    assert services.requests >= 2 * asked


async def test_illusory_flags_come_with_their_reason_and_are_asked_once_a_while() -> None:
    asked: list[str] = []

    def bargains(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["chain"])
        assert request.url.params["kind"] == "illusory"
        flag = {
            "store_id": "s1",
            "sku": "9",
            "kind": "illusory",
            "reason": "was $2.43 is a price raised lately",
        }
        return httpx.Response(200, json={"flags": [flag]})

    http = httpx.AsyncClient(transport=httpx.MockTransport(bargains))
    client = ServiceClient(URLS, timeout_s=1, flags_ttl_s=60, http=http)
    assert await client.illusory("coles") == {("s1", "9"): "was $2.43 is a price raised lately"}
    await client.illusory("coles")
    await client.illusory("aldi")
    assert asked == ["coles", "aldi"]


async def test_lag_comes_with_the_pipeline_and_a_silent_broker_is_said() -> None:
    lag = TopicLag("bargains", "prices.scraped.v1", committed=7, end=10)

    async def read() -> list[TopicLag]:
        return [lag]

    async def silent() -> list[TopicLag]:
        raise TimeoutError

    http = httpx.AsyncClient(transport=httpx.MockTransport(_Services()))
    found = await ServiceClient(URLS, timeout_s=1, flags_ttl_s=0, http=http, lags=read).pipeline(
        runs_shown=5, now=NOW
    )
    assert (found.lags, found.lags_problem) == ([lag], None)
    down = await ServiceClient(URLS, timeout_s=1, flags_ttl_s=0, http=http, lags=silent).pipeline(
        runs_shown=5, now=NOW
    )
    assert (down.lags, down.lags_problem) == ([], "the broker did not answer (TimeoutError)")


def test_lag_sums_partitions_and_counts_no_commit_as_nothing_read() -> None:
    p0, p1 = TopicPartition("prices.scraped.v1", 0), TopicPartition("prices.scraped.v1", 1)
    lags = topic_lags(
        {"bargains": ["prices.scraped.v1"], "grouping": ["prices.scraped.v1"]},
        {"prices.scraped.v1": [p0, p1]},
        {"bargains": {p0: 4, p1: 6}, "grouping": {p0: -1}},
        {p0: 5, p1: 6},
    )
    assert [(x.group, x.committed, x.end, x.lag) for x in lags] == [
        ("bargains", 10, 11, 1),
        ("grouping", 0, 11, 11),
    ]
    # A broker whose end reads short of a commit never shows a negative lag.
    assert TopicLag("g", "t", committed=12, end=11).lag == 0


def test_every_consuming_service_is_a_group_with_the_registrys_topics() -> None:
    groups = consumer_groups()
    assert set(groups) == {s for s in SERVICES if consumed_by(s)}
    assert groups["grouping"] == [spec.name for spec in consumed_by("grouping")]


async def test_group_times_carry_when_a_member_was_last_verified() -> None:
    def grouping(request: httpx.Request) -> httpx.Response:
        group = {"chain": "coles", "group_id": "g1", "updated_at": "2026-03-01T00:00:00+00:00"}
        verified = {**group, "group_id": "g2", "verified_at": "2026-03-02T06:00:00+00:00"}
        return httpx.Response(200, json={"groups": [group, verified], "next_cursor": None})

    http = httpx.AsyncClient(transport=httpx.MockTransport(grouping))
    times = await ServiceClient(
        {"grouping": "http://grouping"}, timeout_s=1, flags_ttl_s=0, http=http
    ).group_times()
    assert times["coles", "g1"] == GroupTimes(changed_at=NOW, verified_at=None)
    assert times["coles", "g2"].verified_at == datetime(2026, 3, 2, 6, tzinfo=UTC)


async def test_the_store_directory_is_asked_once_a_while_and_found_by_name_or_postcode() -> None:
    asked: list[str] = []

    def scraper(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["chain"])
        store = {
            "chain": "coles",
            "store_id": "7724",
            "name": "Coles Carlton",
            "state": "VIC",
            "postcode": "3053",
        }
        return httpx.Response(200, json={"stores": [store]})

    http = httpx.AsyncClient(transport=httpx.MockTransport(scraper))
    client = ServiceClient(URLS, timeout_s=1, flags_ttl_s=0, http=http)
    [store] = await client.directory("coles")
    assert await client.directory("coles") == [store]
    assert asked == ["coles"]
    assert [store.matches(text) for text in ("carlton", " 3053 ", "7724", "Fitzroy")] == [
        True,
        True,
        True,
        False,
    ]


def _record(headers: list[tuple[str, bytes]]) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("prices.scraped.v1.dlq", 0, 3, 0, 0, b"coles:1", b"{}", None, 7, 2, tuple(headers))


def test_a_dead_letter_says_who_rejected_it_and_why_from_its_headers() -> None:
    written = {
        "dlq_reason": "schema_invalid",
        "dlq_error": "price_cents: must be above 0",
        "dlq_attempts": "1",
        "dlq_consumer_group": "bargains",
        "dlq_source_topic": "prices.scraped.v1",
        "dlq_source_partition": "0",
        "dlq_source_offset": "41",
    }
    letter = dead_letter(_record([(k, v.encode()) for k, v in written.items()]))
    assert letter == DeadLetter(
        topic="prices.scraped.v1",
        consumer_group="bargains",
        reason="schema_invalid",
        error="price_cents: must be above 0",
        attempts="1",
        source_offset="0@41",
    )
    # Headers another writer left out are said to be unknown, never made up.
    bare = dead_letter(_record([]))
    assert (bare.topic, bare.reason, bare.consumer_group) == ("prices.scraped.v1", "?", "?")


async def test_dead_letters_come_with_the_pipeline() -> None:
    letter = DeadLetter("prices.scraped.v1", "bargains", "schema_invalid", "bad", "1", "0@41")

    async def read() -> dict[str, list[DeadLetter]]:
        return {"prices.scraped.v1": [letter]}

    http = httpx.AsyncClient(transport=httpx.MockTransport(_Services()))
    client = ServiceClient(URLS, timeout_s=1, flags_ttl_s=0, http=http, dead_letters=read)
    found = await client.pipeline(runs_shown=5, now=NOW)
    assert (found.dead_letters, found.dead_letters_problem) == ({"prices.scraped.v1": [letter]}, None)
    assert found.lags_problem == "no broker to ask"
