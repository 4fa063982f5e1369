"""The catalogue use cases: each event folds into the read model, idempotently.

Each runs in a unit of work that has already claimed its events. Upserts are guarded by
when a fact was observed, so a late or repeated event changes nothing already newer.
"""

from collections.abc import Collection, Sequence
from datetime import datetime

from catalogue.domain.answering import answers
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
    stated, multibuy = o.unit_price, o.multibuy
    if stated is None and multibuy is None:  # most prices: no nested parts to read
        return PriceRow(
            chain, store_id, o.sku, o.price_cents, o.was_price_cents, o.available, o.member_price_cents,
            None, None, o.sold_by, None, None, None, None, o.observed_at,
        )  # fmt: skip
    return PriceRow(
        chain=chain,
        store_id=store_id,
        sku=o.sku,
        price_cents=o.price_cents,
        was_price_cents=o.was_price_cents,
        available=o.available,
        member_price_cents=o.member_price_cents,
        multibuy_quantity=multibuy.quantity if multibuy else None,
        multibuy_total_cents=multibuy.total_cents if multibuy else None,
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
    # The newest sighting of each key is its current price; a key seen more than once in the
    # batches (rare) also keeps its other sightings, which history folds in arrival order.
    newest: dict[Key, PriceObservation] = {}
    again: dict[Key, list[PriceObservation]] = {}
    for batch in batches:
        chain, store_id = batch.chain, batch.store_id
        for o in batch.observations:
            key = (chain, store_id, o.sku)
            held = newest.get(key)
            if held is None:
                newest[key] = o
                continue
            again.setdefault(key, [held]).append(o)
            if held.observed_at < o.observed_at:
                newest[key] = o
    # The newest sightings merge in the database: a newer one extends or ends its key's current
    # run there. Only the keys it left (an older sighting) and those seen more than once are
    # folded here, each from its history before the batch and in arrival order, as one by one.
    rows = [price_row(chain, store_id, o) for (chain, store_id, _), o in newest.items()]
    rows = await _leave_out_answered(uow.repo, rows, again=again.keys())
    seen_before = await uow.repo.histories(list(again)) if again else {}
    late = await uow.repo.save_prices(rows)
    unmerged = set(late)
    only_late = [key for key in late if key not in again]
    if only_late:
        seen_before |= await uow.repo.histories(only_late)
    written: list[tuple[Key, Segment]] = []
    removed: list[tuple[Key, datetime]] = []
    restarted: list[tuple[Key, datetime]] = []
    for key in [*again, *only_late]:
        start = seen_before.get(key, ())
        o = newest[key]
        # What the merge left: the newest sighting folded when it was newer than every run.
        stored = start if key in unmerged else _folded(start, o)
        history = start
        for sighting in again.get(key, [o]):
            history = _folded(history, sighting)
        # The last run is the current one, kept with the current price: only its start can move.
        runs = {s.starts_at: s for s in stored[:-1]}
        ended = history[:-1]
        starts = {s.starts_at for s in ended}
        written += [(key, s) for s in ended if runs.get(s.starts_at) != s]
        removed += [(key, at) for at in runs if at not in starts]
        if stored and history[-1].starts_at != stored[-1].starts_at:
            restarted.append((key, history[-1].starts_at))
    await uow.repo.save_segments(written, removed, restarted)


async def _leave_out_answered(
    repo: CatalogueRepository, rows: list[PriceRow], *, again: Collection[Key]
) -> list[PriceRow]:
    """Leave out members' sightings their anchor answers (domain.answering); end the own prices they replace.

    A key seen more than once in the batches takes the general path: it is never left out.
    """
    anchor_of = await repo.anchors_of(sorted({(row.chain, row.store_id) for row in rows}))
    if not anchor_of:
        return rows
    by_key = {row.key: row for row in rows}
    answered: list[Key] = []
    own_ended: list[Key] = []
    for chain in sorted({chain for chain, _ in anchor_of}):
        asked = [
            row
            for row in rows
            if row.chain == chain and (chain, row.store_id) in anchor_of and row.key not in again
        ]
        if not asked:
            continue
        stores = {row.store_id for row in asked} | {anchor_of[chain, row.store_id] for row in asked}
        stored = await repo.current_prices(
            chain=chain, store_ids=sorted(stores), skus=sorted({row.sku for row in asked})
        )
        for row in asked:
            own = stored.get(row.key)
            if own is not None and own.observed_at >= row.observed_at:
                continue  # not newer than the member's own price: the merge leaves it to history
            anchor_key = (chain, anchor_of[chain, row.store_id], row.sku)
            theirs = _newer(stored.get(anchor_key), by_key.get(anchor_key))
            if theirs is not None and answers(
                anchor_shelf=theirs.shelf,
                anchor_seen=theirs.observed_at,
                member_shelf=row.shelf,
                member_seen=row.observed_at,
            ):
                answered.append(row.key)
                if own is not None:
                    own_ended.append(row.key)
    await repo.end_prices(own_ended)
    left_out = set(answered)
    return [row for row in rows if row.key not in left_out]


def _newer(stored: PriceRow | None, staged: PriceRow | None) -> PriceRow | None:
    """Return the newer of a stored and a staged price (either may be missing)."""
    if stored is None or (staged is not None and staged.observed_at > stored.observed_at):
        return staged
    return stored


def _folded(history: tuple[Segment, ...], o: PriceObservation) -> tuple[Segment, ...]:
    """Return a history with one sighting folded in."""
    return fold(
        history, price_cents=o.price_cents, was_price_cents=o.was_price_cents, observed_at=o.observed_at
    )


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
    """Place a group's members under its anchor, unless a newer version is known; return if applied.

    The members' prices their anchor answers (domain.answering) end there: what grouping found
    they share is then kept once, with the anchor.
    """
    if not await uow.repo.apply_group(group):
        return False
    if group.reason == "dissolved" or not group.member_store_ids:
        return True
    anchor = group.anchor_store_id
    stored = await uow.repo.current_prices(chain=group.chain, store_ids=[anchor, *group.member_store_ids])
    await uow.repo.end_prices(
        [
            key
            for key, own in stored.items()
            if key[1] != anchor
            and (theirs := stored.get((key[0], anchor, key[2]))) is not None
            and answers(
                anchor_shelf=theirs.shelf,
                anchor_seen=theirs.observed_at,
                member_shelf=own.shelf,
                member_seen=own.observed_at,
            )
        ]
    )
    return True


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
