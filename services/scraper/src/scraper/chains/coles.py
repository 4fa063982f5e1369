"""The Coles web app's dialect: Next.js data JSON per category page, the build id from the home page.

The store is chosen per request (the `fulfillmentStoreId` cookie), so one client serves
every store at once. Data URLs carry the build id of the deployed web app: after a deploy
they answer 404, and the adapter reads the home page once for the new id before it fails.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from scraper.chains.base import get_parsed, parsed
from scraper.domain.chains import coles
from scraper.domain.importers import RawRow
from scraper.domain.planning import Category, StoreInfo
from scraper.fetching import Fetcher, NotFoundError, SiteDefenceError

log = structlog.get_logger(__name__)

SITE = "https://www.coles.com.au"

# The fields of the category menu the scraper reads; the site answers them under data.menuItems.
MENU_QUERY = """
query GetShopProductsMenu($storeId: BrandedId!, $withCampaignLinks: Boolean!, $campaignCount: Int) {
  menuItems: productCategories(
    storeId: $storeId, withCampaignLinks: $withCampaignLinks, campaignCount: $campaignCount
  ) {
    restrictedIds: excludedCategoryIds
    items: catalogGroupView { id level name productCount seoToken type subType }
  }
}
"""

Route = tuple[str, dict[str, Any] | None]
"""A URL and its query parameters."""


@dataclass(frozen=True, slots=True)
class ColesRoutes:
    """Every request the adapter sends, in one place: paths, query parameters, cookies."""

    site: str = SITE

    def home(self) -> str:
        """Return the home page, whose `__NEXT_DATA__` names the build id."""
        return f"{self.site}/"

    def stores(self) -> Route:
        """Return the store directory's address."""
        return f"{self.site}/api/bff/stores", {"brandIds": "COL"}

    def categories(self, store_id: str) -> tuple[str, dict[str, Any]]:
        """Return the GraphQL menu query that lists the category tree as a store sees it."""
        return f"{self.site}/api/graphql", {
            "operationName": "GetShopProductsMenu",
            "query": MENU_QUERY,
            "variables": {"storeId": f"COL:{store_id}", "withCampaignLinks": True, "campaignCount": 0},
        }

    def browse(self, build_id: str, slug: str, page: int) -> Route:
        """Return the data URL of one page of a category."""
        return f"{self.site}/_next/data/{build_id}/en/browse/{slug}.json", {"slug": slug, "page": page}

    def product(self, build_id: str, slug: str) -> Route:
        """Return the data URL of a product page; its slug ends in the product id."""
        return f"{self.site}/_next/data/{build_id}/en/product/{slug}.json", None

    @staticmethod
    def store_cookie(store_id: str) -> dict[str, str]:
        """Return the headers that choose the store a page is priced for."""
        return {"Cookie": f"fulfillmentStoreId={store_id}"}


class ColesAdapter:
    """Read a Coles-dialect site; remembers the build id, the category totals and product slugs."""

    def __init__(self, fetcher: Fetcher, site: str = SITE) -> None:
        self.fetcher = fetcher
        self.routes = ColesRoutes(site.rstrip("/"))
        self._build_id: str | None = None
        self._build_lock = asyncio.Lock()
        self._first_store: str | None = None
        self._totals: dict[str, int | None] = {}
        self._slugs: dict[str, str] = {}

    async def stores(self, chain: str) -> list[StoreInfo]:
        """Return the chain's stores."""
        stores = await get_parsed(self.fetcher, *self.routes.stores(), coles.parse_stores)
        if stores:
            self._first_store = stores[0].store_id
        return stores

    async def categories(self, chain: str) -> list[Category]:
        """Return the catalogue's categories with their page counts."""
        if self._first_store is None:
            await self.stores(chain)
        url, query = self.routes.categories(self._first_store or "")
        body = (await self.fetcher.request("POST", url, json_body=query)).body
        tree = parsed(url, lambda: coles.parse_categories(body))
        self._totals = {category.slug: category.products for category in tree}
        return [Category(slug=c.slug, pages=c.pages(coles.PAGE_SIZE)) for c in tree]

    async def page(
        self, chain: str, store_id: str, category: str, page: int, day: int | None
    ) -> list[RawRow]:
        """Return one page of a category priced for a store (a real site has no simulated day)."""
        url, body = await self._data(
            lambda build: self.routes.browse(build, category, page), self.routes.store_cookie(store_id)
        )
        expected = self._totals.get(category)
        result = parsed(
            url, lambda: coles.parse_page(body, page=page, expected_total=expected, site=self.routes.site)
        )
        for row in result.rows:
            if isinstance(row.get("url"), str) and row.get("sku") is not None:
                self._slugs[str(row["sku"])] = row["url"].rpartition("/")[2]
        return result.rows

    async def barcode(self, chain: str, sku: str) -> str | None:
        """Return the barcode of a product's page."""
        slug = self._slugs.get(sku, sku)
        url, body = await self._data(lambda build: self.routes.product(build, slug), None)
        return parsed(url, lambda: coles.parse_barcode(body))

    async def _data(self, route: Callable[[str], Route], headers: dict[str, str] | None) -> tuple[str, Any]:
        """GET a data URL of the current build; after a 404, read the build id again once."""
        build = self._build_id or await self._refresh_build(None)
        url, params = route(build)
        try:
            return url, (await self.fetcher.request("GET", url, params=params, headers=headers)).body
        except NotFoundError:
            fresh = await self._refresh_build(build)
            if fresh == build:
                raise SiteDefenceError(
                    "build_id", url, f"build {build} answered 404 and the home page still names it"
                ) from None
        url, params = route(fresh)
        try:
            return url, (await self.fetcher.request("GET", url, params=params, headers=headers)).body
        except NotFoundError:
            raise SiteDefenceError("build_id", url, f"the new build {fresh} answered 404 as well") from None

    async def _refresh_build(self, stale: str | None) -> str:
        """Read the build id from the home page, once for all requests that found `stale` gone."""
        async with self._build_lock:
            if self._build_id is not None and self._build_id != stale:
                return self._build_id
            home = self.routes.home()
            html = (await self.fetcher.request("GET", home, want="text")).body
            build = parsed(home, lambda: coles.parse_build_id(html))
            if build != self._build_id:
                log.info("coles build id read", site=self.routes.site, build_id=build, was=self._build_id)
            self._build_id = build
            return build
