"""The catalogue's public API under /v1: search, products, baskets, bargains, categories, export."""

import difflib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from catalogue import baskets
from catalogue.domain import cursor as cursors
from catalogue.problems import PROBLEM_RESPONSES, ProblemError, ProblemRoute, bad_parameter
from catalogue.queries import CatalogueQueries, Product, category_tree
from catalogue.repository import PriceRow, ProductRow
from catalogue.throttling import Throttle
from catalogue.views import (
    BargainList,
    Categories,
    CategoryNode,
    ExportPage,
    PriceView,
    ProductPage,
    SearchHit,
    SearchResults,
    SubstituteView,
    price_view,
    product_view,
)
from servicekit.clock import Clock
from servicekit.db import Database

CHAIN = r"^[a-z0-9][a-z0-9-]{0,31}$"
POPULAR = 10

Chain = Annotated[str | None, Query(pattern=CHAIN, description="A chain id: coles, woolworths, ...")]


def parse_store(text: str) -> tuple[str, str]:
    """Read `chain:store_id`; a 400 naming `store` otherwise."""
    chain, sep, store = text.partition(":")
    if not sep or not store or not chain:
        raise bad_parameter("store", f"{text!r} is not chain:store_id")
    return chain, store


async def known_stores(queries: CatalogueQueries, name: str, stores: Sequence[tuple[str, str]]) -> None:
    """Refuse stores the catalogue never priced nor placed: a 400 naming `name`, with a few it knows.

    A mistyped store would otherwise be answered as one that sells nothing.
    """
    unknown = await queries.unknown_stores(stores)
    if not unknown:
        return
    chain, store = unknown[0]
    known = await queries.store_ids(chain=chain, limit=4)
    more = ", ..." if len(known) > 3 else ""
    hint = f"{chain} has {', '.join(known[:3])}{more}" if known else f"no store of {chain!r} is known"
    raise bad_parameter(name, f"no store {store!r} of {chain!r} has been priced ({hint})")


async def known_chain(queries: CatalogueQueries, chain: str | None) -> None:
    """Refuse a chain the catalogue never saw a product or a price of: a 400 naming `chain`.

    A mistyped chain would otherwise filter everything out and answer an empty list.
    """
    if chain is None or await queries.is_chain(chain):
        return
    chains = await queries.chains()
    if close := difflib.get_close_matches(chain, chains, n=3):
        hint = f"did you mean {' or '.join(close)}?"
    elif chains:
        hint = f"it knows {', '.join(chains[:5])}{', ...' if len(chains) > 5 else ''}"
    else:
        hint = "it knows none yet"
    raise bad_parameter("chain", f"no chain {chain!r} is known ({hint})")


async def known_products(queries: CatalogueQueries, items: Sequence[baskets.BasketItem]) -> None:
    """Refuse a basket line whose product the catalogue never saw: a 400 naming the line."""
    known = await queries.products([(item.chain, item.sku) for item in items])
    for at, item in enumerate(items):
        if (item.chain, item.sku) not in known:
            raise bad_parameter(f"items.{at}", f"no product {item.sku!r} at {item.chain!r}")


def build_api(
    *, db: Database, clock: Clock, freshness: timedelta, throttle: Throttle, page_max: int
) -> APIRouter:
    """Create the catalogue's /v1 routes; every one is throttled and answers 4xx as problem+json."""
    router = APIRouter(
        prefix="/v1",
        tags=["catalogue"],
        route_class=ProblemRoute,
        dependencies=[Depends(throttle)],
        responses=PROBLEM_RESPONSES,
    )
    queries_at = _queries(db, clock, freshness)

    @router.get("/search")
    async def search(
        q: Annotated[str, Query(min_length=2, max_length=200, description="Words of a product's name")],
        chain: Chain = None,
        category: Annotated[str | None, Query(description="A shared category path or a chain's")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> SearchResults:
        """Find products by name, forgiving spelling, best match first, with their cheapest price."""
        async with queries_at() as queries:
            await known_chain(queries, chain)
            found = await queries.search(query=q, chain=chain, category=category, limit=limit)
            cheapest = await queries.cheapest([(p.chain, p.sku) for p, _ in found])
        results = [
            SearchHit(
                product=product_view(product),
                score=round(score, 4),
                cheapest=_cheapest_view(cheapest.get((product.chain, product.sku)), product),
            )
            for product, score in found
        ]
        return SearchResults(query=q, results=results)

    @router.get("/products/{chain}/{sku}")
    async def product(
        chain: Annotated[str, Path(pattern=CHAIN)],
        sku: Annotated[str, Path(min_length=1, max_length=80)],
        store: Annotated[
            list[str] | None,
            Query(description="chain:store_id, repeated; none: each chain's cheapest of the same product"),
        ] = None,
    ) -> ProductPage:
        """Return a product, its prices (at the stores asked for, else each chain's cheapest) and more."""
        asked = [parse_store(s) for s in store or []]
        async with queries_at() as queries:
            known = await queries.products([(chain, sku)])
            if (chain, sku) not in known:
                raise ProblemError(404, "Not found", f"no product {sku!r} at {chain!r}")
            await known_stores(queries, "store", asked)
            row = known[chain, sku]
            same = [(chain, sku), *(await queries.identical([(chain, sku)]))[chain, sku]]
            rows = await queries.products(same)
            at_chain = {}
            for c, s in reversed(same):
                at_chain[c] = s  # the product itself wins at its own chain
            prices: list[PriceView] = []
            if asked:
                for c in dict.fromkeys(c for c, _ in asked):
                    if c not in at_chain:
                        continue
                    stores = [s for sc, s in asked if sc == c]
                    for answer in await queries.answers(chain=c, store_ids=stores, skus=[at_chain[c]]):
                        prices.append(price_view(answer.store_id, answer.price, rows.get((c, at_chain[c]))))
                history_stores = [p.answered_by for p in prices if p.chain == chain]
            else:
                cheapest = await queries.cheapest(same)
                best: dict[str, Product] = {}
                for key, _price in sorted(cheapest.items(), key=lambda kv: kv[1].price_cents):
                    best.setdefault(key[0], key)
                prices = [price_view(cheapest[k].store_id, cheapest[k], rows.get(k)) for k in best.values()]
                history_stores = [p.store_id for p in prices if p.chain == chain and p.sku == sku]
            history = await queries.history(chain=chain, sku=sku, store_ids=history_stores)
            archived_before = (await queries.archived_before([chain])).get(chain)
            subs = await queries.substitutes(chain=chain, sku=sku)
            keys = [(s.chain, s.sku) for s in subs]
            sub_rows, sub_prices = await queries.products(keys), await queries.cheapest(keys)
        substitutes = [
            SubstituteView(
                level=s.level,
                score=s.score,
                reason=s.reason,
                product=product_view(sub_rows[s.chain, s.sku]),
                cheapest=_cheapest_view(sub_prices.get((s.chain, s.sku)), sub_rows[s.chain, s.sku]),
            )
            for s in subs
            if (s.chain, s.sku) in sub_rows
        ]
        return ProductPage(
            product=product_view(row),
            prices=prices,
            history=history,
            archived_before=archived_before,
            substitutes=substitutes,
        )

    @router.post("/baskets/compare")
    async def compare_basket(basket: baskets.BasketRequest) -> baskets.BasketComparison:
        """Price a basket at the stores chosen, identical products across chains, and the cheapest split."""
        stores = baskets.stores_of(basket)
        async with queries_at() as queries:
            await known_products(queries, basket.items)
            await known_stores(queries, "stores", stores)
            return await baskets.compare(queries, basket)

    @router.get("/bargains")
    async def bargains(
        chain: Chain = None,
        store: Annotated[
            str | None, Query(description="A store of `chain`; a member gets its anchor's")
        ] = None,
        category: Annotated[str | None, Query(description="A shared category path or a chain's")] = None,
        kind: Literal["discount", "cross_chain", "historical_low"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> BargainList:
        """Return current bargains with names, best score first."""
        if store is not None and chain is None:
            raise bad_parameter("store", "needs chain: store ids are per chain")
        async with queries_at() as queries:
            await known_chain(queries, chain)
            if store is not None and chain is not None:
                await known_stores(queries, "store", [(chain, store)])
            anchor = (
                None
                if store is None or chain is None
                else await queries.anchor_of(chain=chain, store_id=store)
            )
            rows = await queries.bargains(
                chain=chain, store_id=anchor, category=category, kind=kind, limit=limit
            )
        return BargainList(bargains=rows, answered_by=anchor)

    @router.get("/categories")
    async def categories() -> Categories:
        """Return the shared category tree, its popular categories, and the chains' unmapped categories."""
        async with queries_at() as queries:
            tree = category_tree(await queries.category_counts())
            unmapped = await queries.unmapped()
        nodes = list(_flatten(tree))
        popular = sorted(nodes, key=lambda n: (-(n.bargains + n.products), -n.bargains, n.path))[:POPULAR]
        return Categories(
            tree=tree, popular=[n.model_copy(update={"children": []}) for n in popular], unmapped=unmapped
        )

    @router.get("/export/prices", response_model=ExportPage)
    async def export_prices(
        chain: Chain = None,
        store: Annotated[str | None, Query(description="A store of `chain`")] = None,
        observed_since: Annotated[datetime | None, Query(description="ISO 8601 with a timezone")] = None,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
        limit: Annotated[int, Query(ge=1)] = 1000,
    ) -> Response:
        """Return every fresh current price a page at a time in a unique stable order; members via anchors."""
        if store is not None and chain is None:
            raise bad_parameter("store", "needs chain: store ids are per chain")
        if observed_since is not None and observed_since.tzinfo is None:
            raise bad_parameter("observed_since", "needs a timezone, e.g. 2026-03-01T00:00:00Z")
        if limit > page_max:
            raise bad_parameter("limit", f"at most {page_max}")
        try:
            after = cursors.decode(cursor) if cursor else None
        except cursors.BadCursorError as exc:
            raise bad_parameter("cursor", str(exc)) from None
        async with queries_at() as queries:
            await known_chain(queries, chain)
            if store is not None and chain is not None:
                await known_stores(queries, "store", [(chain, store)])
            chunk = await queries.export_page(
                chain=chain, store_id=store, observed_since=observed_since, after=after, limit=limit
            )
        next_cursor = cursors.encode(chunk.last) if chunk.more and chunk.last else None
        # The prices are JSON already (ExportPrice's fields, written by PostgreSQL): sent as they are.
        body = f'{{"prices":{chunk.prices_json},"next_cursor":{json.dumps(next_cursor)}}}'
        return Response(body, media_type="application/json")

    # Registered last, so it only sees what no route above took: an unknown path (or a method a
    # path does not take) under /v1 answers problem+json too, not Starlette's plain body.
    @router.api_route(
        "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    async def unknown(request: Request, path: str) -> Response:
        """Answer 404 as problem details for a route /v1 does not have."""
        raise ProblemError(404, "Not found", f"no route {request.method} /v1/{path}")

    return router


def _queries(
    db: Database, clock: Clock, freshness: timedelta
) -> Callable[[], AbstractAsyncContextManager[CatalogueQueries]]:
    """Return a factory of queries on a pooled connection, fresh as of the moment it is called."""

    @asynccontextmanager
    async def queries() -> AsyncIterator[CatalogueQueries]:
        async with db.pool.acquire() as conn:
            yield CatalogueQueries(conn, fresh_after=clock() - freshness)

    return queries


def _cheapest_view(price: PriceRow | None, product: ProductRow) -> PriceView | None:
    """Return the view of a product's cheapest price, if it has one."""
    return None if price is None else price_view(price.store_id, price, product)


def _flatten(nodes: list[CategoryNode]) -> list[CategoryNode]:
    """Return every node of a tree, parents before their children."""
    out: list[CategoryNode] = []
    for node in nodes:
        out.append(node)
        out.extend(_flatten(node.children))
    return out
