"""Parse the Coles web app's answers: home page build id, stores, category tree, pages, products.

The shapes are described, with their sources, in tests/fixtures/chains/README.md.
"""

import json
import re
from typing import Any

from scraper.domain.chains import (
    ChainCategory,
    ParsedPage,
    ShopAnswerError,
    check_not_silently_empty,
    error_row,
    field,
)
from scraper.domain.importers import RawRow
from scraper.domain.planning import StoreInfo

PAGE_SIZE = 48
"""Products per category page, as the web app pages them."""

_NEXT_DATA = re.compile(r"<script[^>]*\bid=\"__NEXT_DATA__\"[^>]*>(.*?)</script>", re.DOTALL)
# Tiles the web app mixes into product lists: sponsored banners and product groups.
_AD_TYPES = frozenset({"SINGLE_TILE", "CONTENT_ASSOCIATION"})
_BUNDLE_TYPES = frozenset({"PRODUCT_BUNDLE"})
_FROM = re.compile(r"\s*from\b", re.IGNORECASE)
_SLUG = re.compile(r"[^a-z0-9]+")


def parse_build_id(html: str) -> str:
    """Return the Next.js build id the home page names (its data URLs carry it)."""
    match = _NEXT_DATA.search(html)
    if match is None:
        raise ShopAnswerError("challenge", "the home page has no __NEXT_DATA__ (a block or challenge page?)")
    try:
        data = json.loads(match.group(1))
    except ValueError:
        raise ShopAnswerError("schema_drift", "the home page's __NEXT_DATA__ is not JSON") from None
    build_id = field(data, "buildId", "__NEXT_DATA__")
    if not isinstance(build_id, str) or not build_id:
        raise ShopAnswerError("schema_drift", f"__NEXT_DATA__ buildId is not text: {build_id!r}")
    return build_id


def parse_stores(body: Any) -> list[StoreInfo]:
    """Return the stores of the store directory."""
    stores = field(body, "stores", "the store directory")
    if not isinstance(stores, list):
        raise ShopAnswerError("schema_drift", "the store directory's stores is not a list")
    directory = []
    for store in stores:
        address = field(store, "address", "a store") or {}
        directory.append(
            StoreInfo(
                store_id=str(field(store, "storeId", "a store")),
                name=str(field(store, "storeName", "a store")),
                state=address.get("state"),
                postcode=address.get("postcode"),
            )
        )
    return directory


def parse_categories(body: Any) -> list[ChainCategory]:
    """Return the top categories of the menu; campaign links repeat other categories' products."""
    menu = field(field(body, "data", "the category menu"), "menuItems", "the category menu")
    items = field(menu, "items", "the category menu")
    if not isinstance(items, list):
        raise ShopAnswerError("schema_drift", "the category menu's items is not a list")
    categories = []
    for item in items:
        if field(item, "type", "a category") != "CATALOG":
            continue
        count = field(item, "productCount", "a category")
        categories.append(
            ChainCategory(
                slug=str(field(item, "seoToken", "a category")),
                node_id=str(field(item, "id", "a category")),
                name=str(field(item, "name", "a category")),
                products=count if isinstance(count, int) else None,
            )
        )
    return categories


def parse_page(body: Any, *, page: int, expected_total: int | None, site: str) -> ParsedPage:
    """Return a category page's rows; ads and bundles are left out, odd tiles become error rows."""
    results = field(field(body, "pageProps", "the page"), "searchResults", "the page's pageProps")
    tiles = field(results, "results", "searchResults")
    total = field(results, "noOfResults", "searchResults")
    if not isinstance(tiles, list) or not isinstance(total, int):
        raise ShopAnswerError(
            "schema_drift", "searchResults.results is not a list or noOfResults not a number"
        )
    page_size = results.get("pageSize") or PAGE_SIZE
    start = results.get("start", (page - 1) * page_size)
    rows = [row for row in (_tile_row(tile, site) for tile in tiles) if row is not None]
    products = sum(1 for tile in tiles if isinstance(tile, dict) and tile.get("_type") == "PRODUCT")
    check_not_silently_empty(products, total=total, start=start, expected_total=expected_total, page=page)
    return ParsedPage(rows=rows, total=total)


def parse_barcode(body: Any) -> str | None:
    """Return the barcode a product page states, or None when it states none."""
    product = field(field(body, "pageProps", "the product page"), "product", "the product page")
    gtin = field(product, "gtin", "the product")
    return str(gtin) if gtin else None


def _tile_row(tile: Any, site: str) -> RawRow | None:
    """Map a tile to a raw row; None for ads and bundles, which are not a product's price."""
    kind = field(tile, "_type", "a tile")
    if (kind in _AD_TYPES and tile.get("adId")) or kind in _BUNDLE_TYPES:
        return None
    if kind != "PRODUCT":
        return error_row(f"unknown tile type {kind!r}", sku=tile.get("id"), name=tile.get("name"))
    sku, name = field(tile, "id", "a product tile"), field(tile, "name", "a product tile")
    available = field(tile, "availability", "a product tile")
    pricing = field(tile, "pricing", "a product tile")
    if pricing is None:
        return error_row("missing price (the tile has no pricing)", sku=sku, name=name)
    now = field(pricing, "now", "a tile's pricing")
    if now is None:
        description = pricing.get("priceDescription")
        if isinstance(description, str) and _FROM.match(description):
            return error_row(
                f"price only 'from' a range ({description}), not a shelf price", sku=sku, name=name
            )
        return error_row("missing price", sku=sku, name=name)
    was = pricing.get("was")
    brand, size = tile.get("brand"), tile.get("size")
    return {
        "sku": sku,
        "name": name,
        "brand": brand,
        "size": size,
        "url": _product_url(site, sku, brand, name, size),
        "price": now,
        # The web app states 0 when the product is not on special.
        "was_price": was if was else None,
        "available": available,
        "unit_price": pricing.get("comparable"),
        "multibuy": _multibuy_text(pricing.get("multiBuyPromotion")),
        "member_price": pricing.get("memberPrice"),
        "sold_by": "kg" if _priced_per_kg(pricing) else "each",
    }


def _multibuy_text(promotion: Any) -> str | None:
    """Spell a structured multi-buy as its label (`2 for $12.0`), which the validator reads."""
    if not promotion:
        return None
    if not isinstance(promotion, dict):
        return str(promotion)
    return f"{promotion.get('min')} for ${promotion.get('reward')}"


def _priced_per_kg(pricing: dict[str, Any]) -> bool:
    """Tell a loose item weighed at the till: weighted, and its price is the price of 1 kg."""
    unit = pricing.get("unit") or {}
    return bool(
        unit.get("isWeighted")
        and str(unit.get("ofMeasureUnits", "")).lower() == "kg"
        and unit.get("ofMeasureQuantity", 1) == 1
        and unit.get("price") == pricing.get("now")
    )


def _product_url(site: str, sku: object, *words: object) -> str:
    """Return the product page's address: a slug of brand, name and size, then the id."""
    slug = _SLUG.sub("-", " ".join(str(word) for word in words if word).lower()).strip("-")
    return f"{site.rstrip('/')}/product/{slug}-{sku}"
