"""Woolworths' web API dialect: POST browse calls per category page, the store chosen per session.

The site prices a browse call for the session's fulfilment store. Each store gets its own
session (the home page's cookies plus those the fulfilment call sets), sent explicitly
with that store's requests, so one client serves every store at once.
"""

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from scraper.chains.base import get_parsed, parsed
from scraper.domain.chains import ChainCategory, ParsedPage, woolworths
from scraper.domain.importers import RawRow
from scraper.domain.planning import Category, StoreInfo
from scraper.fetching import Fetcher

SITE = "https://www.woolworths.com.au"


@dataclass(frozen=True, slots=True)
class WoolworthsRoutes:
    """Every request the adapter sends, in one place: paths, query parameters, bodies."""

    site: str = SITE

    def home(self) -> str:
        """Return the home page, which opens a session."""
        return f"{self.site}/"

    def stores(self) -> tuple[str, dict[str, Any]]:
        """Return the store locator's address and query for every supermarket."""
        params = {"Max": 10000, "Division": "SUPERMARKETS", "Facility": "", "postcode": "*"}
        return f"{self.site}/apis/ui/StoreLocator/Stores", params

    def fulfilment(self, store_id: str) -> tuple[str, dict[str, Any]]:
        """Return the call that makes a store the session's pick-up store."""
        store: int | str = int(store_id) if store_id.isdigit() else store_id
        return f"{self.site}/api/v3/ui/fulfilment", {"fulfilmentMethod": "Pickup", "fulfilmentStoreId": store}

    def categories(self) -> str:
        """Return the category tree's address."""
        return f"{self.site}/apis/ui/PiesCategoriesWithSpecials"

    def browse(self, category: ChainCategory, page: int) -> tuple[str, dict[str, Any]]:
        """Return the browse call of one page of a category."""
        location = f"/shop/browse/{category.slug}"
        return f"{self.site}/apis/ui/browse/category", {
            "categoryId": category.node_id,
            "pageNumber": page,
            "pageSize": woolworths.PAGE_SIZE,
            # A fixed order keeps pages apart while the shop works; relevance reshuffles them.
            "sortType": "Name",
            "url": location,
            "location": location,
            "formatObject": json.dumps({"name": category.name}),
            "isSpecial": False,
            "isBundle": False,
            "isMobile": False,
            "filters": [],
            "token": "",
            "gpBoost": 0,
            "isHideUnavailableProducts": False,
            "enableAdReRanking": False,
            "groupEdmVariants": True,
            "categoryVersion": "v2",
        }

    def product(self, sku: str) -> tuple[str, dict[str, Any]]:
        """Return the address of a product's details."""
        return f"{self.site}/apis/ui/product/detail/{sku}", {"isMobile": "false"}


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    """Return the headers that send a session's cookies."""
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())} if cookies else {}


class WoolworthsAdapter:
    """Read a Woolworths-dialect site; keeps one session per store and the category tree."""

    def __init__(self, fetcher: Fetcher, site: str = SITE) -> None:
        self.fetcher = fetcher
        self.routes = WoolworthsRoutes(site.rstrip("/"))
        self._home_cookies: dict[str, str] | None = None
        self._sessions: dict[str, dict[str, str]] = {}
        self._session_lock = asyncio.Lock()
        self._first_store: str | None = None
        self._tree: dict[str, ChainCategory] = {}

    async def stores(self, chain: str) -> list[StoreInfo]:
        """Return the chain's supermarkets."""
        stores = await get_parsed(self.fetcher, *self.routes.stores(), woolworths.parse_stores)
        if stores:
            self._first_store = stores[0].store_id
        return stores

    async def categories(self, chain: str) -> list[Category]:
        """Return the categories with their page counts; a count the tree lacks is read from page 1."""
        tree = await get_parsed(self.fetcher, self.routes.categories(), None, woolworths.parse_categories)
        self._tree = {category.slug: category for category in tree}
        categories = []
        for category in tree:
            if category.products is None:
                if self._first_store is None:
                    await self.stores(chain)
                first = await self._browse(self._first_store or "", category, 1)
                category = self._tree[category.slug] = ChainCategory(
                    category.slug, category.node_id, category.name, first.total
                )
            categories.append(Category(slug=category.slug, pages=category.pages(woolworths.PAGE_SIZE)))
        return categories

    async def page(
        self, chain: str, store_id: str, category: str, page: int, day: int | None
    ) -> list[RawRow]:
        """Return one page of a category priced for a store (a real site has no simulated day)."""
        if category not in self._tree:
            # A run resumed after a restart: the tree maps the slug to the shop's category id.
            await self.categories(chain)
        return (await self._browse(store_id, self._tree[category], page)).rows

    async def barcode(self, chain: str, sku: str) -> str | None:
        """Return the barcode of a product's details."""
        url, params = self.routes.product(sku)
        answer = await self.fetcher.request(
            "GET", url, params=params, headers=cookie_header(await self._home_session())
        )
        return parsed(url, lambda: woolworths.parse_barcode(answer.body))

    async def _browse(self, store_id: str, category: ChainCategory, page: int) -> ParsedPage:
        """POST a browse call for a page of a category in the store's session, and parse it."""
        url, body = self.routes.browse(category, page)
        headers = cookie_header(await self._store_session(store_id))
        answer = await self.fetcher.request("POST", url, json_body=body, headers=headers)
        return parsed(
            url,
            lambda: woolworths.parse_page(
                answer.body, page=page, expected_total=category.products, site=self.routes.site
            ),
        )

    async def _home_session(self) -> dict[str, str]:
        """Open a session on the home page once; later sessions start from its cookies."""
        if self._home_cookies is None:
            answer = await self.fetcher.request("GET", self.routes.home(), want="text")
            self._home_cookies = answer.cookies
        return self._home_cookies

    async def _store_session(self, store_id: str) -> dict[str, str]:
        """Return the cookies of a session whose fulfilment store is `store_id`, choosing it once."""
        async with self._session_lock:
            session = self._sessions.get(store_id)
            if session is None:
                cookies = dict(await self._home_session())
                url, body = self.routes.fulfilment(store_id)
                answer = await self.fetcher.request(
                    "POST", url, json_body=body, headers=cookie_header(cookies)
                )
                parsed(url, lambda: woolworths.parse_fulfilment(answer.body, store_id))
                session = self._sessions[store_id] = cookies | answer.cookies
            return session
