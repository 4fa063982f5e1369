"""Parse Woolworths' web API answers: stores, category tree, browse pages, product details.

The shapes are described, with their sources, in tests/fixtures/chains/README.md.
"""

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

PAGE_SIZE = 36
"""Products per browse page: the API refuses larger pages."""

# Promotion groups and the checkout aisle repeat other categories' products.
_SKIPPED_CATEGORIES = frozenset({"specialsgroup"})
_SKIPPED_NAMES = frozenset({"Front of Store"})
_TAGS = re.compile(r"<[^>]+>")


def parse_stores(body: Any) -> list[StoreInfo]:
    """Return the supermarkets of the store locator (petrol stations and the like left out)."""
    stores = field(body, "Stores", "the store locator")
    if not isinstance(stores, list):
        raise ShopAnswerError("schema_drift", "the store locator's Stores is not a list")
    return [
        StoreInfo(
            store_id=str(field(store, "StoreNo", "a store")),
            name=str(field(store, "Name", "a store")),
            state=store.get("State"),
            postcode=store.get("Postcode"),
        )
        for store in stores
        if field(store, "Division", "a store") == "SUPERMARKETS"
    ]


def parse_categories(body: Any) -> list[ChainCategory]:
    """Return the top categories of the tree, without the specials group and the checkout aisle."""
    nodes = field(body, "Categories", "the category tree")
    if not isinstance(nodes, list):
        raise ShopAnswerError("schema_drift", "the category tree's Categories is not a list")
    categories = []
    for node in nodes:
        node_id = str(field(node, "NodeId", "a category"))
        name = str(field(node, "Description", "a category"))
        if node_id in _SKIPPED_CATEGORIES or name in _SKIPPED_NAMES:
            continue
        count = node.get("ProductCount")
        categories.append(
            ChainCategory(
                slug=str(field(node, "UrlFriendlyName", "a category")),
                node_id=node_id,
                name=name,
                products=count if isinstance(count, int) else None,
            )
        )
    return categories


def parse_fulfilment(body: Any, store_id: str) -> None:
    """Check that the shop took the store as the session's fulfilment store."""
    if field(body, "IsSuccessful", "the fulfilment answer") is not True:
        raise ShopAnswerError("schema_drift", f"the shop refused store {store_id} as the fulfilment store")


def parse_page(body: Any, *, page: int, expected_total: int | None, site: str) -> ParsedPage:
    """Return a browse page's rows; bundles are left out, odd products become error rows."""
    bundles = field(body, "Bundles", "the browse page")
    total = field(body, "TotalRecordCount", "the browse page")
    if not isinstance(bundles, list) or not isinstance(total, int):
        raise ShopAnswerError("schema_drift", "Bundles is not a list or TotalRecordCount not a number")
    products = [product for bundle in bundles for product in field(bundle, "Products", "a bundle") or []]
    rows = [row for row in (_product_row(product, site) for product in products) if row is not None]
    check_not_silently_empty(
        len(products), total=total, start=(page - 1) * PAGE_SIZE, expected_total=expected_total, page=page
    )
    return ParsedPage(rows=rows, total=total)


def parse_barcode(body: Any) -> str | None:
    """Return the barcode the product details state, or None when they state none."""
    barcode = field(field(body, "Product", "the product details"), "Barcode", "the product")
    return str(barcode) if barcode else None


def _product_row(product: Any, site: str) -> RawRow | None:
    """Map a product to a raw row; None for a bundle, which is not one product's price."""
    sku = field(product, "Stockcode", "a product")
    name = field(product, "Name", "a product")
    price = field(product, "Price", "a product")
    in_stock = field(product, "IsInStock", "a product")
    if product.get("IsBundle"):
        return None
    if price is None:
        return error_row("missing price", sku=sku, name=name)
    was = product.get("WasPrice")
    on_special = bool(product.get("IsOnSpecial"))
    return {
        "sku": sku,
        "name": name,
        "brand": product.get("Brand"),
        "size": product.get("PackageSize"),
        "barcode": product.get("Barcode"),
        "url": f"{site.rstrip('/')}/shop/productdetails/{sku}/{product.get('UrlFriendlyName') or ''}".rstrip(
            "/"
        ),
        "price": price,
        # WasPrice repeats Price when the product is not on special.
        "was_price": was if on_special and was else None,
        "available": in_stock,
        "unit_price": product.get("CupString") if product.get("HasCupPrice", True) else None,
        "multibuy": _multibuy_text(product.get("CentreTag")),
        "member_price": product.get("MemberPrice"),
        "sold_by": "kg" if str(product.get("Unit", "")).lower() == "kg" else "each",
    }


def _multibuy_text(tag: Any) -> str | None:
    """Return the text of a multi-buy tag without its markup, or None when the tag is not one."""
    if not isinstance(tag, dict) or tag.get("TagType") != "MultiBuy":
        return None
    content = tag.get("TagContent")
    return _TAGS.sub("", str(content)).strip() if content else None
