"""The web page's routes and templates that need no database: assets, choices, bad input, the pipeline."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from catalogue import baskets
from catalogue.settings import CatalogueSettings
from catalogue.web import build_web, state
from catalogue.web.deadletters import DeadLetter
from catalogue.web.lag import TopicLag
from catalogue.web.pages import _environment, _found
from catalogue.web.queries import StoreRow
from catalogue.web.services import DirectoryStore, Pipeline
from servicekit.db import Database
from servicekit.metrics import Metrics

pytestmark = pytest.mark.unit


@pytest.fixture
def client() -> Iterator[TestClient]:
    """A client of the web routes over a database that is never connected: these routes must not read it."""
    settings = CatalogueSettings()
    app = FastAPI()
    app.include_router(
        build_web(
            db=Database(settings, Path("unused")),
            clock=lambda: datetime(2026, 3, 1, tzinfo=UTC),
            settings=settings,
            metrics=Metrics(),
        )
    )
    with TestClient(app, follow_redirects=False) as client:
        yield client


def test_assets_are_served_from_the_package_and_nothing_else(client: TestClient) -> None:
    css = client.get("/static/site.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    htmx = client.get("/static/htmx-2.0.11.min.js")
    assert htmx.status_code == 200
    assert "htmx" in htmx.text
    assert client.get("/static/README.md").status_code == 404
    assert client.get("/static/..%2Fpages.py").status_code == 404


def test_every_asset_a_template_names_is_served(client: TestClient) -> None:
    page = client.get("/search").text
    for asset in ("/static/site.css", "/static/htmx-2.0.11.min.js"):
        assert f'"{asset}"' in page
        assert client.get(asset).status_code == 200
    assert "https://" not in page, "nothing is loaded from elsewhere"


def test_choosing_stores_remembers_them_and_goes_back_only_to_this_site(client: TestClient) -> None:
    chosen = client.post("/stores", data={"store-coles": "7724", "store-woolworths": "", "next": "/basket"})
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/basket"
    remembered = client.get("/search?q=m").text
    assert re.search(r"Your stores:\s+coles 7724\s+·\s+<a", remembered), "the browser remembers them"
    for elsewhere in ("//evil.example", "/\\evil.example", "https://evil.example"):
        assert client.post("/stores", data={"store-coles": "1", "next": elsewhere}).headers["location"] == "/"


def test_adding_to_the_basket_adds_up_and_the_link_carries_it(client: TestClient) -> None:
    client.cookies.set("basket", "coles:1")
    added = client.post("/basket", data={"chain": "coles", "sku": "1", "quantity": "2", "add": "1"})
    assert added.status_code == 303
    assert added.headers["location"] == "/basket?items=coles%3A1%2A3"
    removed = client.post(
        "/basket", data={"items": "coles:1*3,coles:2", "chain": "coles", "sku": "1", "quantity": "0"}
    )
    assert removed.headers["location"] == "/basket?items=coles%3A2"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/search?q=milk&stores=coles:1,coles:2", "two stores of coles"),
        ("/search?q=milk&stores=coles", "is not chain:store"),
        ("/basket?items=coles:1*0", "quantity after * must be 1 to 99"),
    ],
)
def test_bad_state_in_a_link_is_a_page_saying_what_is_wrong(
    client: TestClient, path: str, problem: str
) -> None:
    answer = client.get(path)
    assert answer.status_code == 400
    assert problem in answer.text
    assert "<h1>" in answer.text


def test_a_bad_parameter_or_an_unknown_address_is_a_page_not_json(client: TestClient) -> None:
    bad = client.get("/bargains", params={"kind": "cheap"})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("text/html")
    assert "kind: Input should be" in bad.text
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "nothing lives at /no/such/page" in missing.text


def test_a_bad_basket_form_is_refused(client: TestClient) -> None:
    answer = client.post("/basket", data={"chain": "coles", "sku": "1", "quantity": "lots"})
    assert answer.status_code == 400
    assert "not a whole number" in answer.text


def test_an_unreadable_cookie_is_dropped_and_one_letter_asks_for_another(client: TestClient) -> None:
    client.cookies.set("stores", "not a store")
    answer = client.get("/search?q=m")
    assert answer.status_code == 200
    assert "at least two letters" in answer.text
    assert "none chosen" in answer.text


def test_the_pipeline_page_shows_lag_and_dead_letters_with_their_reason() -> None:
    found = Pipeline(
        states=[],
        runs=[],
        runs_problem=None,
        taken_at=datetime(2026, 3, 1, tzinfo=UTC),
        lags=[TopicLag("bargains", "prices.scraped.v1", committed=1_200, end=1_234)],
        dead_letters={
            "prices.scraped.v1": [
                DeadLetter("prices.scraped.v1", "bargains", "schema_invalid", "price below 0", "1", "0@41")
            ]
        },
    )
    html = (
        _environment()
        .get_template("pipeline.html")
        .render(page="/pipeline", chosen={}, basket_count=0, pipeline=found, states=[], dead_letters_shown=5)
    )
    lag = re.search(
        r'<tr class="lag" data-group="bargains" data-topic="prices.scraped.v1">.*?</tr>', html, re.S
    )
    assert lag is not None
    assert re.findall(r'<td class="num[^"]*">([\d,]+)</td>', lag.group()) == ["1,200", "1,234", "34"]
    assert re.search(r'class="dead-letter".*bargains.*<strong>schema_invalid</strong>', html, re.S)


def test_a_store_is_found_by_name_or_postcode_and_by_number_when_it_has_no_name() -> None:
    named = {("coles", "7724"): DirectoryStore("coles", "7724", "Coles Carlton", "VIC", "3053")}
    listed, unnamed = StoreRow("coles", "7724", None, None), StoreRow("coles", "88", None, None)
    assert [_found(listed, named, text) for text in ("CARLTON", "3053", "Fitzroy")] == [True, True, False]
    assert (_found(unnamed, named, "88"), _found(unnamed, named, "3053")) == (True, False)


def _totals(comparison: baskets.BasketComparison) -> str:
    """Render the basket page's totals for two items and this comparison."""
    items = [state.Item("a", "milk", 1), state.Item("a", "tea", 1)]
    return (
        _environment()
        .get_template("basket.html")
        .render(
            page="/basket",
            chosen={},
            basket_count=2,
            items=items,
            names={},
            comparison=comparison,
            assumed={},
            items_text="a:milk,a:tea",
            share="/basket",
        )
    )


@pytest.mark.parametrize(("complete", "tag"), [(True, "cheapest complete"), (False, "buys the most")])
def test_the_best_store_is_called_cheapest_complete_only_when_it_sells_everything(
    complete: bool, tag: str
) -> None:
    line = baskets.BasketLine(
        item="a:milk", product="a:milk", name="Milk", match="same", quantity=1, unit_cents=300, cost_cents=300
    )
    missing = [] if complete else [baskets.MissingLine(item="a:tea", substitute=None)]
    best = baskets.StoreBasket(store="a:1", total_cents=300, complete=complete, lines=[line], missing=missing)
    comparison = baskets.BasketComparison(stores=[best], best_store="a:1", best_split=None, saving_cents=None)

    html = _totals(comparison)

    assert f'<span class="tag ok">{tag}</span>' in html
    assert html.count('class="tag ok"') == 1
