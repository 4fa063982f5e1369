"""The storefront's HTTP API: shops that fail like real ones, the simulation's controls, ground truth.

Each chain of the world speaks one dialect: the storefront's own JSON API under /v1, or a
Coles-like or Woolworths-like site under /shop/{chain} (see simulator.sites). /v1/chains tells
which chain speaks which, and where.
"""

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.dialects import CHALLENGE_PAGE, EMPTY_CATEGORY, SHOWN_OFFERS, Dialect
from simulator.sites import ChainSites, site_routers
from simulator.world import NotFoundError, Offer, World, draw

RETRY_AFTER_SECONDS = "1"

Misbehaviour = Literal[
    "none", "challenge", "storm-403", "storm-429", "empty-pages", "renamed-field", "stale-build"
]
"""How the chains' sites misbehave: a bot challenge page instead of data, every request refused
with 403 or 429, category pages silently empty, the price field renamed (schema drift), or the
data of every build answering 404 while the home page still names one (a deploy gone wrong)."""

DayQuery = Annotated[int | None, Query(ge=0, description="Day to price at; the shop's clock when left out")]


class TokenBuckets:
    """A token bucket per client: `rate` requests a second on average, in bursts of up to max(1, rate)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Start with every client's bucket full; a rate <= 0 lets everything through."""
        self.rate = rate
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str) -> bool:
        """Take a token from the client's bucket; False when it has none."""
        if self.rate <= 0:
            return True
        burst = max(1.0, self.rate)
        now = self._clock()
        tokens, last = self._buckets.get(client, (burst, now))
        tokens = min(burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        self._buckets[client] = (tokens - 1 if allowed else tokens, now)
        return allowed


class ClockChange(BaseModel):
    """Set the shop's day, or move it forward: exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    day: int | None = Field(default=None, ge=0)
    advance: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def check_exactly_one(self) -> "ClockChange":
        """Reject a change that gives both fields or neither."""
        if (self.day is None) == (self.advance is None):
            raise ValueError("give exactly one of day and advance")
        return self


class ControlChange(BaseModel):
    """New failure settings; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    rate_limit_rps: float | None = None
    error_rate: float | None = Field(default=None, ge=0, le=1)
    misbehaviour: Misbehaviour | None = None
    misbehaving_chains: list[str] | None = Field(
        default=None, description="The chains that misbehave; an empty list or none given: every chain"
    )
    misbehaving_answers: int | None = Field(
        default=None, ge=1, description="Misbehave in this many answers, then behave again; none: until told"
    )
    build_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="A new Coles build",
    )


class ZoneMovesChange(BaseModel):
    """How many stores each chain re-zones, and on which day (left out: the day it has)."""

    model_config = ConfigDict(extra="forbid")

    per_chain: int = Field(ge=0)
    day: int | None = Field(default=None, ge=1)


class Challenged(Exception):  # noqa: N818 - a state of the site, not an error of ours
    """A request the site answers with its bot challenge page."""


class Storefront:
    """The shops' state (clock, dialects, failure settings, what was answered) and the /v1 handlers."""

    def __init__(
        self,
        world: World,
        *,
        rate_limit_rps: float,
        error_rate: float,
        dialects: Mapping[str, Dialect] | None = None,
    ) -> None:
        """Open the shops at day 0 with the given failure settings, each chain in its dialect."""
        self.world = world
        self.day = 0
        self.dialects = dict(dialects or {})
        if unknown := sorted(set(self.dialects) - {chain.slug for chain in world.chains}):
            raise ValueError(f"dialects name chains the world does not have: {unknown}")
        self.build_id = f"{world.config.seed}.01_v1.0.0"
        self.misbehaviour: Misbehaviour = "none"
        self.misbehaving_chains: frozenset[str] = frozenset()
        self.misbehaving_answers: int | None = None
        self.buckets = TokenBuckets(rate_limit_rps)
        self.error_rate = error_rate
        self.requests = 0
        self.throttled = 0
        self.errors = 0
        self.pages_served: Counter[str] = Counter()
        self._path_requests: Counter[str] = Counter()

    async def admit(self, request: Request) -> None:
        """Count a shop request, then refuse it with 429 over the client's rate or 503 by the error rate."""
        self.requests += 1
        client = request.client.host if request.client else "unknown"
        if not self.buckets.allow(client):
            self.throttled += 1
            raise HTTPException(429, "too many requests", headers={"Retry-After": RETRY_AFTER_SECONDS})
        # The n-th request to a path fails or not the same way in every run with this seed.
        path = request.url.path
        nth = self._path_requests[path]
        self._path_requests[path] += 1
        if draw(self.world.config.seed, "error", path, nth) < self.error_rate:
            self.errors += 1
            raise HTTPException(503, "service unavailable, try again")

    async def misbehave(self, request: Request) -> None:
        """Answer a chain's request as the chosen misbehaviour does: a challenge page or a refusal storm."""
        chain = request.path_params.get("chain")
        if chain is None:
            return
        if self.misbehaves(chain, "challenge"):
            raise Challenged
        if self.misbehaves(chain, "storm-403"):
            self.throttled += 1
            raise HTTPException(403, "access denied")
        if self.misbehaves(chain, "storm-429"):
            self.throttled += 1
            raise HTTPException(429, "too many requests", headers={"Retry-After": RETRY_AFTER_SECONDS})

    def misbehaves(self, chain: str, misbehaviour: Misbehaviour) -> bool:
        """Tell whether this answer of a chain misbehaves this way; it counts against the budget if so."""
        chosen = not self.misbehaving_chains or chain in self.misbehaving_chains
        if self.misbehaviour != misbehaviour or not chosen:
            return False
        if self.misbehaving_answers is not None:
            self.misbehaving_answers -= 1
            if self.misbehaving_answers <= 0:
                # The storm is over: the next answer behaves.
                self.misbehaviour, self.misbehaving_answers = "none", None
        return True

    def dialect(self, chain: str) -> Dialect:
        """Return the dialect a chain speaks, or raise NotFoundError for a chain the world lacks."""
        self.chain_name(chain)
        return self.dialects.get(chain, "storefront")

    def chain_name(self, chain: str) -> str:
        """Return a chain's display name, or raise NotFoundError."""
        for known in self.world.chains:
            if known.slug == chain:
                return known.name
        raise NotFoundError(f"no chain {chain!r}")

    def _shown(self, chain: str, offer: Offer | None) -> Offer | None:
        """Return the offer if the chain's dialect shows offers of its kind."""
        return offer if offer is not None and offer.kind in SHOWN_OFFERS[self.dialect(chain)] else None

    # --- the shops -------------------------------------------------------------------------

    async def chains(self) -> JSONResponse:
        """List the chains, each with the dialect it speaks and the base URL of its site."""
        return JSONResponse(
            {
                "chains": [
                    {
                        "chain": chain.slug,
                        "name": chain.name,
                        "dialect": self.dialect(chain.slug),
                        "url": "/v1" if self.dialect(chain.slug) == "storefront" else f"/shop/{chain.slug}",
                    }
                    for chain in self.world.chains
                ]
            }
        )

    async def stores(self, chain: str) -> JSONResponse:
        """List a chain's stores."""
        stores = self.world.stores(chain)
        return JSONResponse(
            {
                "stores": [
                    {"id": store.id, "name": store.name, "state": store.state, "postcode": store.postcode}
                    for store in stores
                ]
            }
        )

    async def categories(self, chain: str) -> JSONResponse:
        """List a chain's categories with their product and page counts."""
        categories = self.world.categories(chain)
        return JSONResponse(
            {
                "page_size": self.world.config.page_size,
                "categories": [
                    {"slug": c.slug, "name": c.name, "products": c.products, "pages": c.pages}
                    for c in categories
                ],
            }
        )

    async def page(
        self, chain: str, store_id: str, slug: str, page: int = 1, day: DayQuery = None
    ) -> JSONResponse:
        """Show a page of a category with a store's prices in dollars, on the clock's day or the given one."""
        on_day = self.day if day is None else day
        listings = self.world.page(chain, store_id, slug, page, on_day)
        self.pages_served[f"{chain}/{store_id}/{slug}/{page}/{on_day}"] += 1
        if self.misbehaves(chain, "empty-pages"):
            listings = []
        price_field = "price_now" if self.misbehaves(chain, "renamed-field") else "price"
        return JSONResponse(
            {
                "chain": chain,
                "store_id": store_id,
                "category": slug,
                "page": page,
                "pages": self.world.category(chain, slug).pages,
                "day": on_day,
                "products": [
                    {
                        "sku": listing.sku,
                        "name": listing.name,
                        "brand": listing.brand,
                        "size": listing.size,
                        price_field: listing.price_cents / 100,
                        "was_price": None
                        if listing.was_price_cents is None
                        else listing.was_price_cents / 100,
                        "available": listing.available,
                    }
                    for listing in listings
                ],
            }
        )

    async def product(self, chain: str, sku: str) -> JSONResponse:
        """Describe one product, barcode included."""
        product = self.world.product(chain, sku)
        return JSONResponse(
            {
                "sku": product.sku,
                "name": product.name,
                "brand": product.brand,
                "size": product.size,
                "category": product.category,
                "barcode": product.barcode,
            }
        )

    # --- the simulation's controls -------------------------------------------------------------

    async def clock(self) -> JSONResponse:
        """Tell the shop's day."""
        return JSONResponse({"day": self.day})

    async def set_clock(self, change: ClockChange) -> JSONResponse:
        """Set the shop's day or move it forward."""
        self.day = change.day if change.day is not None else self.day + (change.advance or 0)
        return JSONResponse({"day": self.day})

    async def control(self) -> JSONResponse:
        """Tell the failure settings, the misbehaviour and the Coles-like build id."""
        return JSONResponse(
            {
                "rate_limit_rps": self.buckets.rate,
                "error_rate": self.error_rate,
                "misbehaviour": self.misbehaviour,
                "misbehaving_chains": sorted(self.misbehaving_chains),
                "misbehaving_answers": self.misbehaving_answers,
                "build_id": self.build_id,
            }
        )

    async def set_control(self, change: ControlChange) -> JSONResponse:
        """Change the failure settings, the misbehaviour or the build id at run time."""
        if change.rate_limit_rps is not None:
            self.buckets.rate = change.rate_limit_rps
        if change.error_rate is not None:
            self.error_rate = change.error_rate
        if change.misbehaviour is not None:
            self.misbehaviour = change.misbehaviour
            for chain in change.misbehaving_chains or []:
                self.chain_name(chain)
            self.misbehaving_chains = frozenset(change.misbehaving_chains or [])
            self.misbehaving_answers = change.misbehaving_answers
        if change.build_id is not None:
            self.build_id = change.build_id
        return await self.control()

    async def zone_moves(self) -> JSONResponse:
        """Tell how many stores each chain re-zones, and on which day."""
        config = self.world.config
        return JSONResponse({"per_chain": config.zone_moves_per_chain, "day": config.zone_move_day})

    async def set_zone_moves(self, change: ZoneMovesChange) -> JSONResponse:
        """Re-zone stores: the world's prices change from the move day on, for past days too."""
        day = self.world.config.zone_move_day if change.day is None else change.day
        try:
            self.world = self.world.with_zone_moves(change.per_chain, day)
        except ValueError as error:
            raise HTTPException(422, str(error)) from error
        return await self.zone_moves()

    # --- ground truth ----------------------------------------------------------------------------

    async def truth_zones(self, day: DayQuery = None) -> JSONResponse:
        """Map every store to its pricing zone on a day (stores re-zoned on a move day change zone)."""
        on_day = self.day if day is None else day
        world = self.world
        return JSONResponse(
            {
                "day": on_day,
                "chains": {
                    chain.slug: {
                        store.id: world.zone_of(chain.slug, store.id, on_day)
                        for store in world.stores(chain.slug)
                    }
                    for chain in world.chains
                },
            }
        )

    async def truth_zone_moves(self) -> JSONResponse:
        """List the stores re-zoned, with their zones before and after and the day they moved."""
        return JSONResponse({"moves": [asdict(move) for move in self.world.zone_moves()]})

    async def truth_prices(self, chain: str, day: DayQuery = None) -> JSONResponse:
        """List what every store of a chain charges for every product on a day, in cents."""
        on_day = self.day if day is None else day
        world = self.world
        products = world.products(chain)
        prices = []
        for store in world.stores(chain):
            for product in products:
                price = world.price(chain, store.id, product.sku, on_day)
                offer = self._shown(chain, world.offer(chain, store.id, product.sku, on_day))
                prices.append(
                    {
                        "store_id": store.id,
                        "sku": product.sku,
                        "price_cents": price.price_cents,
                        "was_price_cents": price.was_price_cents,
                        "available": price.available,
                        "sold_by": world.sold_by(chain, product.sku),
                        "multibuy": None
                        if offer is None or offer.kind != "multibuy"
                        else {"quantity": offer.quantity, "total_cents": offer.total_cents},
                        "member_price_cents": None
                        if offer is None or offer.kind != "member"
                        else offer.total_cents,
                    }
                )
        return JSONResponse({"day": on_day, "prices": prices})

    async def truth_specials(self, day: DayQuery = None) -> JSONResponse:
        """List every zone x product on special on a day, true or illusory."""
        on_day = self.day if day is None else day
        return JSONResponse(
            {
                "day": on_day,
                "specials": [
                    {
                        "chain": s.chain,
                        "zone": s.zone,
                        "sku": s.sku,
                        "kind": s.kind,
                        "price_cents": s.price_cents,
                        "was_price_cents": s.was_price_cents,
                        "regular_cents": s.regular_cents,
                    }
                    for s in self.world.specials(on_day)
                ],
            }
        )

    async def truth_offers(self, day: DayQuery = None) -> JSONResponse:
        """List every zone x product offer a chain's site shows on a day: multi-buys and member prices."""
        on_day = self.day if day is None else day
        shown = [offer for offer in self.world.offers(on_day) if self._shown(offer.chain, offer)]
        return JSONResponse({"day": on_day, "offers": [asdict(offer) for offer in shown]})

    async def truth_dialects(self) -> JSONResponse:
        """Tell each chain's dialect and site, the Coles-like build id and what every tree lists empty."""
        return JSONResponse(
            {
                "chains": {chain.slug: self.dialect(chain.slug) for chain in self.world.chains},
                "build_id": self.build_id,
                "empty_category": EMPTY_CATEGORY[0],
                "sold_by_kg": {
                    chain.slug: [
                        product.sku
                        for product in self.world.products(chain.slug)
                        if self.world.sold_by(chain.slug, product.sku) == "kg"
                    ]
                    for chain in self.world.chains
                },
            }
        )

    async def truth_equivalences(self) -> JSONResponse:
        """List every known pair of equivalent listings."""
        return JSONResponse(
            {
                "equivalences": [
                    {
                        "level": e.level,
                        "chain_a": e.chain_a,
                        "sku_a": e.sku_a,
                        "chain_b": e.chain_b,
                        "sku_b": e.sku_b,
                    }
                    for e in self.world.equivalences()
                ]
            }
        )

    async def truth_requests(self) -> JSONResponse:
        """Count the pages served, keyed chain/store_id/category/page/day, and the 429s and 503s sent."""
        return JSONResponse(
            {
                "pages": dict(self.pages_served),
                "throttled": self.throttled,
                "errors": self.errors,
                "requests": self.requests,
            }
        )


async def _not_found(_: Request, error: Exception) -> JSONResponse:
    """Answer 404 for a chain, store, category, page or product the world does not have."""
    return JSONResponse({"detail": str(error)}, status_code=404)


async def _challenge(_: Request, __: Exception) -> Response:
    """Answer with the bot challenge page, as a protected site does instead of its data."""
    return Response(CHALLENGE_PAGE, media_type="text/html")


def create_app(
    world: World,
    *,
    rate_limit_rps: float,
    error_rate: float,
    dialects: Mapping[str, Dialect] | None = None,
) -> FastAPI:
    """Serve a world's shops, each chain in its dialect, throttled and failing as configured; its truth."""
    shop = Storefront(world, rate_limit_rps=rate_limit_rps, error_rate=error_rate, dialects=dialects)
    app = FastAPI(title="pricestream storefront", description="Simulated supermarket shops to scrape.")
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(Challenged, _challenge)

    # The directory of chains is the simulation's, not a chain's site: it never misbehaves.
    directory = APIRouter(prefix="/v1", tags=["shops"], dependencies=[Depends(shop.admit)])
    directory.add_api_route("/chains", shop.chains, methods=["GET"])
    chain_routes = [Depends(shop.admit), Depends(shop.misbehave)]
    shops = APIRouter(prefix="/v1", tags=["shops"], dependencies=chain_routes)
    shops.add_api_route("/chains/{chain}/stores", shop.stores, methods=["GET"])
    shops.add_api_route("/chains/{chain}/categories", shop.categories, methods=["GET"])
    shops.add_api_route("/chains/{chain}/stores/{store_id}/categories/{slug}", shop.page, methods=["GET"])
    shops.add_api_route("/chains/{chain}/products/{sku}", shop.product, methods=["GET"])

    # The clock and the controls steer the simulation: they never throttle or fail.
    controls = APIRouter(tags=["simulation"])
    controls.add_api_route("/v1/clock", shop.clock, methods=["GET"])
    controls.add_api_route("/v1/clock", shop.set_clock, methods=["POST"])
    controls.add_api_route("/_control", shop.control, methods=["GET"])
    controls.add_api_route("/_control", shop.set_control, methods=["POST"])
    controls.add_api_route("/_control/zone-moves", shop.zone_moves, methods=["GET"])
    controls.add_api_route("/_control/zone-moves", shop.set_zone_moves, methods=["POST"])

    truth = APIRouter(prefix="/_truth", tags=["ground truth"])
    truth.add_api_route("/zones", shop.truth_zones, methods=["GET"])
    truth.add_api_route("/zone-moves", shop.truth_zone_moves, methods=["GET"])
    truth.add_api_route("/prices", shop.truth_prices, methods=["GET"])
    truth.add_api_route("/specials", shop.truth_specials, methods=["GET"])
    truth.add_api_route("/equivalences", shop.truth_equivalences, methods=["GET"])
    truth.add_api_route("/offers", shop.truth_offers, methods=["GET"])
    truth.add_api_route("/dialects", shop.truth_dialects, methods=["GET"])
    truth.add_api_route("/requests", shop.truth_requests, methods=["GET"])

    for router in (directory, shops, *site_routers(ChainSites(shop), chain_routes), controls, truth):
        app.include_router(router)
    return app
