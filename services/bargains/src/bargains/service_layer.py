"""The bargains use cases: an event updates exactly the bargains it affects.

Each runs in a unit of work (reading and writing through its repository, publishing the
BargainsChanged it causes into the outbox) and is given the time: none reads the clock.
"""

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from itertools import accumulate, compress, groupby, repeat
from operator import and_, attrgetter, eq, itemgetter, lt, not_
from typing import NamedTuple

from bargains.domain.answering import ANCHOR_LAG, Run, answers, label_from, labels
from bargains.domain.bargains import Policy, may_be_outlier
from bargains.domain.history import Label, Segment, SoldBy, fold, tally_moves, utc_day
from bargains.domain.listing import Change, Key, changes_between, listings_of, payloads_for
from bargains.repository import BargainsRepository, PagesKnown, Product, Sweep
from contracts.events import BargainsChanged
from contracts.events.v1 import (
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

PRODUCER = "bargains"
# What a run and a segment show on the shelf (price, was price, label) and when each was last seen.
_RUN_SHELF, _RUN_SEEN = itemgetter(0, 1, 2), itemgetter(3)
_SEGMENT_SHELF, _SEGMENT_SEEN = attrgetter("price_cents", "was_price_cents", "label"), attrgetter("ends_at")


async def fold_prices(
    uow: Work[BargainsRepository],
    batches: Sequence[PricesScrapedPayload],
    *,
    now: datetime,
    policy: Policy,
    anchor_runs: KeptReads[Run] | None = None,
) -> None:
    """Fold batches of prices into history and reassess the bargains of the products they touch.

    `anchor_runs` keeps anchors' newest runs between batches while their history marks stand
    (one per process); without it nothing is kept past this call.
    """
    by_chain: dict[str, list[PricesScrapedPayload]] = defaultdict(list)
    for batch in batches:
        by_chain[batch.chain].append(batch)
    for chain, chain_batches in by_chain.items():
        await _fold_chain(uow, chain, chain_batches, now=now, policy=policy, anchor_runs=anchor_runs)


async def change_group(
    uow: Work[BargainsRepository], group: StoreGroupChangedPayload, *, now: datetime, policy: Policy
) -> None:
    """Record where stores sit; members' own bargains, and prices their anchor answers, give way to its."""
    members = await uow.repo.apply_group(group=group)
    if not members:
        return
    await _drop_answered(uow.repo, group.chain, group.anchor_store_id, members, now=now, policy=policy)
    stale = await uow.repo.bargains_of(chain=group.chain, store_ids=members, skus=None)
    await uow.repo.delete_bargains(bargain_ids=[b.bargain_id for b in stale])
    uow.publish(events_for([Change("expired", b) for b in stale]))


async def _drop_answered(
    repo: BargainsRepository,
    chain: str,
    anchor: str,
    members: Sequence[str],
    *,
    now: datetime,
    policy: Policy,
) -> None:
    """Drop the members' histories whose newest run their anchor's shows too, and their counts."""
    histories = await repo.store_histories(chain=chain, store_ids=[anchor, *members])
    dropped = [
        (key, history)
        for key, history in histories.items()
        if key[0] != anchor
        and (theirs := histories.get((anchor, key[1])))
        and answers(
            theirs[-1],
            price_cents=history[-1].price_cents,
            was_price_cents=history[-1].was_price_cents,
            label=history[-1].label,
            observed_at=history[-1].ends_at,
        )
    ]
    # A member every one of whose histories goes is dropped by store: a tenth of the cost of its pairs.
    going = {key for key, _ in dropped}
    keeping = {store for store, sku in histories if (store, sku) not in going}
    await repo.drop_histories(
        chain=chain,
        keys=[key for key in going if key[0] in keeping],
        stores=sorted({store for store, _ in going}.difference(keeping)),
    )
    await repo.move_current_prices(
        chain=chain,
        moves=tally_moves(
            ((key[1], history, ()) for key, history in dropped), read_from=utc_day(now - policy.freshness)
        ),
    )


async def change_substitutes(
    uow: Work[BargainsRepository], substitutes: SubstitutionsChangedPayload, *, now: datetime, policy: Policy
) -> None:
    """Record a product's identical (L1/L2) products elsewhere; reassess its cross-chain bargains."""
    chain, sku = substitutes.chain, substitutes.sku
    same = [
        Product(s.chain, s.sku)
        for s in substitutes.substitutes
        if s.level in ("L1", "L2") and s.chain != chain
    ]
    await uow.repo.replace_equivalents(chain=chain, sku=sku, others=same)
    await _reassess_everywhere(uow, [Product(chain, sku)], now=now, policy=policy)


async def observe_product(
    uow: Work[BargainsRepository], product: ProductObservedPayload, *, now: datetime, policy: Policy
) -> None:
    """Record a product's barcode; reassess it and the same product at other chains."""
    await uow.repo.save_product(chain=product.chain, sku=product.sku, barcode=product.barcode)
    if product.barcode is None:
        return
    same = await uow.repo.same_barcode(chain=product.chain, sku=product.sku)
    await _reassess_everywhere(uow, same, now=now, policy=policy)


async def expire(uow: Work[BargainsRepository], *, now: datetime, policy: Policy) -> int:
    """Remove bargains whose price went stale and announce it; return how many."""
    fresh_after = now - policy.freshness
    stale = await uow.repo.stale_bargains(before=fresh_after)
    # Counts no store holds, and counts and ranges of days no median or bound reads any more.
    await uow.repo.tidy_price_counts(before=utc_day(fresh_after))
    if stale:
        await uow.repo.delete_bargains(bargain_ids=[b.bargain_id for b in stale])
        uow.publish(events_for([Change("expired", b) for b in stale]))
    return len(stale)


def label_of(observation: Sighting) -> Label:
    """Return what an observation's label shows beside the price."""
    return label_from(observation.member_price_cents, observation.multibuy, observation.sold_by)


def segments_to_save(
    old: tuple[Segment, ...], new: tuple[Segment, ...]
) -> tuple[Segment | None, tuple[Segment, ...]]:
    """Return what a folded history adds to the stored one: its last one extended (or None), and those after.

    fold keeps every segment before the stored last one, extends that one (a new object, same
    start) or leaves it as it is, and appends new ones after it: nothing else is compared.
    """
    last = len(old) - 1
    extended = new[last] if last >= 0 and new[last] is not old[last] else None
    return extended, new[last + 1 :]


def events_for(changes: Sequence[Change]) -> list[BargainsChanged]:
    """Make BargainsChanged events, one per store (chunked), from changes."""
    return [BargainsChanged.new(producer=PRODUCER, payload=payload) for payload in payloads_for(changes)]


async def _fold_chain(
    uow: Work[BargainsRepository],
    chain: str,
    batches: list[PricesScrapedPayload],
    *,
    now: datetime,
    policy: Policy,
    anchor_runs: KeptReads[Run] | None,
) -> None:
    """Fold one chain's batches, in order, with a fixed number of statements however many."""
    repo = uow.repo
    kept = anchor_runs if anchor_runs is not None else KeptReads[Run]()
    anchors = await repo.anchors_of(chain=chain, store_ids=sorted({batch.store_id for batch in batches}))
    left = await _left_by_columns(repo, chain, batches, anchors, kept)
    seen = seen_pages(batches)
    own = own_pages(batches, seen, anchors)
    # Decided before any history is read: a page seen again unchanged only moves its sweep, and a
    # store's first page is copied in whole. Not an anchor's with a member in the batch: the
    # member's sightings are judged against the anchor's runs as the batch folds them.
    anchoring = {anchor for store, anchor in anchors.items() if anchor != store}
    alone = {i: page for i, page in own.items() if page.store_id not in anchoring}
    stores = sorted({p.store_id for p in alone.values()})
    known = await repo.pages_known(chain=chain, store_ids=stores) if stores else PagesKnown({}, set())
    unchanged = unchanged_pages(alone, known.sweeps)
    first = {i for i, page in alone.items() if i not in unchanged and page.store_id in known.unpriced}
    # One pass for what each key and product took last: a key's category, a product's way of selling.
    categories: dict[Key, str | None] = {}
    sold_by: dict[str, SoldBy] = {}
    # Each page's sightings to fold one by one, or a store's own page seen whole, judged a column
    # at a time against its histories once they are read (`_extended_unchanged`).
    pages: list[tuple[PricesScrapedPayload, list[Sighting] | SeenPage]] = []
    # Pages seen again unchanged and first pages, reassessed whole: no key of theirs is in
    # `categories` (the store's other pages in the batch share none of their products).
    swept: list[_Swept] = []
    copied: list[tuple[SeenPage, PriceColumns]] = []
    for i, batch in enumerate(batches):
        store_id, category = batch.store_id, batch.page.category if batch.page else None
        positions = left.get(i)
        sightings: list[Sighting] | SeenPage
        if (columns := batch.prices) is not None:
            each: Iterator[SoldBy] = repeat("each")
            sold_by.update(zip(columns.sku, columns.sold_by or each, strict=False))
        if (sweep := unchanged.get(i)) is not None and columns is not None:
            swept.append(
                _Swept(own[i], columns.price_cents, category, len(categories), sweep.seen_at, sweep.lone)
            )
            continue
        if i in first and columns is not None:
            swept.append(_Swept(own[i], columns.price_cents, category, len(categories), None, True))
            copied.append((own[i], columns))
            continue
        if positions is None and (page_seen := seen[i]) is not None and anchors[store_id] == store_id:
            sightings = page_seen
            categories.update(zip(zip(repeat(store_id), page_seen.skus), repeat(category)))
        elif positions is None:
            sightings = batch.sightings()
        else:  # a member's page its anchor answered in part or whole: the rest, one by one
            every = batch.sightings() if positions else []
            sightings = [every[p] for p in positions]
        for o in sightings if isinstance(sightings, list) else ():
            categories[store_id, o.sku] = category
            if columns is None:
                sold_by[o.sku] = o.sold_by
        pages.append((batch, sightings))
    keys = list(categories)  # in the order first seen
    histories = await repo.histories(chain=chain, keys=keys)
    # Members' sightings are compared with their anchors' newest runs: the batch's own, or stored ones.
    asked = {(anchors[store], sku) for store, sku in keys if anchors[store] != store}.difference(keys)
    runs = await kept.read(
        chain,
        asked,
        marks=lambda stores: repo.history_marks(chain=chain, store_ids=stores),
        rows=lambda pairs: repo.newest_runs(chain=chain, keys=pairs),
    )
    before = dict(histories)
    dropped: set[Key] = set()  # members' own histories their anchor's price now answers
    for batch, folded in pages:
        sightings = _extended_unchanged(batch, folded, histories) if isinstance(folded, SeenPage) else folded
        store_id = batch.store_id
        anchor = anchors[store_id]
        member = anchor != store_id
        for o in sightings:
            key = (store_id, o.sku)
            history = histories.get(key, ())
            observed_at = o.observed_at  # in datetime.UTC (sightings'): compared without a tzinfo call
            if history and observed_at <= history[-1].ends_at:
                continue  # what fold does with an older or repeated sighting, without the call
            label = label_of(o)
            if member:
                theirs = histories.get((anchor, o.sku))
                run = theirs[-1] if theirs else runs.get((anchor, o.sku))
                if run is not None and answers(
                    run,
                    price_cents=o.price_cents,
                    was_price_cents=o.was_price_cents,
                    label=label,
                    observed_at=observed_at,
                ):
                    if history:
                        histories[key] = ()  # its own price gives way to its anchor's
                        dropped.add(key)
                    continue
            histories[key] = fold(
                history,
                price_cents=o.price_cents,
                was_price_cents=o.was_price_cents,
                observed_at=observed_at,
                label=label,
            )
    # fold returns the very history it keeps, so a history it changed is another object.
    changed = [key for key in keys if key in histories and histories[key] is not before.get(key)]
    # A dropped history that the batch starts again is written anew, as if never stored.
    await repo.drop_histories(chain=chain, keys=sorted(dropped))
    # Cross-chain comparisons pair prices sold the same way: each product's latest way is kept.
    await repo.save_sold_by(chain=chain, sold_by=sold_by)
    # fold only extends a history's newest segment or appends one: older segments never change.
    started: dict[Key, tuple[Segment, ...]] = {}
    extended: dict[Key, tuple[Segment, ...]] = {}
    for key in changed:
        last, appended = segments_to_save(() if key in dropped else before.get(key, ()), histories[key])
        if last is not None:
            extended[key] = (last,)
        if appended:
            started[key] = appended
    # Pages folded whole may move a sweep instead of their runs' ends (servicekit.sweeps); a store's
    # own page keeps in it what it showed, for the next time it is seen unchanged.
    by_runs = [i not in left and i not in unchanged and i not in first for i in range(len(seen))]
    whole = [page if fold else None for page, fold in zip(seen, by_runs, strict=True)]
    shown = {(p.store_id, p.page): (p.shelves, _lone(p, histories)) for i, p in own.items() if by_runs[i]}
    await repo.save_segments(
        chain=chain, started=started, extended=extended, pages=whole, shown=shown, copied=copied
    )
    await repo.move_sweeps(
        chain=chain, moved={(s.page.store_id, s.page.page): s.page.seen_at for s in swept if s.last_seen}
    )
    # Each price of a page seen again leaves the day its sweep was last seen for today's, and each of
    # a first page joins today's: counted by product and price, a column at a time.
    moved: dict[tuple[date | None, date], Counter[tuple[str, int]]] = {}
    for s in swept:
        days = (None if s.last_seen is None else utc_day(s.last_seen), utc_day(s.page.seen_at))
        moved.setdefault(days, Counter()).update(zip(s.page.skus, s.prices, strict=True))
    await repo.move_current_prices(
        chain=chain,
        moves=tally_moves(
            ((key[1], before.get(key, ()), histories[key]) for key in changed),
            read_from=utc_day(now - policy.freshness),
            swept=[(counted, last_on, seen_on) for (last_on, seen_on), counted in moved.items()],
        ),
    )
    # A member's sample only counts toward the chain: its anchor's bargains answer for it.
    answering, swept = _answering(keys, anchors, swept)
    await _reassess(uow, chain, answering, histories, categories, now=now, policy=policy, swept=swept)


class _Swept(NamedTuple):
    """A store's own page seen again unchanged, or its first: its prices, and its runs as they were."""

    page: SeenPage
    prices: Sequence[int]
    category: str | None
    at: int
    """How many of the keys reassessed (in the order first seen) come before the page's own."""
    last_seen: datetime | None
    """When its sweep was last seen; None for a store's first page."""
    lone: bool
    """Whether each of its products has one run only (never changed): a first page's have."""


def _answering(
    keys: list[Key], anchors: Mapping[str, str], swept: list[_Swept]
) -> tuple[list[Key], list[_Swept]]:
    """Return the keys their store answers for (its own anchor), and the pages seen again unchanged
    placed among them (`_Swept.at`)."""
    if all(map(eq, anchors, anchors.values())):
        return keys, swept
    own = [anchors[store] == store for store, _ in keys]
    before = list(accumulate(own, initial=0))  # how many of the keys up to each answer for themselves
    return list(compress(keys, own)), [s._replace(at=before[s.at]) for s in swept]


def own_pages(
    batches: Sequence[PricesScrapedPayload], seen: Sequence[SeenPage | None], anchors: Mapping[str, str]
) -> dict[int, SeenPage]:
    """Return, by position, the pages seen whole of stores that are their own anchor, whose pages in
    the batch are each seen whole, pairwise different and share no product: each page's products'
    runs then show what that page showed, and nothing else of the store's batches touches them."""
    by_store: dict[str, list[int]] = {}
    for i, batch in enumerate(batches):
        by_store.setdefault(batch.store_id, []).append(i)
    own: dict[int, SeenPage] = {}
    for store_id, positions in by_store.items():
        if anchors[store_id] != store_id:
            continue
        pages = [seen[i] for i in positions]
        if len(pages) == 1:  # most stores send one page a batch: nothing to compare
            if (only := pages[0]) is not None:
                own[positions[0]] = only
            continue
        whole = [page for page in pages if page is not None]
        if len(whole) != len(pages) or not apart(whole):
            continue  # a page not seen whole, the same page twice or a product on two: all by runs
        own.update(zip(positions, whole, strict=True))
    return dict(sorted(own.items()))  # in the batch's order, as the pages are folded


def unchanged_pages(own: Mapping[int, SeenPage], sweeps: Mapping[tuple[str, int], Sweep]) -> dict[int, Sweep]:
    """Return, by position, the stores' own pages (`own_pages`) seen again unchanged and later, with
    their sweep: it holds every product's newest run, each showing what the page shows now."""
    return {
        i: sweep
        for i, page in own.items()
        if (sweep := sweeps.get((page.store_id, page.page))) is not None
        and sweep.shelves == page.shelves
        and sweep.seen_at < page.seen_at
    }


def _placed(keys: list[Key], spans: Sequence[tuple[int, Iterable[Key]]]) -> list[Key]:
    """Return the keys with each span's put in before the key at its position (spans in order)."""
    placed: list[Key] = []
    start = 0
    for at, span in spans:
        placed += keys[start:at]
        placed += span
        start = at
    return placed + keys[start:]


def _lone(page: SeenPage, histories: Mapping[Key, tuple[Segment, ...]]) -> bool:
    """Tell whether every product of a page has one run only (its price never changed)."""
    return set(map(len, map(histories.get, zip(repeat(page.store_id), page.skus), repeat(())))) == {1}


def _extended_unchanged(
    batch: PricesScrapedPayload, page: SeenPage, histories: dict[Key, tuple[Segment, ...]]
) -> list[Sighting]:
    """Extend, a column at a time, the histories whose newest run a store's page seen whole shows
    unchanged and older (as `fold` would); return the page's other sightings, to fold one by one.

    A price seen again unchanged is most of a scrape: judged this way it costs no Python step.
    """
    prices = batch.prices
    assert prices is not None  # a page seen whole came as columns (seen_pages)
    keys = list(zip(repeat(page.store_id), page.skus))
    found = [histories.get(key, ()) for key in keys]
    if not all(found):  # a product without a history: its first run is folded one by one
        return batch.sightings()
    lasts = [history[-1] for history in found]
    at = page.seen_at
    same = list(
        map(
            and_,
            map(eq, map(_SEGMENT_SHELF, lasts), _shelves(prices)),
            map(lt, map(_SEGMENT_SEEN, lasts), repeat(at)),
        )
    )
    for p in compress(range(len(keys)), same):
        last = lasts[p]
        extended = Segment(last.price_cents, last.was_price_cents, last.starts_at, at, last.label)
        histories[keys[p]] = (*found[p][:-1], extended)
    rest = list(compress(range(len(keys)), map(not_, same)))
    every = batch.sightings() if rest else []
    return [every[p] for p in rest]


def unanswered_prices(
    prices: PriceColumns, *, theirs: Mapping[str, Run | None], mine: Collection[str]
) -> list[int] | None:
    """Return the positions of a member's page its anchor may not answer (`answers`, judged a
    column at a time); None to judge it price by price. `mine`: the member's own histories."""
    return unanswered(
        prices,
        theirs=theirs,
        mine=mine,
        shown=_RUN_SHELF,
        seen=_RUN_SEEN,
        shelves=_shelves(prices),
        lag=ANCHOR_LAG,
    )


def _judged(skus: Sequence[str], judged: Collection[str]) -> list[str]:
    """Return the skus that some median or other chain judges, in order."""
    return list(compress(skus, map(judged.__contains__, skus))) if judged else []


def _shelves(prices: PriceColumns) -> Iterator[tuple[int, int | None, Label]]:
    """Return what each price of a page shows on the shelf: price, was price and label."""
    return zip(prices.price_cents, prices.was_price_cents or repeat(None), labels(prices), strict=True)


async def _left_by_columns(
    repo: BargainsRepository,
    chain: str,
    batches: Sequence[PricesScrapedPayload],
    anchors: Mapping[str, str],
    kept: KeptReads[Run],
) -> dict[int, list[int]]:
    """Return, for the members' pages judged a column at a time (`servicekit.pages.judgeable`), the
    positions left to fold one by one (`unanswered_prices`); a page not here is folded price by price.
    """
    judged = judgeable(batches, lambda _, store_id: a if (a := anchors[store_id]) != store_id else None)
    if not judged:
        return {}
    wanted: dict[str, set[str]] = {}
    for anchor, prices in judged.values():
        wanted.setdefault(anchor, set()).update(prices.sku)
    theirs = await kept.stores(
        chain,
        wanted,
        marks=lambda stores: repo.history_marks(chain=chain, store_ids=stores),
        rows=lambda pairs: repo.newest_runs(chain=chain, keys=pairs),
    )
    # Members' own histories are their exceptions: few, read by store.
    mine: dict[str, set[str]] = {}
    for store_id, sku in await repo.store_histories(
        chain=chain, store_ids=sorted({batches[i].store_id for i in judged})
    ):
        mine.setdefault(store_id, set()).add(sku)
    left = {
        i: unanswered_prices(prices, theirs=theirs.get(anchor, {}), mine=mine.get(batches[i].store_id, set()))
        for i, (anchor, prices) in judged.items()
    }
    return {i: positions for i, positions in left.items() if positions is not None}


async def _reassess_everywhere(
    uow: Work[BargainsRepository], products: Sequence[Product], *, now: datetime, policy: Policy
) -> None:
    """Reassess products at every store that prices them (their cross-chain reference moved)."""
    for product in products:
        stores = await uow.repo.stores_pricing(chain=product.chain, sku=product.sku)
        keys = [(store, product.sku) for store in stores]
        histories = await uow.repo.histories(chain=product.chain, keys=keys)
        await _reassess(uow, product.chain, keys, histories, {}, now=now, policy=policy)


async def _reassess(
    uow: Work[BargainsRepository],
    chain: str,
    keys: list[Key],
    histories: dict[Key, tuple[Segment, ...]],
    categories: dict[Key, str | None],
    *,
    now: datetime,
    policy: Policy,
    swept: Sequence[_Swept] = (),
) -> None:
    """Reassess the bargains and flags of (store, sku) pairs of a chain from their histories.

    `swept`: pages seen again unchanged or first pages, their runs unread, each reassessed whole: a
    product whose one run never changed lists nothing unless a chain median or another chain judges
    it, so only the others' histories are read.
    """
    if not keys and not swept:
        return
    repo = uow.repo
    fresh_after = now - policy.freshness
    # Only products with a fresh price can be bargains: the others need no medians.
    fresh = [key for key in keys if key in histories and histories[key][-1].ends_at >= fresh_after]
    fresh_swept = [s for s in swept if s.page.seen_at >= fresh_after]
    shown: set[tuple[str, int]] = set()  # the swept pages' products and prices: a few per product
    for s in fresh_swept:
        shown.update(zip(s.page.skus, s.prices, strict=True))
    fresh_skus = sorted({sku for _, sku in fresh}.union(sku for sku, _ in shown))
    # The chain median only tells outliers: it is read for the products whose price could be one.
    bounds = await repo.price_bounds(chain=chain, skus=fresh_skus, fresh_after=fresh_after)
    suspect = {
        sku
        for store, sku in fresh
        if sku in bounds and may_be_outlier(histories[store, sku][-1].price_cents, *bounds[sku])
    }.union(sku for sku, price in shown if sku in bounds and may_be_outlier(price, *bounds[sku]))
    medians = await repo.current_medians(chain=chain, skus=sorted(suspect), fresh_after=fresh_after)
    others = await repo.other_chain_prices(chain=chain, skus=fresh_skus, fresh_after=fresh_after)
    judged = medians.keys() | others.keys()
    # Of a page whose every product has one run, those some median or other chain judges.
    unread = [
        (s, list(zip(repeat(s.page.store_id), skus)))
        for s in fresh_swept
        if (skus := _judged(s.page.skus, judged) if s.lone else s.page.skus)
    ]
    if unread:
        # Read after their sweeps moved: their runs end when the page was seen again.
        histories.update(await repo.histories(chain=chain, keys=[key for _, read in unread for key in read]))
        for s, read in unread:
            categories.update(zip(read, repeat(s.category)))
        placed = _placed(keys, [(s.at, read) for s, read in unread])
        fresh = [key for key in placed if key in histories and histories[key][-1].ends_at >= fresh_after]
    listing = listings_of(
        chain,
        {key: histories[key] for key in fresh},
        categories=categories,
        medians=medians,
        others=others,
        now=now,
        policy=policy,
    )
    desired = {b.bargain_id: b for b in listing.bargains}
    products: dict[str, set[str]] = {}  # the skus reassessed, by store
    for store, pairs in groupby(keys, itemgetter(0)):
        products.setdefault(store, set()).update(map(itemgetter(1), pairs))
    for s in swept:  # a store's other pages in the batch may be among the keys, or swept too
        products.setdefault(s.page.store_id, set()).update(s.page.skus)
    listed = await repo.bargains_of(
        chain=chain, store_ids=sorted(products), skus=sorted(set[str]().union(*products.values()))
    )
    # The query above asks for every store x every sku: keep only the pairs reassessed here.
    current = {b.bargain_id: b for b in listed if b.sku in products[b.store_id]}
    changes = changes_between(current, desired)
    # A special seen again keeps its terms (nothing to announce) but its sighting moves:
    # stored all the same, so it stays fresh for listing and expiry however events were batched.
    await repo.save_bargains(bargains=[b for key, b in desired.items() if current.get(key) != b])
    await repo.delete_bargains(
        bargain_ids=[change.bargain.bargain_id for change in changes if change.kind == "expired"]
    )
    await repo.replace_flags(chain=chain, products=products, flags=listing.flags)
    uow.publish(events_for(changes))
