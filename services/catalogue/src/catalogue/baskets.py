"""Compare a basket at the shopper's stores: identical products across chains, substitutes, the best split."""

from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from catalogue.domain import basket
from catalogue.domain.unit_pricing import parse_pack_size, unit_basis
from catalogue.problems import bad_parameter
from catalogue.queries import Answer, CatalogueQueries, Product
from catalogue.repository import ProductRow
from catalogue.views import UnitPriceView, View, unit_pricing

MAX_ITEMS = 100
MAX_STORES = 20

CLOSE_KIND = 0.1
"""How far below a chain's most alike L3 substitute another may score and still be offered."""


class BasketItem(BaseModel):
    """A product and how many."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    sku: str = Field(min_length=1, max_length=80)
    quantity: int = Field(default=1, ge=1, le=99)


class BasketRequest(BaseModel):
    """A basket and the stores to price it at (`chain:store_id`), bought across at most `max_stores`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[BasketItem] = Field(min_length=1, max_length=MAX_ITEMS)
    stores: list[str] = Field(min_length=1, max_length=MAX_STORES, description="chain:store_id each")
    max_stores: int = Field(default=2, ge=1, le=5)


class BasketLine(View):
    """An item bought at a store: the product itself or an identical one of the store's chain."""

    item: str = Field(description="chain:sku of the item asked for")
    product: str = Field(description="chain:sku of what is bought")
    name: str | None
    match: Literal["same", "identical"]
    quantity: int
    unit_cents: int
    cost_cents: int = Field(description="What the quantity costs, multi-buy sets included")
    multibuy_quantity: int | None = Field(
        default=None, description="The store's multi-buy offer taken for the quantity: this many ..."
    )
    multibuy_total_cents: int | None = Field(default=None, description="... for this much together")


class SubstituteOffer(View):
    """The cheapest comparable product (L3) by unit price where the item itself is missing."""

    product: str
    name: str | None
    price_cents: int
    unit_price: UnitPriceView | None


class MissingLine(View):
    """An item a store does not sell, and what it has instead."""

    item: str
    substitute: SubstituteOffer | None


class StoreBasket(View):
    """The basket at one store: its total over the items sold there, and what it lacks."""

    store: str
    total_cents: int
    complete: bool
    lines: list[BasketLine]
    missing: list[MissingLine]


class SplitView(View):
    """The cheapest way to buy the basket across at most N of the stores."""

    stores: list[str]
    total_cents: int
    lines: list[BasketLine]
    missing: list[str]


class BasketComparison(View):
    """Each store's total (cheapest first), the best single store, the best split and its saving."""

    stores: list[StoreBasket]
    best_store: str | None
    best_split: SplitView | None
    saving_cents: int | None = Field(
        description="Best single store's total less the split's, when both are complete"
    )


async def compare(queries: CatalogueQueries, request: BasketRequest) -> BasketComparison:
    """Price the basket at each store, with substitutes for what is missing, and find the cheapest split."""
    stores = stores_of(request)
    items: list[Product] = [(i.chain, i.sku) for i in request.items]
    if len(set(items)) != len(items):
        raise bad_parameter("items", "each product may appear once (add up its quantities instead)")
    identical = await queries.identical(items)
    rows = await queries.products([*items, *(p for others in identical.values() for p in others)])
    # Which sku stands for each item at each chain asked: its own, else an identical one.
    at_chain: dict[Product, dict[str, str]] = {}
    for item in items:
        choices = dict(reversed(identical[item]))
        choices[item[0]] = item[1]
        at_chain[item] = choices
    answers = await _answers(queries, stores, {c for c, _ in stores}, at_chain)
    lines, offers_of = [], {}
    for item, asked in zip(items, request.items, strict=True):
        offers: dict[str, basket.Offer] = {}
        for chain, store in stores:
            sku = at_chain[item].get(chain)
            answer = answers.get((chain, store, sku)) if sku else None
            if answer is not None and answer.price.available:
                offers[f"{chain}:{store}"] = _offer(answer, f"{chain}:{sku}")
        offers_of[_name(item)] = offers
        lines.append(basket.Line(item=_name(item), quantity=asked.quantity, offers=offers))
    try:
        result = basket.compare_basket(lines, [f"{c}:{s}" for c, s in stores], max_stores=request.max_stores)
    except ValueError as exc:
        name, _, reason = str(exc).partition(": ")
        raise bad_parameter(name, reason) from None
    substitutes = await _substitutes(queries, items, stores, rows)

    def line_view(p: basket.Purchase) -> BasketLine:
        product = p.product or p.item
        chain, _, sku = product.partition(":")
        row = rows.get((chain, sku))
        return BasketLine(
            item=p.item,
            product=product,
            name=row.name if row else None,
            match="same" if product == p.item else "identical",
            quantity=p.quantity,
            unit_cents=p.unit_cents,
            cost_cents=p.cost_cents,
            multibuy_quantity=p.multibuy.quantity if p.multibuy else None,
            multibuy_total_cents=p.multibuy.total_cents if p.multibuy else None,
        )

    per_store = [
        StoreBasket(
            store=t.store,
            total_cents=t.total_cents,
            complete=t.complete,
            lines=[line_view(p) for p in t.purchases],
            missing=[MissingLine(item=m, substitute=substitutes.get((t.store, m))) for m in t.missing],
        )
        for t in result.per_store
    ]
    split = result.best_split
    return BasketComparison(
        stores=per_store,
        best_store=result.best_store.store if result.best_store else None,
        best_split=None
        if split is None
        else SplitView(
            stores=list(split.stores),
            total_cents=split.total_cents,
            lines=[line_view(p) for p in split.purchases],
            missing=list(split.missing),
        ),
        saving_cents=result.saving_cents,
    )


def _offer(answer: Answer, product: str) -> basket.Offer:
    """Offer a store's price, with its multi-buy where it has one."""
    price = answer.price
    deal = None
    if price.multibuy_quantity and price.multibuy_total_cents is not None:
        deal = basket.MultiBuy(price.multibuy_quantity, price.multibuy_total_cents)
    return basket.Offer(price.price_cents, product, deal)


def stores_of(request: BasketRequest) -> list[tuple[str, str]]:
    """Return the stores a basket is to be priced at, as (chain, store id)."""
    return [_store(text) for text in request.stores]


def _store(text: str) -> tuple[str, str]:
    """Read `chain:store_id`; a 400 naming `stores` otherwise."""
    chain, sep, store = text.partition(":")
    if not sep or not chain or not store:
        raise bad_parameter("stores", f"{text!r} is not chain:store_id")
    return chain, store


def _name(product: Product) -> str:
    """Write a product as chain:sku."""
    return f"{product[0]}:{product[1]}"


async def _answers(
    queries: CatalogueQueries,
    stores: list[tuple[str, str]],
    chains: set[str],
    at_chain: dict[Product, dict[str, str]],
) -> dict[tuple[str, str, str], Answer]:
    """Price every item's stand-in at every store asked, a chain at a time."""
    found: dict[tuple[str, str, str], Answer] = {}
    for chain in sorted(chains):
        skus = sorted({choices[chain] for choices in at_chain.values() if chain in choices})
        at = [s for c, s in stores if c == chain]
        for answer in await queries.answers(chain=chain, store_ids=at, skus=skus):
            found[chain, answer.store_id, answer.price.sku] = answer
    return found


async def _substitutes(
    queries: CatalogueQueries,
    items: list[Product],
    stores: list[tuple[str, str]],
    rows: dict[Product, ProductRow],
) -> dict[tuple[str, str], SubstituteOffer]:
    """Return, per (store, item), the item's cheapest close L3 substitute there by unit price."""
    candidates: dict[Product, list[Product]] = {}
    for item in items:
        subs = [s for s in await queries.substitutes(chain=item[0], sku=item[1]) if s.level == "L3"]
        best = {chain: max(s.score for s in subs if s.chain == chain) for chain in {s.chain for s in subs}}
        # L3 spans "same kind" loosely (milk for ice cream at 0.62): only the closest kinds at a
        # chain compete on unit price, so the cheapest is not simply the least alike.
        candidates[item] = [(s.chain, s.sku) for s in subs if s.score >= best[s.chain] - CLOSE_KIND]
    by_chain: dict[str, set[str]] = defaultdict(set)
    for products in candidates.values():
        for chain, sku in products:
            by_chain[chain].add(sku)
    wanted = [p for products in candidates.values() for p in products]
    described = await queries.products(wanted)
    priced: dict[tuple[str, str, str], Answer] = {}
    for chain, skus in by_chain.items():
        at = [s for c, s in stores if c == chain]
        for answer in await queries.answers(chain=chain, store_ids=at, skus=sorted(skus)):
            priced[chain, answer.store_id, answer.price.sku] = answer
    basis = {item: _basis(rows.get(item)) for item in items}
    offers: dict[tuple[str, str], SubstituteOffer] = {}
    for item in items:
        for chain, store in stores:
            options = []
            for c, sku in candidates[item]:
                found = priced.get((chain, store, sku)) if c == chain else None
                if found is None or not found.price.available:
                    continue
                answer = found
                unit = unit_pricing(answer.price, described.get((c, sku))).unit_price
                # Compared by unit price on the item's own basis; others rank after, by price.
                comparable = unit is not None and unit.per == basis.get(item)
                rank = (0, unit.cents) if comparable and unit else (1, answer.price.price_cents)
                options.append((rank, c, sku, answer, unit))
            if options:
                _, c, sku, answer, unit = min(options, key=lambda o: (o[0], o[1], o[2]))
                row = described.get((c, sku))
                offers[f"{chain}:{store}", _name(item)] = SubstituteOffer(
                    product=f"{c}:{sku}",
                    name=row.name if row else None,
                    price_cents=answer.price.price_cents,
                    unit_price=unit,
                )
    return offers


def _basis(product: ProductRow | None) -> str | None:
    """Return the label of the basis a product is unit priced on (100g, 100mL, each), if its size is known."""
    pack = parse_pack_size(product.size, product.name) if product else None
    if product is None or pack is None:
        return None
    return unit_basis(pack, shared_category=product.shared_category).label
