"""The web page's reading of the other services: health and counts, runs, and answering without waiting."""

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from catalogue.web import services as web_services
from catalogue.web.services import ServiceClient
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
