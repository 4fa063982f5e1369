"""The web page: server-rendered HTML on the catalogue's queries, every asset served from here.

State a shopper chose (stores, basket) lives in the URL, so a link can be shared, and in a
cookie, so the browser remembers it; no page needs JavaScript to work.
"""

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from importlib.resources import files
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from catalogue import baskets
from catalogue.problems import ProblemError, answering_route, validation_problem
from catalogue.queries import CatalogueQueries, Product, category_tree
from catalogue.repository import ProductRow
from catalogue.settings import CatalogueSettings
from catalogue.views import PriceView, price_view
from catalogue.web import state
from catalogue.web.charts import PriceSeries, dollars, price_changes, price_history_svg
from catalogue.web.deadletters import DeadLetterReader
from catalogue.web.lag import LagReader
from catalogue.web.queries import StoreRow, WebQueries
from catalogue.web.services import DirectoryStore, GroupTimes, ServiceClient, ServiceState, topic_counts
from servicekit.clock import Clock
from servicekit.db import Database
from servicekit.metrics import Metrics

STORES_COOKIE = "stores"
BASKET_COOKIE = "basket"
COOKIE_AGE_S = 365 * 24 * 3600
SEARCH_LIMIT = 30
RUNS_SHOWN = 10
DEAD_LETTERS_SHOWN = 5
BARGAINS_SHOWN = 200
LEVELS = {"L1": "the same product", "L2": "the same, another size", "L3": "comparable", "L4": "same category"}
T = TypeVar("T")
_MEDIA = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("catalogue.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship in the package: no file-system check on every page.
        auto_reload=False,
    )
    env.filters["dollars"] = dollars
    env.filters["day"] = lambda at: f"{at:%d %b %Y}" if at else ""
    env.filters["moment"] = lambda at: f"{at:%d %b %Y %H:%M} UTC" if at else ""
    env.globals["levels"] = LEVELS
    return env


def _static_files() -> dict[str, tuple[bytes, str]]:
    """Load the page's assets once: only these names are served, nothing read at request time."""
    folder = files("catalogue.web") / "static"
    return {
        item.name: (item.read_bytes(), _MEDIA[suffix])
        for item in folder.iterdir()
        if (suffix := "." + item.name.rsplit(".", 1)[-1]) in _MEDIA
    }


class Page:
    """What every page shows beside its own content: where it is, the stores chosen, the basket's size."""

    def __init__(self, request: Request, env: Environment) -> None:
        self.request = request
        self.env = env
        # Stores in the URL are the shopper's input: a bad one is an error. The cookies are this
        # page's own; one it cannot read (written by an older version) is dropped, not an error.
        given = request.query_params.get("stores")
        no_stores: dict[str, str] = {}
        self.chosen = (
            state.parse_stores(given)
            if given
            else _cookie(request, STORES_COOKIE, state.parse_stores, no_stores)
        )
        self.basket: list[state.Item] = _cookie(request, BASKET_COOKIE, state.parse_basket, [])

    def render(self, template: str, page: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render a template with the shared context."""
        html = self.env.get_template(template).render(
            page=page, chosen=self.chosen, basket_count=len(self.basket), **context
        )
        return HTMLResponse(html, status_code=status)


def _cookie(request: Request, name: str, parse: Callable[[str | None], T], empty: T) -> T:
    """Read one of the page's cookies; an unreadable one counts as not set."""
    try:
        return parse(request.cookies.get(name))
    except state.StateError:
        return empty


def build_web(*, db: Database, clock: Clock, settings: CatalogueSettings, metrics: Metrics) -> APIRouter:
    """Create the web page's routes: shoppers' pages, operators' pages and the static assets."""
    env = _environment()
    router = APIRouter(include_in_schema=False, route_class=_page_route(env))
    assets = _static_files()
    freshness = timedelta(days=settings.freshness_days)
    urls = {
        "scraper": settings.scraper_url,
        "grouping": settings.grouping_url,
        "substitutions": settings.substitutions_url,
        "bargains": settings.bargains_url,
    }
    services = ServiceClient(
        urls,
        timeout_s=settings.services_timeout_s,
        flags_ttl_s=settings.flags_ttl_s,
        # The broker gets more time than a service: a reading starts two clients of its own.
        lags=LagReader(settings.kafka_bootstrap_servers, timeout_s=3 * settings.services_timeout_s),
        dead_letters=DeadLetterReader(
            settings.kafka_bootstrap_servers,
            timeout_s=3 * settings.services_timeout_s,
            per_topic=DEAD_LETTERS_SHOWN,
        ),
    )

    @asynccontextmanager
    async def reading() -> AsyncIterator[tuple[CatalogueQueries, WebQueries]]:
        fresh_after = clock() - freshness
        async with db.pool.acquire() as conn:
            yield CatalogueQueries(conn, fresh_after=fresh_after), WebQueries(conn, fresh_after=fresh_after)

    def page_of(request: Request) -> Page:
        try:
            return Page(request, env)
        except state.StateError as exc:
            raise _RequestError(str(exc)) from None

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        """Serve one of the page's assets."""
        if name not in assets:
            return Response(f"no asset {name!r}", status_code=404, media_type="text/plain")
        body, media = assets[name]
        return Response(body, media_type=media, headers={"Cache-Control": "public, max-age=3600"})

    @router.get("/")
    async def home(request: Request) -> Response:
        """Show the search box, the best bargains and the popular categories."""
        return await _guarded(request, env, lambda: _home(page_of(request), reading))

    @router.get("/search")
    async def search(request: Request, q: str = "", category: str | None = None) -> Response:
        """Find products by name (or list a category) with their prices at the chosen stores."""
        return await _guarded(request, env, lambda: _search(page_of(request), reading, q.strip(), category))

    @router.get("/products/{chain}/{sku}")
    async def product(request: Request, chain: str, sku: str) -> Response:
        """Show a product: prices per chain, unit prices, history, substitutes, bargains."""
        return await _guarded(
            request, env, lambda: _product(page_of(request), reading, services, chain, sku, clock)
        )

    @router.get("/bargains")
    async def bargains(
        request: Request,
        chain: str | None = None,
        kind: Literal["discount", "cross_chain", "historical_low"] | None = None,
        category: str | None = None,
        mine: bool = False,
    ) -> Response:
        """List current bargains, best score first, with filters in the URL."""
        filters = {"chain": chain or None, "kind": kind, "category": category or None, "mine": mine}
        return await _guarded(request, env, lambda: _bargains(page_of(request), reading, filters))

    @router.get("/categories")
    async def categories(request: Request) -> Response:
        """Show the shared category tree with products and bargains in each."""
        return await _guarded(request, env, lambda: _categories(page_of(request), reading))

    @router.get("/basket")
    async def basket(request: Request, items: str | None = None) -> Response:
        """Compare the basket's totals at the chosen stores, with what is missing and its stand-ins."""
        return await _guarded(request, env, lambda: _basket(page_of(request), reading, items))

    @router.post("/basket")
    async def change_basket(request: Request) -> Response:
        """Set a product's quantity in the basket (0 removes it); remember it and show the basket."""
        form = await _form(request)

        return await _guarded(request, env, lambda: _change_basket(page_of(request), form))

    @router.get("/stores")
    async def stores(request: Request, find: str = "") -> Response:
        """Choose one store per chain, found by name or postcode; the choice is remembered in the browser."""
        return await _guarded(
            request, env, lambda: _stores(page_of(request), reading, services, find.strip())
        )

    @router.post("/stores")
    async def choose_stores(request: Request) -> Response:
        """Remember the stores chosen (one per chain) and go back where the shopper came from."""
        form = await _form(request)

        return await _guarded(request, env, lambda: _choose_stores(form))

    @router.get("/groups")
    async def groups(request: Request) -> Response:
        """Show each chain's store groups: anchor, members, version, when grouping changed and verified it."""
        return await _guarded(request, env, lambda: _groups(page_of(request), reading, services))

    @router.get("/pipeline")
    async def pipeline(request: Request) -> Response:
        """Show each service's health, counts and consumer lag, failures by reason, the latest runs."""
        return await _guarded(request, env, lambda: _pipeline(page_of(request), services, metrics, clock))

    # Registered last, after the API's routes: an address no route took is a page saying so, not
    # Starlette's JSON (a shopper follows a stale link with a browser).
    @router.get("/{path:path}")
    async def no_such_page(request: Request, path: str) -> Response:
        """Say that nothing lives at this address."""
        return _error(env, request, 404, "No such page", f"nothing lives at /{path}: search, or start again")

    return router


def _page_route(env: Environment) -> type[APIRoute]:
    """Return a route class whose bad parameters are answered by a page naming them, not by JSON."""

    def answer(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, RequestValidationError):
            raise exc
        wrong = validation_problem(exc).problem.detail
        return _error(env, request, 400, "That request cannot be answered", wrong)

    return answering_route(answer)


class _RequestError(Exception):
    """A request the page cannot answer, with what is wrong in words a shopper can act on."""


Reading = Callable[[], AbstractAsyncContextManager[tuple[CatalogueQueries, WebQueries]]]


async def _guarded(request: Request, env: Environment, render: Callable[[], Any]) -> Response:
    """Answer a page, or a page that says what was wrong with the request."""
    try:
        response: Response = await render()
        return response
    except (_RequestError, state.StateError) as exc:
        return _error(env, request, 400, "That request cannot be answered", str(exc))
    except ProblemError as exc:
        return _error(env, request, exc.problem.status, exc.problem.title, exc.problem.detail)


def _error(env: Environment, request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    html = env.get_template("error.html").render(
        page=request.url.path, basket_count=0, title=title, detail=detail, status=status
    )
    return HTMLResponse(html, status_code=status)


async def _form(request: Request) -> dict[str, str]:
    """Read a urlencoded form (the last value of a repeated field)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}


def _with_query(path: str, **params: str | None) -> str:
    kept = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(kept)}" if kept else path


def _stores_param(page: Page) -> str | None:
    """Return the stores to carry in a link when they came in the URL (a shared link keeps them)."""
    return state.format_stores(page.chosen) if page.request.query_params.get("stores") else None


async def _prices(
    queries: CatalogueQueries, products: Sequence[ProductRow], chosen: Mapping[str, str]
) -> dict[Product, PriceView]:
    """Price products at the chosen store of their chain, else at their chain's cheapest store."""
    found: dict[Product, PriceView] = {}
    by_chain: dict[str, list[ProductRow]] = defaultdict(list)
    for row in products:
        by_chain[row.chain].append(row)
    anywhere: list[ProductRow] = []
    for chain, rows in by_chain.items():
        if chain not in chosen:
            anywhere.extend(rows)
            continue
        known = {r.sku: r for r in rows}
        for answer in await queries.answers(chain=chain, store_ids=[chosen[chain]], skus=list(known)):
            found[chain, answer.price.sku] = price_view(
                answer.store_id, answer.price, known[answer.price.sku]
            )
    cheapest = await queries.cheapest([(r.chain, r.sku) for r in anywhere])
    for row in anywhere:
        if (price := cheapest.get((row.chain, row.sku))) is not None:
            found[row.chain, row.sku] = price_view(price.store_id, price, row)
    return found


async def _home(page: Page, reading: Reading) -> Response:
    async with reading() as (queries, _):
        top = await queries.bargains(chain=None, store_id=None, category=None, kind=None, limit=8)
        tree = category_tree(await queries.category_counts())
    return page.render("home.html", "/", bargains=top, categories=tree, q="", category=None)


async def _search(page: Page, reading: Reading, q: str, category: str | None) -> Response:
    # One letter matches everything: as-you-type search asks again after the next one.
    too_short = 0 < len(q) < 2
    hits: list[ProductRow] = []
    prices: dict[Product, PriceView] = {}
    if (q or category) and not too_short:
        async with reading() as (queries, web):
            if q:
                hits = [
                    row
                    for row, _ in await queries.search(
                        query=q, chain=None, category=category, limit=SEARCH_LIMIT
                    )
                ]
            else:
                hits = await web.in_category(category=category or "", chain=None, limit=SEARCH_LIMIT * 4)
            prices = await _prices(queries, hits, page.chosen)
    return page.render(
        "search.html", "/search", q=q, category=category, hits=hits, prices=prices, too_short=too_short
    )


async def _product(
    page: Page, reading: Reading, services: ServiceClient, chain: str, sku: str, clock: Clock
) -> Response:
    async with reading() as (queries, web):
        known = await queries.products([(chain, sku)])
        if (chain, sku) not in known:
            raise ProblemError(404, "No such product", f"pricestream knows no product {sku!r} at {chain!r}")
        same = [(chain, sku), *(await queries.identical([(chain, sku)]))[chain, sku]]
        rows = await queries.products(same)
        # One product per chain: the product itself at its own chain, else the first identical one.
        first = {c: rows[c, s] for c, s in reversed(same) if (c, s) in rows}
        at_chain = {c: first[c] for c in sorted(first, key=lambda c: (c != chain, c))}
        prices = await _prices(queries, list(at_chain.values()), page.chosen)
        series: list[PriceSeries] = []
        for c in at_chain:
            price = prices.get((c, at_chain[c].sku))
            if price is None:
                continue
            history = await queries.history(chain=c, sku=price.sku, store_ids=[price.answered_by])
            series.append(PriceSeries(f"{c} store {price.answered_by}", price_changes(history)))
        subs = await queries.substitutes(chain=chain, sku=sku)
        sub_rows = await queries.products([(s.chain, s.sku) for s in subs])
        sub_prices = await _prices(queries, list(sub_rows.values()), page.chosen)
        bargains = await web.bargains_of(chain=chain, sku=sku)
        archived = await queries.archived_before(list(at_chain))
    illusory, flags_problem = await _illusory(services, [p for p in prices.values() if p.was_price_cents])
    by_level: dict[str, list[Any]] = defaultdict(list)
    for s in subs:
        if (s.chain, s.sku) in sub_rows:
            by_level[s.level].append((s, sub_rows[s.chain, s.sku], sub_prices.get((s.chain, s.sku))))
    title = f"Price history of {known[chain, sku].name}"
    chart = price_history_svg(series, until=clock(), title=title)
    return page.render(
        "product.html",
        "/search",
        product=known[chain, sku],
        rows=at_chain,
        prices=prices,
        series=series,
        chart=chart,
        archived=dict(sorted(archived.items())),
        by_level=dict(sorted(by_level.items())),
        bargains=bargains,
        illusory=illusory,
        flags_problem=flags_problem,
        share=_with_query(f"/products/{chain}/{sku}", stores=state.format_stores(page.chosen) or None),
    )


async def _illusory(
    services: ServiceClient, shown: Sequence[PriceView]
) -> tuple[dict[tuple[str, str, str], str], str | None]:
    """Return the shown was-prices the bargains service judged illusory, and why; or why that is unknown."""
    flagged: dict[tuple[str, str, str], str] = {}
    try:
        for chain in sorted({p.chain for p in shown}):
            flags = await services.illusory(chain)
            flagged |= {(chain, store, sku): why for (store, sku), why in flags.items()}
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return (
            flagged,
            f"the bargains service did not answer ({type(exc).__name__}): illusory discounts are not marked",
        )
    return flagged, None


async def _bargains(page: Page, reading: Reading, filters: dict[str, Any]) -> Response:
    chain = filters["chain"]
    async with reading() as (queries, web):
        store = None
        if filters["mine"]:
            if chain is None or chain not in page.chosen:
                raise _RequestError("'my store only' needs a chain whose store you chose")
            store = await queries.anchor_of(chain=chain, store_id=page.chosen[chain])
        rows = await queries.bargains(
            chain=chain,
            store_id=store,
            category=filters["category"],
            kind=filters["kind"],
            limit=BARGAINS_SHOWN,
        )
        chains = await web.chains()
    return page.render(
        "bargains.html", "/bargains", bargains=rows, filters=filters, chains=chains, limit=BARGAINS_SHOWN
    )


async def _categories(page: Page, reading: Reading) -> Response:
    async with reading() as (queries, _):
        tree = category_tree(await queries.category_counts())
        unmapped = await queries.unmapped()
    return page.render("categories.html", "/categories", tree=tree, unmapped=unmapped)


async def _basket(page: Page, reading: Reading, items_param: str | None) -> Response:
    items = state.parse_basket(items_param) if items_param is not None else page.basket
    comparison = None
    async with reading() as (queries, web):
        stores = await web.stores()
        chosen = dict(page.chosen)
        assumed = sorted({s.chain for s in stores} - set(chosen))
        for chain in assumed:
            # A chain without a chosen store is priced at its first anchor (or first store).
            candidates = [s for s in stores if s.chain == chain]
            chosen[chain] = next(
                (s.store_id for s in candidates if s.store_id == s.anchor_store_id), candidates[0].store_id
            )
        names = await queries.products([(i.chain, i.sku) for i in items])
        if items and chosen:
            request = baskets.BasketRequest(
                items=[baskets.BasketItem(chain=i.chain, sku=i.sku, quantity=i.quantity) for i in items],
                stores=[f"{c}:{s}" for c, s in sorted(chosen.items())],
                max_stores=2,
            )
            comparison = await baskets.compare(queries, request)
    return page.render(
        "basket.html",
        "/basket",
        items=items,
        names=names,
        comparison=comparison,
        assumed={c: chosen[c] for c in assumed},
        items_text=state.format_basket(items),
        share=_with_query(
            "/basket", items=state.format_basket(items) or None, stores=state.format_stores(chosen) or None
        ),
    )


async def _change_basket(page: Page, form: dict[str, str]) -> Response:
    current = state.parse_basket(form.get("items", page.request.cookies.get(BASKET_COOKIE)))
    chain, sku, quantity = form.get("chain", ""), form.get("sku", ""), form.get("quantity", "1")
    if not quantity.isdigit():
        raise _RequestError(f"quantity {quantity!r} is not a whole number")
    state.check_product(chain, sku)
    held = next((i.quantity for i in current if (i.chain, i.sku) == (chain, sku)), 0)
    text = state.format_basket(
        state.with_quantity(current, chain, sku, int(quantity) + (held if form.get("add") else 0))
    )
    response = RedirectResponse(
        _with_query("/basket", items=text, stores=_stores_param(page)), status_code=303
    )
    response.set_cookie(BASKET_COOKIE, text, max_age=COOKIE_AGE_S, samesite="lax", httponly=True)
    return response


async def _choose_stores(form: dict[str, str]) -> Response:
    chosen = {
        key.removeprefix("store-"): value for key, value in form.items() if key.startswith("store-") and value
    }
    text = state.format_stores(state.parse_stores(state.format_stores(chosen)))
    back = form.get("next", "/")
    # Only a path of this site: "//host" and "/\\host" would send the shopper elsewhere.
    local = back.startswith("/") and not back.startswith(("//", "/\\"))
    response = RedirectResponse(back if local else "/", status_code=303)
    response.set_cookie(STORES_COOKIE, text, max_age=COOKIE_AGE_S, samesite="lax", httponly=True)
    return response


async def _stores(page: Page, reading: Reading, services: ServiceClient, find: str) -> Response:
    async with reading() as (_, web):
        stores = await web.stores()
    by_chain: dict[str, list[Any]] = defaultdict(list)
    for s in stores:
        by_chain[s.chain].append(s)
    named: dict[tuple[str, str], DirectoryStore] = {}
    problem = None
    try:
        for chain in by_chain:
            named |= {(d.chain, d.store_id): d for d in await services.directory(chain)}
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        problem = f"the scraper did not answer ({type(exc).__name__}): stores are listed by number only"
    if find:
        # The store already chosen stays listed, so saving the form never drops it.
        found = {
            chain: [s for s in listed if page.chosen.get(chain) == s.store_id or _found(s, named, find)]
            for chain, listed in by_chain.items()
        }
        by_chain = {chain: listed for chain, listed in found.items() if listed}
    back = page.request.query_params.get("next", "/")
    return page.render(
        "stores.html", "/stores", by_chain=by_chain, named=named, find=find, problem=problem, back=back
    )


def _found(store: StoreRow, named: Mapping[tuple[str, str], DirectoryStore], find: str) -> bool:
    """Say whether a shopper's text finds a store: by name or postcode, by number when it has no name."""
    known = named.get((store.chain, store.store_id))
    return known.matches(find) if known is not None else find.casefold() in store.store_id.casefold()


async def _groups(page: Page, reading: Reading, services: ServiceClient) -> Response:
    async with reading() as (_, web):
        groups = await web.groups()
        stores = await web.stores()
    times: dict[tuple[str, str], GroupTimes] = {}
    stats: dict[str, Any] | None = None
    problem = None
    try:
        times, stats = await asyncio.gather(services.group_times(), services.grouping_stats())
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        problem = (
            f"the grouping service did not answer ({type(exc).__name__}): times and prices held are not shown"
        )
    unplaced: dict[str, int] = defaultdict(int)
    for s in stores:
        if s.group_id is None:
            unplaced[s.chain] += 1
    return page.render(
        "groups.html",
        "/groups",
        groups=groups,
        times=times,
        stats=stats,
        problem=problem,
        unplaced=dict(unplaced),
    )


async def _pipeline(page: Page, services: ServiceClient, metrics: Metrics, clock: Clock) -> Response:
    found = await services.pipeline(runs_shown=RUNS_SHOWN, now=clock())
    # The catalogue serves this page, so it is up; its counts come from its own registry, now.
    own = ServiceState("catalogue", "(this service)", True, {}, topic_counts(metrics.render().decode()))
    return page.render(
        "pipeline.html",
        "/pipeline",
        pipeline=found,
        states=[*found.states, own],
        dead_letters_shown=DEAD_LETTERS_SHOWN,
    )
