"""The demo's last act: the catalogue answers a search, a product across chains, a basket, the export.

Every price the export answers is checked against the storefront's truth: what that store
charged on the day the price was observed. A price a store answers from its own sighting must
equal its shelf: anything else is the catalogue's error. A member store answered through its
anchor is checked against the member's own shelf too, but a difference there is grouping's
claim (the store moved zone and is not regrouped yet, or charges a price of its own): those
are counted and shown by store, not failed.
"""

import time
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any, Protocol

import httpx
from rich.console import Group
from rich.table import Table

from servicekit.local_http import local_http

Figures = dict[str, Any]
PAGE = 5000


class HasUrls(Protocol):
    """What the catalogue act needs of the running stack."""

    @property
    def storefront_url(self) -> str:
        """Return the storefront's base URL."""
        ...

    def service_url(self, name: str) -> str:
        """Return a service's base URL."""
        ...


def _call(method: str, url: str, **kwargs: Any) -> Any:
    """Call the catalogue, waiting out its rate limit (429 + Retry-After) as a polite client does."""
    for _ in range(20):
        response = httpx.request(method, url, timeout=60, **kwargs)
        if response.status_code != 429:
            response.raise_for_status()
            return response.json()
        time.sleep(float(response.headers.get("retry-after", "1")))
    raise RuntimeError(f"{url}: still throttled after 20 tries")


def catalogue_figures(stack: HasUrls, day_moments: list[datetime]) -> Figures:
    """Ask the catalogue what a shopper and an analyst would, and check its prices against the truth."""
    url = stack.service_url("catalogue")
    shop = stack.storefront_url
    pairs = local_http().get(f"{shop}/_truth/equivalences", timeout=30).json()["equivalences"]
    same = [p for p in pairs if p["level"] in ("L1", "L2")]
    figures: Figures = {}
    pick = same[0] if same else None
    if pick is not None:
        page = _call("GET", f"{url}/v1/products/{pick['chain_a']}/{pick['sku_a']}")
        figures["product"] = page
        name = page["product"]["name"]
        figures["search_query"] = " ".join(name.split()[:2]).lower()
    else:
        figures["search_query"] = "milk"
    figures["search"] = _call("GET", f"{url}/v1/search", params={"q": figures["search_query"], "limit": 5})
    figures["basket"] = _basket(url, shop, same)
    prices, pages = _export(url)
    figures["export_pages"] = pages
    figures["export_prices"] = len(prices)
    wrong = _mismatches(shop, prices, day_moments)
    figures["export_mismatches"] = [w for w in wrong if w["answered_by"] == w["store_id"]]
    figures["export_anchor_mismatches"] = len(wrong) - len(figures["export_mismatches"])
    figures["export_anchor_mismatch_stores"] = dict(
        Counter(
            f"{w['chain']}:{w['store_id']} (by {w['answered_by']})"
            for w in wrong
            if w["answered_by"] != w["store_id"]
        ).most_common(8)
    )
    figures["export_answered_by_anchor"] = sum(1 for p in prices if p["answered_by"] != p["store_id"])
    return figures


def _basket(url: str, shop: str, same: list[dict[str, str]]) -> Figures | None:
    """Compare a basket of three products at the first store of each chain, split across at most two."""
    if not same:
        return None
    chain = same[0]["chain_a"]
    skus = list(dict.fromkeys(p["sku_a"] for p in same if p["chain_a"] == chain))[:3]
    items = [{"chain": chain, "sku": sku, "quantity": 1 + i % 2} for i, sku in enumerate(skus)]
    zones = local_http().get(f"{shop}/_truth/zones", timeout=30).json()["chains"]
    stores = [f"{c}:{sorted(zones[c])[0]}" for c in sorted(zones)]
    body = {"items": items, "stores": stores, "max_stores": 2}
    result: Figures = _call("POST", f"{url}/v1/baskets/compare", json=body)
    return result


def _export(url: str) -> tuple[list[dict[str, Any]], int]:
    """Read the whole export, page by page; return its prices and how many pages it took."""
    prices: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": PAGE, **({"cursor": cursor} if cursor else {})}
        body = _call("GET", f"{url}/v1/export/prices", params=params)
        prices += body["prices"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return prices, pages


def _mismatches(shop: str, prices: list[dict[str, Any]], day_moments: list[datetime]) -> list[dict[str, Any]]:
    """Return the exported prices that differ from the store's shelf on the day they were observed."""
    wanted: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for price in prices:
        at = datetime.fromisoformat(price["observed_at"])
        day = min(range(len(day_moments)), key=lambda d: abs((day_moments[d] - at).total_seconds()))
        wanted[price["chain"], day].append(price)
    wrong = []
    for (chain, day), answered in sorted(wanted.items()):
        rows = (
            local_http()
            .get(f"{shop}/_truth/prices", params={"chain": chain, "day": day}, timeout=120)
            .json()["prices"]
        )
        truth = {(r["store_id"], r["sku"]): r["price_cents"] for r in rows}
        for price in answered:
            shelf = truth.get((price["store_id"], price["sku"]))
            if shelf != price["price_cents"]:
                wrong.append({**price, "day": day, "shelf_cents": shelf})
    return wrong


def _money(cents: int | None) -> str:
    return "-" if cents is None else f"${cents / 100:,.2f}"


def catalogue_report(figures: Figures) -> Group:
    """Show the catalogue's answers: a search, a product across chains, a basket, the export."""
    search = Table(title=f"catalogue: search {figures['search_query']!r}")
    for column in ("product", "chain", "score", "cheapest", "unit price"):
        search.add_column(column, overflow="fold")
    for hit in figures["search"]["results"]:
        cheapest = hit["cheapest"] or {}
        unit = (cheapest.get("unit") or {}).get("unit_price") or {}
        search.add_row(
            hit["product"]["name"],
            hit["product"]["chain"],
            f"{hit['score']:.2f}",
            _money(cheapest.get("price_cents")),
            unit.get("text", "-"),
        )
    parts: list[Table] = [search]
    if page := figures.get("product"):
        product = Table(title=f"catalogue: {page['product']['name']} across chains (each chain's cheapest)")
        for column in ("chain", "sku", "store", "price", "unit price", "shop's unit price"):
            product.add_column(column, overflow="fold")
        for price in page["prices"]:
            stated = price["unit"]["stated"]
            product.add_row(
                price["chain"],
                price["sku"],
                price["store_id"],
                _money(price["price_cents"]),
                (price["unit"]["unit_price"] or {}).get("text", "-"),
                "-" if stated is None else f"{stated['text']} ({stated['verdict']})",
            )
        parts.append(product)
    if basket := figures.get("basket"):
        table = Table(title="catalogue: a basket compared")
        for column in ("store", "total", "missing"):
            table.add_column(column)
        for store in basket["stores"]:
            table.add_row(store["store"], _money(store["total_cents"]), str(len(store["missing"])))
        split = basket["best_split"]
        if split:
            table.add_row(
                f"best split: {' + '.join(split['stores'])}",
                _money(split["total_cents"]),
                f"saves {_money(basket['saving_cents'])}" if basket["saving_cents"] is not None else "",
            )
        parts.append(table)
    export = Table(title="catalogue: the export against the storefront's truth (each store's shelf that day)")
    for column in (
        "pages",
        "prices",
        "through an anchor",
        "equal to the shelf",
        "own sighting differs",
        "anchor's differs",
    ):
        export.add_column(column, justify="right")
    own, anchors = len(figures["export_mismatches"]), figures["export_anchor_mismatches"]
    export.add_row(
        str(figures["export_pages"]),
        f"{figures['export_prices']:,}",
        f"{figures['export_answered_by_anchor']:,}",
        f"{figures['export_prices'] - own - anchors:,}",
        f"[{'red' if own else 'green'}]{own}[/]",
        f"{anchors:,}",
    )
    parts.append(export)
    if figures["export_anchor_mismatch_stores"]:
        stores = Table(
            title="member stores whose anchor's price differs from their own shelf (grouping's claim)"
        )
        stores.add_column("store")
        stores.add_column("prices", justify="right")
        for store, count in figures["export_anchor_mismatch_stores"].items():
            stores.add_row(store, str(count))
        parts.append(stores)
    return Group(*parts)
