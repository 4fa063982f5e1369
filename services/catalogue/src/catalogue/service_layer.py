"""The catalogue use cases: each event folds into the read model, idempotently.

Each runs in a unit of work that has already claimed its events. Upserts are guarded by
when a fact was observed, so a late or repeated event changes nothing already newer.
"""

from collections.abc import Sequence
from datetime import datetime

from catalogue.domain.history import Segment, fold
from catalogue.domain.search import search_text
from catalogue.repository import CatalogueRepository, Key, PriceRow, ProductRow
from contracts.events.v1 import (
    BargainsChangedPayload,
    PriceObservation,
    PricesScrapedPayload,
    ProductObservedPayload,
    StoreGroupChangedPayload,
    SubstitutionsChangedPayload,
)
from servicekit.unit_of_work import Work


def price_row(chain: str, store_id: str, o: PriceObservation) -> PriceRow:
    """Return the current-price row of one observation."""
    stated = o.unit_price
    return PriceRow(
        chain=chain,
        store_id=store_id,
        sku=o.sku,
        price_cents=o.price_cents,
        was_price_cents=o.was_price_cents,
        available=o.available,
        member_price_cents=o.member_price_cents,
        multibuy_quantity=o.multibuy.quantity if o.multibuy else None,
        multibuy_total_cents=o.multibuy.total_cents if o.multibuy else None,
        sold_by=o.sold_by,
        stated_cents=stated.cents if stated else None,
        stated_quantity=stated.quantity if stated else None,
        stated_unit=stated.unit if stated else None,
        stated_text=stated.text if stated else None,
        observed_at=o.observed_at,
    )


def product_row(product: ProductObservedPayload) -> ProductRow:
    """Return the catalogue's row of a product description."""
    return ProductRow(
        chain=product.chain,
        sku=product.sku,
        name=product.name,
        brand=product.brand,
        size=product.size,
        category=product.category,
        shared_category=product.shared_category,
        barcode=product.barcode,
        url=product.url,
        search_text=search_text(product.name, product.brand),
        observed_at=product.observed_at,
    )


async def fold_prices(uow: Work[CatalogueRepository], batches: Sequence[PricesScrapedPayload]) -> None:
    """Fold batches of prices into current prices and change-only history, in a fixed number of statements."""
    newest: dict[Key, PriceRow] = {}
    sightings: list[PriceRow] = []
    for batch in batches:
        for o in batch.observations:
            row = price_row(batch.chain, batch.store_id, o)
            sightings.append(row)
            held = newest.get(row.key)
            if held is None or held.observed_at < row.observed_at:
                newest[row.key] = row
    await uow.repo.save_prices(list(newest.values()))
    before = await uow.repo.histories(list(newest))
    after = dict(before)
    for row in sightings:
        after[row.key] = fold(
            after.get(row.key, ()),
            price_cents=row.price_cents,
            was_price_cents=row.was_price_cents,
            observed_at=row.observed_at,
        )
    # Only the runs that changed are written: a sighting of the same price moves one run's end.
    written: list[tuple[Key, Segment]] = []
    removed: list[tuple[Key, datetime]] = []
    for key, history in after.items():
        old = {s.starts_at: s for s in before.get(key, ())}
        new = {s.starts_at for s in history}
        written += [(key, s) for s in history if old.get(s.starts_at) != s]
        removed += [(key, at) for at in old if at not in new]
    await uow.repo.save_segments(written, removed)


async def observe_products(
    uow: Work[CatalogueRepository], products: Sequence[ProductObservedPayload]
) -> None:
    """Record products' descriptions; the newest description of each wins."""
    newest: dict[tuple[str, str], ProductRow] = {}
    for product in products:
        row = product_row(product)
        held = newest.get((row.chain, row.sku))
        if held is None or held.observed_at < row.observed_at:
            newest[row.chain, row.sku] = row
    await uow.repo.save_products(list(newest.values()))


async def change_group(uow: Work[CatalogueRepository], group: StoreGroupChangedPayload) -> bool:
    """Place a group's members under its anchor, unless a newer version is known; return if applied."""
    return await uow.repo.apply_group(group)


async def change_substitutes(
    uow: Work[CatalogueRepository], substitutes: SubstitutionsChangedPayload, *, occurred_at: datetime
) -> bool:
    """Replace a product's substitutes with a newer set; return if applied."""
    return await uow.repo.replace_substitutes(
        chain=substitutes.chain,
        sku=substitutes.sku,
        occurred_at=occurred_at,
        substitutes=substitutes.substitutes,
    )


async def change_bargains(uow: Work[CatalogueRepository], bargains: BargainsChangedPayload) -> None:
    """Record bargains that appeared, changed or expired."""
    await uow.repo.save_bargains([(c.bargain, c.change == "expired") for c in bargains.changes])
