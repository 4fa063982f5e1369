"""What the catalogue answers, as pydantic models: the JSON API and the web page share them."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from catalogue.domain.unit_pricing import UnitPrice as UnitPriceValue
from catalogue.domain.unit_pricing import alternative_views, check_stated, parse_pack_size, unit_price
from catalogue.repository import PriceRow, ProductRow


class View(BaseModel):
    """A frozen response model."""

    model_config = ConfigDict(frozen=True)


class UnitPriceView(View):
    """A price on a unit of measure: 150 cents per 100g."""

    cents: int
    per: str = Field(description="The basis: 100g, 100mL, 1kg, 1L, each, 100 items")
    text: str = Field(description="As a shelf label writes it: $1.50 per 100g")


class StatedView(View):
    """The shop's own unit price, and whether pricestream's agrees with it."""

    cents: int
    per: str
    text: str
    verdict: Literal["match", "mismatch", "not_comparable"]
    reason: str


class UnitPricing(View):
    """pricestream's unit price (Unit Pricing Code), the alternative views, and the shop's own."""

    unit_price: UnitPriceView | None = Field(description="None when the pack size is unknown")
    alternatives: list[UnitPriceView] = Field(description="Per kg for weights, per litre for volumes")
    stated: StatedView | None
    mismatch: bool = Field(description="The shop's stated unit price disagrees with price and size")


class ProductView(View):
    """A product as its chain describes it."""

    chain: str
    sku: str
    name: str
    brand: str | None
    size: str | None
    category: str | None = Field(description="The chain's own category")
    shared_category: str | None = Field(description="Its place on pricestream's shared tree")
    barcode: str | None
    url: str | None


class PriceView(View):
    """What a store charges for a product now (a member store answered by its anchor)."""

    chain: str
    store_id: str
    sku: str
    answered_by: str = Field(description="The store whose observed price this is: itself or its anchor")
    price_cents: int
    was_price_cents: int | None
    member_price_cents: int | None
    multibuy_quantity: int | None
    multibuy_total_cents: int | None
    available: bool
    sold_by: Literal["each", "kg"]
    observed_at: datetime
    unit: UnitPricing


class SegmentView(View):
    """A run of one price at one store: a new run only when the price changed."""

    store_id: str
    starts_at: datetime
    ends_at: datetime
    price_cents: int
    was_price_cents: int | None


class SearchHit(View):
    """A product found, with its chain's cheapest current price."""

    product: ProductView
    score: float = Field(description="How well the name matches, 0 to 1")
    cheapest: PriceView | None


class SearchResults(View):
    """Products matching a query, best first."""

    query: str
    results: list[SearchHit]


class SubstituteView(View):
    """A product a shopper could buy instead, with its cheapest current price."""

    level: Literal["L1", "L2", "L3", "L4"]
    score: float
    reason: str
    product: ProductView
    cheapest: PriceView | None


class ProductPage(View):
    """A product, its prices, history and substitutes."""

    product: ProductView
    prices: list[PriceView] = Field(
        description="At the stores asked for, else each chain's cheapest of this product or an identical one"
    )
    history: list[SegmentView]
    archived_before: datetime | None = Field(
        default=None,
        description="History of the product's chain that ended before this lies in the archive"
        " (`pricestream archive restore` brings a month back); null when none was archived",
    )
    substitutes: list[SubstituteView]


class ExportPrice(View):
    """One current price of the export."""

    chain: str
    store_id: str
    sku: str
    answered_by: str
    price_cents: int
    was_price_cents: int | None
    member_price_cents: int | None
    available: bool
    sold_by: Literal["each", "kg"]
    observed_at: datetime


class ExportPage(View):
    """A page of current prices; `next_cursor` is null on the last page."""

    prices: list[ExportPrice]
    next_cursor: str | None


class BargainView(View):
    """A bargain with its product's name."""

    bargain_id: str
    kind: Literal["discount", "cross_chain", "historical_low"]
    chain: str
    store_id: str
    sku: str
    name: str | None
    brand: str | None
    size: str | None
    shared_category: str | None
    price_cents: int
    reference_cents: int
    score: float
    reason: str
    observed_at: datetime


class BargainList(View):
    """Current bargains, best score first."""

    bargains: list[BargainView]
    answered_by: str | None = Field(description="The anchor answering for the store asked for")


class CategoryNode(View):
    """A shared category with how many products and bargains sit in it and below it."""

    path: str
    name: str
    products: int
    bargains: int
    children: list["CategoryNode"]


class UnmappedCategory(View):
    """A chain's category not yet on the shared tree: listed for an operator to map."""

    chain: str
    category: str | None
    products: int


class Categories(View):
    """The shared category tree, its popular categories and what is not mapped."""

    tree: list[CategoryNode]
    popular: list[CategoryNode] = Field(description="By products and bargains in them, most first")
    unmapped: list[UnmappedCategory]


class Problem(View):
    """An error as RFC 9457 problem details."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    invalid_params: list[dict[str, str]] = Field(
        default_factory=list, alias="invalid-params", serialization_alias="invalid-params"
    )


def product_view(row: ProductRow) -> ProductView:
    """Return the view of a product row."""
    return ProductView(
        chain=row.chain,
        sku=row.sku,
        name=row.name,
        brand=row.brand,
        size=row.size,
        category=row.category,
        shared_category=row.shared_category,
        barcode=row.barcode,
        url=row.url,
    )


def _unit_view(price: UnitPriceValue) -> UnitPriceView:
    return UnitPriceView(cents=price.cents, per=price.basis.label, text=price.text)


def unit_pricing(price: PriceRow, product: ProductRow | None) -> UnitPricing:
    """Work out a price's unit price from price and pack size, beside the shop's stated one."""
    sold_by: Literal["each", "kg"] = "kg" if price.sold_by == "kg" else "each"
    pack = parse_pack_size(product.size, product.name) if product else None
    category = product.shared_category if product else None
    ours = None
    alternatives: list[UnitPriceView] = []
    if pack is not None:
        ours = _unit_view(unit_price(price.price_cents, pack, sold_by=sold_by, shared_category=category))
        alternatives = [_unit_view(v) for v in alternative_views(price.price_cents, pack, sold_by=sold_by)]
    elif sold_by == "kg":
        ours = UnitPriceView(
            cents=price.price_cents,
            per="1kg",
            text=f"${price.price_cents // 100}.{price.price_cents % 100:02d} per 1kg",
        )
    stated = None
    if price.stated_cents is not None and price.stated_quantity is not None and price.stated_unit:
        check = check_stated(price.price_cents, pack, _Stated(price), sold_by=sold_by)
        stated = StatedView(
            cents=check.stated_cents,
            per=check.basis.label,
            text=price.stated_text or "",
            verdict=check.verdict,
            reason=check.reason,
        )
    return UnitPricing(
        unit_price=ours,
        alternatives=alternatives,
        stated=stated,
        mismatch=stated is not None and stated.verdict == "mismatch",
    )


class _Stated:
    """A price row's stated unit price, in the shape unit_pricing compares with."""

    def __init__(self, price: PriceRow) -> None:
        self.cents = price.stated_cents or 0
        self.quantity = price.stated_quantity or 1
        self.unit = price.stated_unit or "ea"


def price_view(asked_store: str, price: PriceRow, product: ProductRow | None) -> PriceView:
    """Return the view of a price answered for a store (by itself or its anchor)."""
    return PriceView(
        chain=price.chain,
        store_id=asked_store,
        sku=price.sku,
        answered_by=price.store_id,
        price_cents=price.price_cents,
        was_price_cents=price.was_price_cents,
        member_price_cents=price.member_price_cents,
        multibuy_quantity=price.multibuy_quantity,
        multibuy_total_cents=price.multibuy_total_cents,
        available=price.available,
        sold_by="kg" if price.sold_by == "kg" else "each",
        observed_at=price.observed_at,
        unit=unit_pricing(price, product),
    )
