"""The catalogue use cases: each event folds into the read model, idempotently.

Each runs in a unit of work that has already claimed its events. Upserts are guarded by
when a fact was observed, so a late or repeated event changes nothing already newer.
"""

import functools
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from operator import itemgetter
from typing import cast

from catalogue.domain.answering import ANCHOR_LAG, Shelf, answers, shelf_columns, shelves
from catalogue.domain.history import Segment, fold
from catalogue.domain.search import search_text
from catalogue.repository import (
    CatalogueRepository,
    CopiedPage,
    HeldPage,
    Key,
    PageState,
    PriceRow,
    ProductRow,
)
from contracts.events.v1 import (
    BargainsChangedPayload,
    PriceColumns,
    PricesScrapedPayload,
    ProductObservedPayload,
    Sighting,
    StoreGroupChangedPayload,
    SubstitutionsChangedPayload,
)
from servicekit.kept_reads import KeptReads
from servicekit.pages import judgeable, unanswered
from servicekit.sweeps import SeenPage, apart, seen_pages
from servicekit.unit_of_work import Work

Page = tuple[str, str, list[Sighting]]
"""A batch's chain, store and prices."""
OwnRead = tuple[frozenset[str], dict[tuple[str, str], Shelf]]
"""Members' own current prices read, by (store, sku), and which members they are of."""
_SHELF, _SEEN = itemgetter(0), itemgetter(1)


def price_row(chain: str, store_id: str, o: Sighting) -> PriceRow:
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


def price_records(
    chain: str, page: SeenPage, prices: PriceColumns, *, sweep: int | None
) -> Iterator[tuple[object, ...]]:
    """Return the current-price rows of a page seen at once (PRICE_COLUMNS, run_starts_at, sweep):
    each starts its run, held by `sweep`; built a column at a time, with no object per price."""
    count = len(prices.sku)
    at = page.seen_at
    return zip(
        repeat(chain, count),
        repeat(page.store_id, count),
        prices.sku,
        *shelf_columns(prices),
        repeat(at, count),
        repeat(at, count),
        repeat(sweep, count),
        strict=True,
    )


@dataclass(slots=True)
class PageWays:
    """How a batch's pages seen whole are folded (by position in the batch)."""

    moving: list[int] = field(default_factory=list)
    """Pages seen again unchanged whose sweep held them whole: only the sweep moves."""
    copying: list[int] = field(default_factory=list)
    """Pages of stores that hold no price yet: copied in from their columns."""
    older: set[int] = field(default_factory=set)
    """Pages whose sweep is older than they are (or none): the rows they write it holds."""


def whole_pages(
    batches: Sequence[PricesScrapedPayload], anchor_of: Mapping[tuple[str, str], str]
) -> dict[int, SeenPage]:
    """Return, by position, the pages a sweep may hold: seen at once (servicekit.sweeps), of a store
    that is its own anchor (a member's prices are judged against its anchor's), whose pages in the
    batch are all such pages, each another page with products of its own (`apart`): each is then
    folded on its own. A store whose pages overlap is merged whole, as prices one by one."""
    listed: dict[tuple[str, str], list[int]] = {}
    for i, batch in enumerate(batches):
        listed.setdefault((batch.chain, batch.store_id), []).append(i)
    # Only those stores' pages are hashed (`seen_pages`): a member's page is not.
    mine = sorted(
        i
        for store, positions in listed.items()
        if store not in anchor_of and all(batches[i].prices is not None for i in positions)
        for i in positions
    )
    seen = dict(zip(mine, seen_pages([batches[i] for i in mine]), strict=True))
    pages: dict[int, SeenPage] = {}
    for positions in listed.values():
        found = [page for i in positions if (page := seen.get(i)) is not None]
        if len(found) == len(positions) and (len(found) == 1 or apart(found)):
            pages.update(zip(positions, found, strict=True))
    return dict(sorted(pages.items()))


def page_ways(pages: Mapping[int, SeenPage], states: Sequence[PageState]) -> PageWays:
    """Return how each page is folded, from where it stood (`states`, in the pages' order).

    A page seen again showing what its sweep noted when it held the page whole, not before the
    sweep, only moves the sweep; a store's first page is copied in; any other is merged. Only a
    sweep older than its page holds the page's rows: a held row is never seen after its sweep.
    """
    ways = PageWays()
    for (i, page), state in zip(pages.items(), states, strict=True):
        if state.seen_at is None or state.seen_at < page.seen_at:
            ways.older.add(i)
        if not state.stocked:
            ways.copying.append(i)
        elif state.shelves == page.shelves and state.seen_at is not None and state.seen_at <= page.seen_at:
            ways.moving.append(i)
    return ways


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


async def fold_prices(
    uow: Work[CatalogueRepository],
    batches: Sequence[PricesScrapedPayload],
    *,
    anchor_shelves: KeptReads[Shelf] | None = None,
) -> None:
    """Fold batches of prices into current prices and change-only history, in a fixed number of statements.

    `anchor_shelves` keeps anchors' current prices between batches while their marks stand (one
    per process); without it nothing is kept past this call.
    """
    kept = anchor_shelves if anchor_shelves is not None else KeptReads[Shelf]()
    anchor_of = await uow.repo.anchors_of(sorted({(batch.chain, batch.store_id) for batch in batches}))
    # First the pages that need no price one by one: read after them, an anchor's prices are as
    # they would be merged.
    done, holding = await _by_pages(uow.repo, batches, anchor_of)
    pages, own_read = await _left_by_columns(uow.repo, batches, anchor_of, kept, done)
    # The newest sighting of each key is its current price; a key seen more than once in the
    # batches (rare) also keeps its other sightings, which history folds in arrival order.
    newest: dict[Key, Sighting] = {}
    again: dict[Key, list[Sighting]] = {}
    for chain, store_id, sightings in pages:
        for o in sightings:
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
    answered = await _answered_by_anchors(uow.repo, pages, newest, again.keys(), anchor_of, kept, own_read)
    rows = [price_row(key[0], key[1], o) for key, o in newest.items() if key not in answered]
    seen_before = await uow.repo.histories(list(again)) if again else {}
    late = await uow.repo.save_prices(rows, held=holding)
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


def unanswered_prices(
    prices: PriceColumns, *, theirs: Mapping[str, Shelf | None], mine: Collection[str]
) -> list[int] | None:
    """Return the positions of a member's page its anchor may not answer (`answers`, judged a
    column at a time); None to judge it price by price. `mine`: the member's own prices."""
    return unanswered(
        prices, theirs=theirs, mine=mine, shown=_SHELF, seen=_SEEN, shelves=shelves(prices), lag=ANCHOR_LAG
    )


async def _by_pages(
    repo: CatalogueRepository,
    batches: Sequence[PricesScrapedPayload],
    anchor_of: Mapping[tuple[str, str], str],
) -> tuple[set[int], list[HeldPage]]:
    """Fold the pages that need no price one by one: those seen again unchanged (their sweep moves)
    and stores' first pages (copied in from their columns); return their positions, and the pages
    the merge writes held by their sweep (`page_ways`). Each page of a store takes its own way: one
    may move while another is merged (`whole_pages` keeps them apart).
    """
    pages = whole_pages(batches, anchor_of)
    if not pages:
        return set(), []
    ways = page_ways(pages, await repo.page_states([(batches[i].chain, page) for i, page in pages.items()]))
    moved = await repo.move_sweeps([(batches[i].chain, pages[i]) for i in ways.moving])
    done = {i for i in ways.moving if (batches[i].chain, pages[i].store_id, pages[i].page) in moved}
    await repo.copy_prices(
        [
            CopiedPage(
                batches[i].chain,
                pages[i],
                price_records(
                    batches[i].chain,
                    pages[i],
                    cast(PriceColumns, batches[i].prices),  # a page seen whole came as columns
                    sweep=pages[i].page if i in ways.older else None,
                ),
                held=i in ways.older,
            )
            for i in ways.copying
        ]
    )
    done.update(ways.copying)
    # The rest are merged (a page whose sweep did not move too: its rows changed meanwhile).
    merged = Counter((batches[i].chain, page.store_id) for i, page in pages.items() if i not in done)
    held = [
        HeldPage(batches[i].chain, pages[i], merged[batches[i].chain, pages[i].store_id] == 1)
        for i in sorted(ways.older)
        if i not in done
    ]
    return done, held


async def _left_by_columns(
    repo: CatalogueRepository,
    batches: Sequence[PricesScrapedPayload],
    anchor_of: Mapping[tuple[str, str], str],
    kept: KeptReads[Shelf],
    done: Collection[int] = (),
) -> tuple[list[Page], dict[str, OwnRead]]:
    """Return the batches' prices left to judge one by one: of a member's page judged a column at
    a time (`servicekit.pages.judgeable`), only those its anchor may not answer
    (`unanswered_prices`); and, by chain, the members' own prices read for it. `done`: the
    positions of batches already folded (`_by_pages`).
    """
    judged = judgeable(batches, lambda chain, store_id: anchor_of.get((chain, store_id)))
    left: dict[int, list[int]] = {}
    read: dict[str, OwnRead] = {}
    for chain in sorted({batches[i].chain for i in judged}):
        members = {i: judged[i] for i in judged if batches[i].chain == chain}
        wanted: dict[str, set[str]] = {}
        for anchor, prices in members.values():
            wanted.setdefault(anchor, set()).update(prices.sku)
        theirs = await kept.stores(
            chain,
            wanted,
            marks=functools.partial(_marks, repo, chain),
            rows=functools.partial(_shelves, repo, chain),
        )
        stores = frozenset(batches[i].store_id for i in members)
        own = await repo.current_shelves(
            chain=chain, store_ids=sorted(stores), skus=sorted(set().union(*wanted.values()))
        )
        read[chain] = (stores, own)
        mine: dict[str, set[str]] = {}
        for store_id, sku in own:
            mine.setdefault(store_id, set()).add(sku)
        for i, (anchor, prices) in members.items():
            positions = unanswered_prices(
                prices, theirs=theirs.get(anchor, {}), mine=mine.get(batches[i].store_id, set())
            )
            if positions is not None:
                left[i] = positions
    pages: list[Page] = []
    for i, batch in enumerate(batches):
        positions = left.get(i)
        if positions == [] or i in done:
            continue  # a page its anchor answered whole
        sightings = batch.sightings()
        if positions is not None:  # answered in part: the rest
            sightings = [sightings[p] for p in positions]
        pages.append((batch.chain, batch.store_id, sightings))
    return pages, read


async def _answered_by_anchors(
    repo: CatalogueRepository,
    pages: Sequence[Page],
    newest: dict[Key, Sighting],
    again: Collection[Key],
    anchor_of: Mapping[tuple[str, str], str],
    kept: KeptReads[Shelf],
    own_read: Mapping[str, OwnRead],
) -> set[Key]:
    """Return the members' newest sightings that their anchor answers (domain.answering).

    A member's own price that such a sighting replaces (an exception that no longer holds) ends.
    A key seen more than once in the batches takes the general path: it is never answered.
    `own_read`: members' own prices already read, by chain (of the pages judged a column at a time).
    """
    answered: set[Key] = set()
    ended: list[Key] = []
    for chain in sorted({chain for chain, _ in anchor_of}):
        members = [page for page in pages if page[0] == chain and (chain, page[1]) in anchor_of]
        if not members:
            continue
        skus = sorted({o.sku for _, _, sightings in members for o in sightings})
        # Members' own prices (their exceptions, few) are read, unless read already; their
        # anchors' may be kept.
        read, held = own_read.get(chain, (frozenset(), {}))
        stored = dict(held)
        if unread := sorted({p[1] for p in members}.difference(read)):
            stored |= await repo.current_shelves(chain=chain, store_ids=unread, skus=skus)
        stored |= await kept.read(
            chain,
            {(anchor_of[chain, store_id], o.sku) for _, store_id, sightings in members for o in sightings},
            marks=functools.partial(_marks, repo, chain),
            rows=functools.partial(_shelves, repo, chain),
        )
        for _, store_id, sightings in members:
            anchor = anchor_of[chain, store_id]
            for o in sightings:
                key = (chain, store_id, o.sku)
                if newest[key] is not o or key in again:
                    continue
                own = stored.get((store_id, o.sku))
                if own is not None and own[1] >= o.observed_at:
                    continue  # not newer than the member's own price: the merge leaves it to history
                theirs = stored.get((anchor, o.sku))
                staged = newest.get((chain, anchor, o.sku))
                if staged is not None and (theirs is None or staged.observed_at > theirs[1]):
                    theirs = (_shelf_of(staged), staged.observed_at)
                if theirs is not None and answers(
                    anchor_shelf=theirs[0],
                    anchor_seen=theirs[1],
                    member_shelf=_shelf_of(o),
                    member_seen=o.observed_at,
                ):
                    answered.add(key)
                    if own is not None:
                        ended.append(key)
    await repo.end_prices(ended)
    return answered


async def _marks(repo: CatalogueRepository, chain: str, store_ids: Sequence[str]) -> dict[str, int]:
    """Return the price marks of stores of a chain."""
    return await repo.price_marks(chain=chain, store_ids=store_ids)


async def _shelves(
    repo: CatalogueRepository, chain: str, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Shelf]:
    """Return the current shelves of (store, sku) pairs: their stores by their skus, the pairs kept."""
    wanted = set(pairs)
    found = await repo.current_shelves(
        chain=chain, store_ids=sorted({store for store, _ in pairs}), skus=sorted({sku for _, sku in pairs})
    )
    return {pair: shelf for pair, shelf in found.items() if pair in wanted}


def _shelf_of(o: Sighting) -> tuple[object, ...]:
    """Return what an observation's label shows, as PriceRow.shelf has it."""
    # Most prices have no nested parts: their shelf is built without a PriceRow (twice per member's price).
    if o.unit_price is None and o.multibuy is None:
        return (
            o.price_cents, o.was_price_cents, o.available, o.member_price_cents, None, None, o.sold_by,
            None, None, None, None,
        )  # fmt: skip
    return price_row("", "", o).shelf


def _folded(history: tuple[Segment, ...], o: Sighting) -> tuple[Segment, ...]:
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

    The members' prices their anchor answers (domain.answering) are dropped: what grouping found
    they share is then kept once, with the anchor, whose runs answer for the members' too.
    """
    if not await uow.repo.apply_group(group):
        return False
    if group.reason == "dissolved" or not group.member_store_ids:
        return True
    anchor = group.anchor_store_id
    stored = await uow.repo.current_shelves(chain=group.chain, store_ids=[anchor, *group.member_store_ids])
    answered = [
        (group.chain, store_id, sku)
        for (store_id, sku), (shelf, seen) in stored.items()
        if store_id != anchor
        and (theirs := stored.get((anchor, sku))) is not None
        and answers(anchor_shelf=theirs[0], anchor_seen=theirs[1], member_shelf=shelf, member_seen=seen)
    ]
    # A member all of whose prices go is dropped by store: a tenth of the cost of its keys.
    going = set(answered)
    keeping = {store_id for store_id, sku in stored if (group.chain, store_id, sku) not in going}
    wholly = sorted({store_id for _, store_id, _ in going}.difference(keeping))
    await uow.repo.drop_prices(
        [key for key in answered if key[1] in keeping],
        stores=[(group.chain, store_id) for store_id in wholly],
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
