"""The fixtures of the chains' web APIs, and fake sites serving them to the adapters over httpx."""

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from scraper.chains.base import ChainAdapter, ChainRouter
from scraper.chains.simulator import StorefrontClient
from scraper.fetching import Fetcher, FetchPolicy
from scraper.telemetry import ScraperCounters

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "chains"

# Retries fast and pauses briefly, so that tests of the defences take milliseconds.
FAST = FetchPolicy(rate_per_s=10_000, max_attempts=3, backoff_base_s=0.001, backoff_max_s=0.01, pause_s=0.05)

Handler = Callable[[httpx.Request], httpx.Response]


def fixture(chain: str, name: str) -> Any:
    """Return a JSON fixture of a chain's site."""
    return json.loads((FIXTURES / chain / name).read_text())


def fixture_text(chain: str, name: str) -> str:
    """Return a fixture's text (an HTML page)."""
    return (FIXTURES / chain / name).read_text()


def fetcher(handler: Handler, policy: FetchPolicy = FAST) -> Fetcher:
    """Return a fetcher whose requests the handler answers."""
    return Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(handler)), policy, rng=random.Random(1))


def router(chain: str, adapter: ChainAdapter, fetch: Fetcher) -> tuple[ChainRouter, ScraperCounters]:
    """Return a router sending `chain` to the adapter, and the counters it reports to."""
    counters = ScraperCounters.register(CollectorRegistry())
    storefront = StorefrontClient(fetch, "http://storefront.test")
    return ChainRouter(
        storefront=storefront, adapters={chain: adapter}, fetcher=fetch, defences=counters.defences
    ), counters


def html(text: str, status: int = 200) -> httpx.Response:
    """Return an HTML answer."""
    return httpx.Response(status, text=text, headers={"content-type": "text/html; charset=utf-8"})


BUILD = "20240618.01_v4.12.0"


class ColesSite:
    """A Coles-dialect site over the fixtures; `misbehave` makes its data pages answer otherwise."""

    def __init__(self) -> None:
        self.build = BUILD
        self.requests: list[httpx.Request] = []
        self.arrivals: list[float] = []
        self.misbehave: Callable[[httpx.Request], httpx.Response | None] = lambda request: None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Answer a request as the web app does."""
        self.requests.append(request)
        self.arrivals.append(time.monotonic())
        path = request.url.path
        if path == "/":
            return html(fixture_text("coles", "home.html").replace(BUILD, self.build))
        if path == "/api/bff/stores":
            return httpx.Response(200, json=fixture("coles", "stores.json"))
        if path == "/api/graphql" and json.loads(request.content)["operationName"] == "GetShopProductsMenu":
            return httpx.Response(200, json=fixture("coles", "categories.json"))
        _, _, _, build, _, kind, name = path.split("/", 6)
        if build != self.build:
            return httpx.Response(404, text="<h1>404</h1>", headers={"content-type": "text/html"})
        odd = self.misbehave(request)
        if odd is not None:
            return odd
        if kind == "product":
            sku = name.removesuffix(".json").rsplit("-", 1)[-1]
            known = FIXTURES / "coles" / f"product-{sku}.json"
            body = (
                fixture("coles", known.name) if known.exists() else {"pageProps": {"product": {"gtin": None}}}
            )
            return httpx.Response(200, json=body)
        return httpx.Response(
            200,
            json=fixture(
                "coles", f"browse-{name.removesuffix('.json')}-page{request.url.params['page']}.json"
            ),
        )

    def data_requests(self) -> list[httpx.Request]:
        """Return the requests of data URLs, in order."""
        return [r for r in self.requests if r.url.path.startswith("/_next/data/")]


class WoolworthsSite:
    """A Woolworths-dialect site over the fixtures: browse calls are priced for the session's store."""

    STORE_COOKIE = "w-fulfilment-store"

    def __init__(self, *, product_counts: bool = True) -> None:
        self.product_counts = product_counts
        self.requests: list[httpx.Request] = []
        self.browsed: list[tuple[str, dict[str, Any]]] = []
        self.misbehave: Callable[[httpx.Request], httpx.Response | None] = lambda request: None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Answer a request as the web API does."""
        self.requests.append(request)
        path = request.url.path
        if path == "/":
            return httpx.Response(200, text="<html></html>", headers={"set-cookie": "bm_sz=abc; Path=/"})
        if path == "/apis/ui/StoreLocator/Stores":
            return httpx.Response(200, json=fixture("woolworths", "stores.json"))
        if path == "/api/v3/ui/fulfilment":
            store = str(json.loads(request.content)["fulfilmentStoreId"])
            cookie = f"{self.STORE_COOKIE}={store}; Path=/"
            return httpx.Response(
                200, json=fixture("woolworths", "fulfilment.json"), headers={"set-cookie": cookie}
            )
        if path == "/apis/ui/PiesCategoriesWithSpecials":
            tree = fixture("woolworths", "categories.json")
            if not self.product_counts:
                for node in tree["Categories"]:
                    del node["ProductCount"]
            return httpx.Response(200, json=tree)
        if path.startswith("/apis/ui/product/detail/"):
            return httpx.Response(200, json=fixture("woolworths", f"product-{path.rsplit('/', 1)[-1]}.json"))
        body = json.loads(request.content)
        cookies = dict(part.split("=", 1) for part in request.headers.get("cookie", "").split("; ") if part)
        if self.STORE_COOKIE not in cookies:
            return httpx.Response(400, json={"Message": "choose a store first"})
        self.browsed.append((cookies[self.STORE_COOKIE], body))
        odd = self.misbehave(request)
        if odd is not None:
            return odd
        slug = body["url"].rsplit("/", 1)[-1]
        return httpx.Response(200, json=fixture("woolworths", f"browse-{slug}-page{body['pageNumber']}.json"))
