"""The CLI's scrape command against fakes of the stack's HTTP answers."""

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from rich.console import Console

from pricestream import scraping_cli
from pricestream.processes import StackError

pytestmark = pytest.mark.unit

SHOP = "http://shop.test"
SCRAPER = "http://scraper.test"


def _stack() -> Any:
    return SimpleNamespace(
        config=SimpleNamespace(storefront_url=SHOP),
        service_process=lambda name: SimpleNamespace(url=SCRAPER),
    )


def _answer(method: str, url: str, status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request(method, url))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any] | None]]:
    """Record the CLI's requests; the shop takes its clock, the scraper starts and ends a run."""
    seen: list[tuple[str, dict[str, Any] | None]] = []
    summary = {"run_id": "r1", "status": "finished", "pages_total": 1, "pages_done": 1, "observations": 3}

    def post(url: str, *, json: dict[str, Any], timeout: float) -> httpx.Response:
        seen.append((url, json))
        return _answer("POST", url, 202 if url.endswith("/v1/runs") else 200, summary)

    def get(url: str, *, timeout: float) -> httpx.Response:
        return _answer("GET", url, 200, summary)

    monkeypatch.setattr(httpx, "post", post)
    monkeypatch.setattr(httpx, "get", get)
    return seen


def test_a_scrape_of_a_past_day_first_moves_the_shops_clock_to_it(
    calls: list[tuple[str, dict[str, Any] | None]],
) -> None:
    summary = scraping_cli.run_scrape(
        _stack(), Console(quiet=True), scope="all", day=3, chains=["coles"], wait=True
    )

    assert summary["status"] == "finished"
    assert calls == [
        (f"{SHOP}/v1/clock", {"day": 3}),
        (f"{SCRAPER}/v1/runs", {"scope": "all", "day": 3, "chains": ["coles"]}),
    ]


def test_a_scrape_of_today_leaves_the_shops_clock_alone(
    calls: list[tuple[str, dict[str, Any] | None]],
) -> None:
    scraping_cli.run_scrape(_stack(), Console(quiet=True), scope="plan", day=None, chains=[], wait=False)

    assert [url for url, _ in calls] == [f"{SCRAPER}/v1/runs"]


def test_a_shop_that_refuses_the_day_stops_the_scrape_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def post(url: str, *, json: dict[str, Any], timeout: float) -> httpx.Response:
        return _answer("POST", url, 503, {"detail": "down"})

    monkeypatch.setattr(httpx, "post", post)
    with pytest.raises(StackError, match="did not take day 3"):
        scraping_cli.run_scrape(_stack(), Console(quiet=True), scope="all", day=3, chains=[], wait=False)


def test_a_run_the_scraper_refuses_says_what_the_scraper_said(monkeypatch: pytest.MonkeyPatch) -> None:
    said = "no chain 'nosuchchain' at the shop; its chains: coles, woolworths"

    def post(url: str, *, json: dict[str, Any], timeout: float) -> httpx.Response:
        return _answer("POST", url, 404, {"detail": said})

    monkeypatch.setattr(httpx, "post", post)
    with pytest.raises(StackError) as refused:
        scraping_cli.run_scrape(
            _stack(), Console(quiet=True), scope="plan", day=None, chains=["nosuchchain"], wait=False
        )
    assert str(refused.value) == f"the scraper refused the run: {said}"
