"""The web page in Debian's Chromium: search, a product's chart, the basket, groups; and without JavaScript.

They run on the e2e tier's stack, where the demo story ran the simulated days on a small world
(tests/e2e/conftest.py), so the page shows real scraped prices, groups and substitutes. What the
page should show is read from the catalogue's tables and grouping's API, never from the page's own code.
"""

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from catalogue.web.pages import RUNS_SHOWN
from contracts import SERVICES, consumed_by
from pricestream.stack import Stack
from tests.e2e.cli import StoryStack
from testsupport import rolled_back
from testsupport.browser import chromium, watch_console

# Run alone, the first test sets the e2e stack up and runs the story's days: most of its time.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

T = TypeVar("T")


@dataclass(frozen=True)
class Shown:
    """A product to look at, at a chosen anchor store, and what its history holds."""

    chain: str
    store_id: str
    sku: str
    name: str
    price_cents: int
    changes: int


def _read(stack: Stack, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Read the catalogue's tables in a thread of its own: Playwright's sync API holds this one's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, rolled_back(stack, "catalogue", work)).result()


@pytest.fixture(scope="module")
def stack(story_stack: StoryStack) -> Stack:
    """Return the e2e stack once the demo story ran its days on it, every service done."""
    demo = story_stack.demo
    assert demo.returncode == 0, f"the demo story failed: {demo.stdout[-2000:]} {demo.stderr[-2000:]}"
    return story_stack.stack()


@pytest.fixture(scope="module")
def days(story_stack: StoryStack) -> int:
    """Return how many simulated days the story ran."""
    days: int = json.loads((story_stack.config.home / "demo.json").read_text())["days"]
    return days


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, once for the module."""
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def anchors(stack: Stack, days: int) -> dict[str, str]:
    """Return one anchor store per chain (the first by id), as a shopper would choose them."""

    async def read(conn: asyncpg.Connection) -> dict[str, str]:
        rows = await conn.fetch(
            """SELECT chain, min(store_id) AS store FROM placements WHERE store_id = anchor_store_id
               GROUP BY chain ORDER BY chain"""
        )
        return {r["chain"]: r["store"] for r in rows}

    found = _read(stack, read)
    assert len(found) >= 2, f"groups in at least two chains after {days} days: {found}"
    return found


@pytest.fixture(scope="module")
def shown(stack: Stack, anchors: dict[str, str]) -> Shown:
    """Return the product whose price changed most often at the first chain's chosen anchor."""
    chain = sorted(anchors)[0]

    async def read(conn: asyncpg.Connection) -> Any:
        return await conn.fetchrow(
            """WITH runs AS (  -- the runs that ended, and each price's current one
                   SELECT sku, starts_at, price_cents FROM history WHERE chain = $1 AND store_id = $2
                   UNION ALL
                   SELECT sku, run_starts_at, price_cents FROM prices WHERE chain = $1 AND store_id = $2),
               h AS (
                   SELECT sku, price_cents,
                          lag(price_cents) OVER (PARTITION BY sku ORDER BY starts_at) AS before
                   FROM runs)
               SELECT h.sku, p.name, c.price_cents,
                      count(*) FILTER (WHERE h.before IS DISTINCT FROM h.price_cents) AS changes
               FROM h JOIN products p ON p.chain = $1 AND p.sku = h.sku
               JOIN prices c ON c.chain = $1 AND c.store_id = $2 AND c.sku = h.sku AND c.available
               GROUP BY h.sku, p.name, c.price_cents ORDER BY changes DESC, h.sku LIMIT 1""",
            chain,
            anchors[chain],
        )

    row = _read(stack, read)
    assert row is not None, "the chosen store has prices"
    return Shown(chain, anchors[chain], row["sku"], row["name"], row["price_cents"], row["changes"])


def _choose_stores(page: Page, base: str, anchors: dict[str, str], named: dict[str, Any]) -> None:
    """Choose every chain's anchor but the first's from the lists, then the first's by its postcode."""
    first, *rest = sorted(anchors)
    page.goto(f"{base}/stores")
    for chain in rest:
        page.select_option(f"#store-{chain}", anchors[chain])
    page.click("#save-stores")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/stores")
    page.fill("#find-store", named["postcode"] or named["name"])
    page.click("#find-stores")
    page.wait_for_url(re.compile(r"/stores\?.*find="))
    option = page.locator(f'#store-{first} option[value="{anchors[first]}"]')
    expect(option).to_contain_text(named["name"])
    if named["postcode"]:
        expect(option).to_contain_text(named["postcode"])
    page.select_option(f"#store-{first}", anchors[first])
    page.click("#save-stores")
    page.wait_for_url(f"{base}/")


def test_search_product_chart_basket_and_groups_in_chromium(
    stack: Stack, browser: Browser, anchors: dict[str, str], shown: Shown
) -> None:
    base = stack.service_url("catalogue")
    page = browser.new_page()
    errors = watch_console(page)

    # The stores chosen, one found by its postcode, are remembered: every page says them all.
    directory = httpx.get(f"{stack.service_url('scraper')}/v1/stores", params={"chain": shown.chain}).json()
    [named] = [s for s in directory["stores"] if s["store_id"] == shown.store_id]
    _choose_stores(page, base, anchors, named)
    for chain, store in anchors.items():
        expect(page.locator(".stores-line")).to_contain_text(f"{chain} {store}")

    # Search as you type: results come in place, the page is not reloaded, the URL can be shared.
    page.evaluate("window.stayed = true")
    box = page.locator("input[name=q]")
    box.press_sequentially(shown.name[0])
    expect(page.locator("#results")).to_contain_text("at least two letters")
    box.press_sequentially(shown.name[1:], delay=5)
    hit = page.locator(f'tr.hit[data-chain="{shown.chain}"][data-sku="{shown.sku}"]')
    expect(hit).to_be_visible()
    assert page.evaluate("window.stayed") is True, "results came without a page load"
    assert "/search?q=" in page.url
    expect(hit.locator(".price")).to_contain_text(f"${shown.price_cents / 100:.2f}")

    # The product: its price at the chosen store, and one chart point per price change there.
    hit.locator("a").first.click()
    page.wait_for_url(f"**/products/{shown.chain}/{shown.sku}")
    row = page.locator(f'tr.chain-price[data-chain="{shown.chain}"]')
    expect(row).to_contain_text(shown.store_id)
    expect(row).to_contain_text(f"${shown.price_cents / 100:.2f}")
    series = page.locator(f'svg.chart g.series[data-series="{shown.chain} store {shown.store_id}"]')
    expect(series).to_have_count(1)
    assert series.locator("circle.point").count() == shown.changes
    # One series per chain with a price: the product's own and identical products elsewhere.
    assert page.locator("svg.chart g.series").count() == page.locator("tr.chain-price td.price").count()

    # Into the basket, two of them; compared at every chosen store.
    page.fill("input[name=quantity]", "2")
    page.click("#add-to-basket")
    page.wait_for_url("**/basket?items=*")
    totals = page.locator("tr.store-total")
    expect(totals).to_have_count(len(anchors))
    mine = page.locator(f'tr.store-total[data-store="{shown.chain}:{shown.store_id}"]')
    assert mine.get_attribute("data-total-cents") == str(2 * shown.price_cents)
    # The basket is remembered: the page without the URL's items shows it too.
    page.goto(f"{base}/basket")
    expect(page.locator("tr.basket-item")).to_have_count(1)

    # The groups page lists every group grouping has, each with its anchor.
    groups = httpx.get(f"{stack.service_url('grouping')}/v1/groups", params={"limit": 1000}).json()["groups"]
    page.goto(f"{base}/groups")
    expect(page.locator("tr.group")).to_have_count(len(groups))
    first = groups[0]
    expect(page.locator(f'tr.group[data-group="{first["group_id"]}"]')).to_contain_text(
        first["anchor_store_id"]
    )
    # A group whose members grouping checked says when it last did.
    verified = [g for g in groups if g["verified_at"]]
    assert verified, "after the days, grouping has checked some group's members"
    at = datetime.fromisoformat(verified[0]["verified_at"])
    expect(page.locator(f'tr.group[data-group="{verified[0]["group_id"]}"] td.verified')).to_have_text(
        f"{at:%d %b %Y %H:%M} UTC"
    )

    assert errors == []


def test_every_page_answers_without_console_errors(
    stack: Stack, browser: Browser, shown: Shown, days: int
) -> None:
    base = stack.service_url("catalogue")
    page = browser.new_page()
    errors = watch_console(page)
    for path in (
        "/",
        "/bargains",
        "/categories",
        "/stores",
        "/groups",
        f"/products/{shown.chain}/{shown.sku}",
    ):
        response = page.goto(base + path)
        assert response is not None
        assert response.status == 200, path
    # The pipeline page: every service ready, and the newest scrape runs the days made.
    page.goto(f"{base}/pipeline")
    expect(page.locator("tr.service .tag.ok")).to_have_count(len(SERVICES))
    assert page.locator("tr.run").count() >= min(days, RUNS_SHOWN)
    # Each consumer group's lag per topic it reads: the days are done, so every group caught up.
    expected = [(s, spec.name) for s in SERVICES for spec in consumed_by(s)]
    lags = page.locator("tr.lag")
    expect(lags).to_have_count(len(expected))
    for service, topic in expected:
        row = page.locator(f'tr.lag[data-group="{service}"][data-topic="{topic}"]')
        expect(row.locator("td.lag-count")).to_have_text("0")
    scraped = page.locator('tr.lag[data-group="grouping"][data-topic="prices.scraped.v1"] td.num').nth(1)
    assert int(scraped.inner_text().replace(",", "")) > 0, "the scraped prices' topic holds messages"
    # No message was rejected in the days: the dead-letter topics were read and are empty.
    expect(page.locator("main")).to_contain_text("every dead-letter topic is empty")
    assert errors == []


def test_bad_state_in_a_link_is_a_clear_error_page(stack: Stack) -> None:
    base = stack.service_url("catalogue")
    basket = httpx.get(f"{base}/basket", params={"items": "coles"})
    assert basket.status_code == 400
    assert "is not chain:sku" in basket.text
    stores = httpx.get(f"{base}/search", params={"q": "milk", "stores": "coles:1,coles:2"})
    assert stores.status_code == 400
    assert "two stores of coles" in stores.text
    missing = httpx.get(f"{base}/products/coles/no-such-sku")
    assert missing.status_code == 404
    assert "no product" in missing.text
    # A link naming a product the catalogue does not know keeps the rest, and says which it is.
    unknown = httpx.get(f"{base}/basket", params={"items": "coles:no-such-sku*1"})
    assert unknown.status_code == 200
    assert 'no-such-sku <span class="tag missing">no such product</span>' in unknown.text


def test_search_and_product_work_without_javascript(stack: Stack, browser: Browser, shown: Shown) -> None:
    base = stack.service_url("catalogue")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{base}/search")
    page.fill("input[name=q]", shown.name)
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/search?q=*")
    hit = page.locator(f'tr.hit[data-chain="{shown.chain}"][data-sku="{shown.sku}"]')
    expect(hit).to_be_visible()
    hit.locator("a").first.click()
    page.wait_for_url(f"**/products/{shown.chain}/{shown.sku}")
    # No stores chosen in this browser: each chain's cheapest price, still drawn as a chart.
    expect(page.locator("h1")).to_have_text(shown.name)
    assert page.locator("svg.chart circle.point").count() >= 1
    # The basket takes a plain form post too.
    page.click("#add-to-basket")
    page.wait_for_url("**/basket?items=*")
    expect(page.locator("tr.basket-item")).to_have_count(1)
    context.close()
