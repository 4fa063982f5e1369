"""The world's chains served as Coles-like and Woolworths-like web sites, under /shop/{chain}.

A chain's site lives at its own base URL, `/shop/{chain}`, and answers the paths the real chain's
site answers under https://www.coles.com.au or https://www.woolworths.com.au. A chain served in
one dialect answers 404 to the other's paths. Prices are those of the shop's clock, like a real site.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Cookie, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from simulator import dialects
from simulator.dialects import COLES_PAGE_SIZE, EMPTY_CATEGORY, WOOLWORTHS_MAX_PAGE_SIZE, Dialect, Shelf
from simulator.world import Category, NotFoundError

if TYPE_CHECKING:
    from simulator.app import Storefront

# The cookie a Woolworths-like site keeps the session's pick-up store in, set by the fulfilment call.
WOOLWORTHS_STORE_COOKIE = "w-fulfilment-store"
COLES_STORE_COOKIE = "fulfillmentStoreId"


class BrowseRequest(BaseModel):
    """The body of a Woolworths browse call; the fields a site needs, the rest of a real body allowed."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    category_id: str = Field(alias="categoryId", min_length=1)
    page_number: int = Field(alias="pageNumber", ge=1)
    page_size: int = Field(alias="pageSize", ge=1)
    sort_type: str = Field(default="TraderRelevance", alias="sortType")


def chosen_store(body: dict[str, Any]) -> str:
    """Return the store a fulfilment body chooses, whether its id comes as a string or a number."""
    # Public scrapers spell the key both ways; neither is verified against the live site.
    value = body.get("fulfilmentStoreId", body.get("FulfilmentStoreId"))
    if value is None or str(value) == "":
        raise HTTPException(400, "give fulfilmentStoreId: the store to pick up from")
    return str(value)


def menu_store(body: dict[str, Any]) -> str | None:
    """Return the store a Coles menu query names (`COL:<id>`), if it names one."""
    variables = body.get("variables")
    store = variables.get("storeId") if isinstance(variables, dict) else None
    return str(store).removeprefix("COL:") if store else None


class ChainSites:
    """The handlers of every chain's Coles-like or Woolworths-like site."""

    def __init__(self, shop: "Storefront") -> None:
        """Serve the shop's world, clock and misbehaviour settings."""
        self.shop = shop

    def _chain(self, chain: str, dialect: Dialect) -> None:
        """Check that the chain exists and is served in this dialect, or answer 404."""
        if self.shop.dialect(chain) != dialect:
            raise NotFoundError(f"chain {chain!r} has no {dialect} site")

    def _category(self, chain: str, token: str) -> Category | None:
        """Return the category a URL token names; None for the empty category every tree lists."""
        for category in self.shop.world.categories(chain):
            if dialects.seo_token(category.name) == token:
                return category
        if token == EMPTY_CATEGORY[0]:
            return None
        raise NotFoundError(f"chain {chain!r} has no category {token!r}")

    def _shelves(self, chain: str, store_id: str, category: Category, start: int, stop: int) -> list[Shelf]:
        """Return what the store's shelves show from `start` to `stop` of a category today."""
        shop, world, day = self.shop, self.shop.world, self.shop.day
        if shop.misbehaves(chain, "empty-pages"):
            # The page still claims its totals: only a scraper that counts what it got notices.
            world.zone_of(chain, store_id, day)
            return []
        return [
            Shelf(listing, world.sold_by(chain, listing.sku), world.offer(chain, store_id, listing.sku, day))
            for listing in world.listings(chain, store_id, category.slug, day, start, stop)
        ]

    def _count(self, chain: str, store_id: str, token: str, page: int) -> None:
        """Count a page served, as /_truth/requests tells."""
        self.shop.pages_served[f"{chain}/{store_id}/{token}/{page}/{self.shop.day}"] += 1

    async def home(self, chain: str) -> HTMLResponse:
        """Show the home page; a Coles-like one names the build id of its data routes in __NEXT_DATA__."""
        dialect = self.shop.dialect(chain)
        if dialect == "storefront":
            raise NotFoundError(f"chain {chain!r} has no web site: it speaks the storefront's /v1 API")
        name = self.shop.chain_name(chain)
        if dialect == "coles":
            return HTMLResponse(dialects.home_page(name, self.shop.build_id))
        return HTMLResponse(
            f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{name}</title></head>\n'
            f"<body><wow-root>{name}</wow-root></body>\n</html>\n"
        )

    # --- Coles-like ------------------------------------------------------------------------

    async def coles_stores(self, chain: str) -> JSONResponse:
        """List the chain's stores."""
        self._chain(chain, "coles")
        return JSONResponse(dialects.coles_stores(self.shop.world.stores(chain)))

    async def coles_categories(self, chain: str, body: Annotated[dict[str, Any], Body()]) -> JSONResponse:
        """Answer the GraphQL menu query with the category tree (the store it names must exist)."""
        self._chain(chain, "coles")
        if body.get("operationName") != "GetShopProductsMenu":
            raise HTTPException(400, "this site answers the GetShopProductsMenu operation only")
        if (store := menu_store(body)) is not None:
            self.shop.world.zone_of(chain, store)
        return JSONResponse(dialects.coles_categories(self.shop.world.categories(chain)))

    async def coles_browse(
        self,
        chain: str,
        build_id: str,
        token: str,
        page: Annotated[int, Query(ge=1)] = 1,
        store_id: Annotated[str | None, Query(alias="storeId")] = None,
        store_cookie: Annotated[str | None, Cookie(alias=COLES_STORE_COOKIE)] = None,
    ) -> JSONResponse:
        """Show a page of a category priced for the store the request names (storeId, or the cookie)."""
        self._chain(chain, "coles")
        self._check_build(chain, build_id)
        store = store_id or store_cookie
        if not store:
            raise HTTPException(400, "choose a store: storeId or the fulfillmentStoreId cookie")
        token = token.removesuffix(".json")
        category = self._category(chain, token)
        start = (page - 1) * COLES_PAGE_SIZE
        if category is None:
            self.shop.world.zone_of(chain, store, self.shop.day)
            shelves: Sequence[Shelf] = []
            total = 0
        else:
            shelves = self._shelves(chain, store, category, start, start + COLES_PAGE_SIZE)
            total = category.products
        self._count(chain, store, token, page)
        renamed = self.shop.misbehaves(chain, "renamed-field")
        body = dialects.coles_browse(
            self.shop.world.config.seed, chain, token, page, shelves, total, renamed=renamed
        )
        return JSONResponse(body)

    async def coles_product(self, chain: str, build_id: str, slug: str) -> JSONResponse:
        """Show a product page's data; the slug ends in the product id, as Coles' product URLs do."""
        self._chain(chain, "coles")
        self._check_build(chain, build_id)
        sku = slug.removesuffix(".json").rsplit("-", 1)[-1]
        product = self.shop.world.product(chain, sku)
        return JSONResponse(
            dialects.coles_product(product.sku, product.name, product.brand, product.size, product.barcode)
        )

    def _check_build(self, chain: str, build_id: str) -> None:
        """Answer 404 to data of another build, as a Next.js site does after a deploy (or a bad one)."""
        if build_id != self.shop.build_id or self.shop.misbehaves(chain, "stale-build"):
            raise NotFoundError(f"no build {build_id!r}: read the build id from the home page again")

    # --- Woolworths-like -------------------------------------------------------------------

    async def woolworths_stores(self, chain: str) -> JSONResponse:
        """List the chain's supermarkets, as the store locator does."""
        self._chain(chain, "woolworths")
        return JSONResponse(dialects.woolworths_stores(self.shop.world.stores(chain)))

    async def woolworths_fulfilment(
        self, chain: str, body: Annotated[dict[str, Any], Body()]
    ) -> JSONResponse:
        """Choose the session's pick-up store: browse calls are priced for it from now on."""
        self._chain(chain, "woolworths")
        store_id = chosen_store(body)
        self.shop.world.zone_of(chain, store_id)  # an unknown store is 404
        response = JSONResponse(dialects.woolworths_fulfilment(store_id))
        response.set_cookie(WOOLWORTHS_STORE_COOKIE, store_id)
        return response

    async def woolworths_categories(self, chain: str) -> JSONResponse:
        """Show the category tree."""
        self._chain(chain, "woolworths")
        return JSONResponse(dialects.woolworths_categories(chain, self.shop.world.categories(chain)))

    async def woolworths_browse(
        self,
        chain: str,
        browse: BrowseRequest,
        store_cookie: Annotated[str | None, Cookie(alias=WOOLWORTHS_STORE_COOKIE)] = None,
    ) -> JSONResponse:
        """Show a page of a category priced for the session's pick-up store."""
        self._chain(chain, "woolworths")
        if not store_cookie:
            raise HTTPException(400, "no pick-up store chosen: POST /api/v3/ui/fulfilment first")
        if browse.page_size > WOOLWORTHS_MAX_PAGE_SIZE:
            raise HTTPException(400, f"pageSize is at most {WOOLWORTHS_MAX_PAGE_SIZE}")
        category, name, token = self._node(chain, browse.category_id)
        start = (browse.page_number - 1) * browse.page_size
        if category is None:
            self.shop.world.zone_of(chain, store_cookie, self.shop.day)
            shelves: Sequence[Shelf] = []
            total = 0
        else:
            shelves = self._shelves(chain, store_cookie, category, start, start + browse.page_size)
            total = category.products
        self._count(chain, store_cookie, token, browse.page_number)
        renamed = self.shop.misbehaves(chain, "renamed-field")
        seed = self.shop.world.config.seed
        body = dialects.woolworths_browse(
            seed, chain, token, browse.page_number, name, shelves, total, renamed=renamed
        )
        return JSONResponse(body)

    def _node(self, chain: str, node: str) -> tuple[Category | None, str, str]:
        """Return the category a node id names (None for the empty one), its name and its URL token."""
        for category in self.shop.world.categories(chain):
            token = dialects.seo_token(category.name)
            if dialects.node_id(chain, token) == node:
                return category, category.name, token
        if dialects.node_id(chain, EMPTY_CATEGORY[0]) == node:
            return None, EMPTY_CATEGORY[1], EMPTY_CATEGORY[0]
        raise NotFoundError(f"chain {chain!r} has no category node {node!r}")

    async def woolworths_product(self, chain: str, stockcode: str) -> JSONResponse:
        """Show a product's details, with its barcode."""
        self._chain(chain, "woolworths")
        product = self.shop.world.product(chain, stockcode)
        return JSONResponse(
            dialects.woolworths_product(
                product.sku, product.name, product.brand, product.size, product.barcode
            )
        )


def site_routers(sites: ChainSites, dependencies: Sequence[Any]) -> list[APIRouter]:
    """Route every chain's Coles-like and Woolworths-like paths under /shop/{chain}."""
    coles = APIRouter(prefix="/shop/{chain}", tags=["Coles-like sites"], dependencies=list(dependencies))
    coles.add_api_route("/", sites.home, methods=["GET"], response_class=HTMLResponse)
    coles.add_api_route("/api/bff/stores", sites.coles_stores, methods=["GET"])
    coles.add_api_route("/api/graphql", sites.coles_categories, methods=["POST"])
    coles.add_api_route("/_next/data/{build_id}/en/browse/{token}", sites.coles_browse, methods=["GET"])
    coles.add_api_route("/_next/data/{build_id}/en/product/{slug}", sites.coles_product, methods=["GET"])

    woolworths = APIRouter(
        prefix="/shop/{chain}", tags=["Woolworths-like sites"], dependencies=list(dependencies)
    )
    woolworths.add_api_route("/apis/ui/StoreLocator/Stores", sites.woolworths_stores, methods=["GET"])
    woolworths.add_api_route("/api/v3/ui/fulfilment", sites.woolworths_fulfilment, methods=["POST"])
    woolworths.add_api_route("/apis/ui/Fulfilment", sites.woolworths_fulfilment, methods=["POST"])
    woolworths.add_api_route(
        "/apis/ui/PiesCategoriesWithSpecials", sites.woolworths_categories, methods=["GET"]
    )
    woolworths.add_api_route("/apis/ui/browse/category", sites.woolworths_browse, methods=["POST"])
    woolworths.add_api_route("/apis/ui/product/detail/{stockcode}", sites.woolworths_product, methods=["GET"])
    return [coles, woolworths]
