"""An in-memory bargains repository with the SQL's semantics, and a stream of prices to feed it."""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from bargains.domain.answering import Run
from bargains.domain.bargains import median
from bargains.domain.history import Label, PriceMove, Segment, SoldBy, utc_day
from bargains.domain.listing import FlaggedPrice, Key, ListedBargain, OtherChains
from bargains.repository import PagesKnown, Product, Shown, Sweep
from bargains.service_layer import label_of
from contracts.events import PriceObservation
from contracts.events.v1 import PageRef, PriceColumns, PricesScrapedPayload, StoreGroupChangedPayload
from servicekit.sweeps import SeenPage, plan


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a store sits: its group, the group's version and its anchor."""

    group_id: str
    group_version: int
    anchor_store_id: str


def _shown_by(prices: PriceColumns) -> Iterable[tuple[int, int | None, Label]]:
    """Return each price of a page's columns with its was price and label, as a sighting's fold takes them."""
    return ((o.price_cents, o.was_price_cents, label_of(o)) for o in prices.sightings())


@dataclass
class FakeSweep:
    """A page's sweep: when it was last seen, what it showed while it holds each of its runs, its skus."""

    seen_at: datetime
    shelves: int | None
    lone: bool
    skus: tuple[str, ...]


@dataclass
class InMemoryBargainsRepository:
    """The bargains service's tables in dicts; each method does what its SQL does."""

    # (chain, store_id, sku) -> segments by when they start
    history: dict[tuple[str, str, str], dict[datetime, Segment]] = field(default_factory=dict)
    # (chain, sku, seen_on, price_cents) -> stores
    price_counts: dict[tuple[str, str, date, int], int] = field(default_factory=dict)
    placements: dict[tuple[str, str], Placement] = field(default_factory=dict)
    products: dict[tuple[str, str], str | None] = field(default_factory=dict)
    # (chain, sku) -> how the product was last sold
    sold_by: dict[tuple[str, str], SoldBy] = field(default_factory=dict)
    # (chain, sku, other_chain, other_sku)
    equivalents: set[tuple[str, str, str, str]] = field(default_factory=set)
    bargains: dict[str, ListedBargain] = field(default_factory=dict)
    # (chain, store_id, sku, kind) -> flag
    flags: dict[tuple[str, str, str, str], FlaggedPrice] = field(default_factory=dict)
    # (chain, store_id) -> the mark of a placed store's history; the sequence it is drawn from
    history_marks_of: dict[tuple[str, str], int] = field(default_factory=dict)
    marks_drawn: int = 0
    # How many pairs newest_runs was asked for: what a kept read spares
    runs_asked: int = 0
    # (chain, store_id, page) -> its sweep: each held run's end is written too (no sweep is read)
    sweeps_of: dict[tuple[str, str, int], FakeSweep] = field(default_factory=dict)
    # How many sweeps move_sweeps moved: pages seen again unchanged, no run read or written
    sweeps_moved: int = 0

    async def histories(self, *, chain: str, keys: Sequence[Key]) -> dict[Key, tuple[Segment, ...]]:
        """Return the price history of (store, sku) pairs of a chain, oldest segment first."""
        found: dict[Key, tuple[Segment, ...]] = {}
        for store_id, sku in keys:
            segments = self.history.get((chain, store_id, sku))
            if segments:
                found[store_id, sku] = tuple(segments[start] for start in sorted(segments))
        return found

    async def store_histories(
        self, *, chain: str, store_ids: Sequence[str]
    ) -> dict[Key, tuple[Segment, ...]]:
        """Return the price history of every product of some stores of a chain, oldest segment first."""
        keys = [(store_id, sku) for c, store_id, sku in self.history if c == chain and store_id in store_ids]
        return await self.histories(chain=chain, keys=keys)

    async def newest_runs(self, *, chain: str, keys: Sequence[Key]) -> dict[Key, Run]:
        """Return the newest run of (store, sku) pairs of a chain (pairs without a history omitted)."""
        self.runs_asked += len(keys)
        histories = await self.histories(chain=chain, keys=keys)
        return {
            key: Run(
                history[-1].price_cents, history[-1].was_price_cents, history[-1].label, history[-1].ends_at
            )
            for key, history in histories.items()
        }

    async def history_marks(self, *, chain: str, store_ids: Sequence[str]) -> dict[str, int]:
        """Return the mark of placed stores' histories: a new one whenever a history of theirs changes."""
        return {
            store_id: self.history_marks_of[chain, store_id]
            for store_id in store_ids
            if (chain, store_id) in self.placements
        }

    def _mark_changed(self, chain: str, store_ids: Iterable[str]) -> None:
        for store_id in store_ids:
            if (chain, store_id) in self.placements:
                self.history_marks_of[chain, store_id] = self._draw_mark()

    def _draw_mark(self) -> int:
        self.marks_drawn += 1
        return self.marks_drawn

    async def drop_histories(self, *, chain: str, keys: Sequence[Key], stores: Sequence[str] = ()) -> None:
        """Delete the whole history of (store, sku) pairs of a chain, and of whole stores."""
        self._mark_changed(chain, [*stores, *(store_id for store_id, _ in keys)])
        for store_id, sku in keys:
            self.history.pop((chain, store_id, sku), None)
        for key in [key for key in self.history if key[0] == chain and key[1] in stores]:
            del self.history[key]
        for sweep in [sweep for sweep in self.sweeps_of if sweep[0] == chain and sweep[1] in stores]:
            del self.sweeps_of[sweep]
        self._let_go(chain, keys, kept=set())

    async def save_segments(
        self,
        *,
        chain: str,
        started: Mapping[Key, Sequence[Segment]],
        extended: Mapping[Key, Sequence[Segment]],
        pages: Sequence[SeenPage | None] = (),
        shown: Mapping[tuple[str, int], Shown] | None = None,
        copied: Sequence[tuple[SeenPage, PriceColumns]] = (),
    ) -> None:
        """Insert new segments and move the end of extended ones; a segment is known by when it starts.

        Every end is written: sweeps (`pages`) only spare PostgreSQL's rows their writes, and keep
        what their page showed (`shown`) until a run of their page is written otherwise. A store's
        first page (`copied`) starts a run per price, its sweep stored as for a page folded whole.
        """
        if copied:
            firsts = {
                (page.store_id, sku): (Segment(price, was, page.seen_at, page.seen_at, label),)
                for page, prices in copied
                for sku, (price, was, label) in zip(page.skus, _shown_by(prices), strict=True)
            }
            # A store's first pages are all its pages in the batch, and share no product.
            assert sum(len(page.skus) for page, _ in copied) == len(firsts), "a product on two first pages"
            assert not firsts.keys() & started.keys(), "a first page's product folded by runs too"
            started = {**started, **firsts}
            pages = [*pages, *(page for page, _ in copied)]
            shown = {
                **(shown or {}),
                **{(page.store_id, page.page): (page.shelves, True) for page, _ in copied},
            }
        self._mark_changed(chain, [store_id for store_id, _ in (*started, *extended)])
        sweeping = plan(
            pages,
            moved={key: s[-1].ends_at for key, s in extended.items() if key not in started},
            renewed={key: s[-1].ends_at for key, s in started.items()},
            held={},
        )
        self._let_go(chain, [*started, *extended], kept=set(sweeping.sweeps))
        skus = {(p.store_id, p.page): tuple(p.skus) for p in pages if p is not None}
        for (store_id, page), seen_at in sweeping.sweeps.items():
            shelves, lone = (shown or {}).get((store_id, page), (None, False))
            self.sweeps_of[chain, store_id, page] = FakeSweep(seen_at, shelves, lone, skus[store_id, page])
        for (store_id, sku), saved in started.items():
            stored = self.history.setdefault((chain, store_id, sku), {})
            for segment in saved:
                assert segment.starts_at not in stored, "a plain insert: the primary key would refuse it"
                stored[segment.starts_at] = segment
        for (store_id, sku), saved in extended.items():
            stored = self.history.setdefault((chain, store_id, sku), {})
            for segment in saved:
                known = stored.get(segment.starts_at)
                stored[segment.starts_at] = (
                    segment if known is None else known._replace(ends_at=segment.ends_at)
                )

    def _let_go(self, chain: str, keys: Iterable[Key], *, kept: set[tuple[str, int]]) -> None:
        """Forget what the sweeps (but those kept) showed of pages with a run written otherwise."""
        written: dict[str, set[str]] = {}
        for store_id, sku in keys:
            written.setdefault(store_id, set()).add(sku)
        for (c, store_id, page), sweep in self.sweeps_of.items():
            mine = written.get(store_id, set())
            if c == chain and (store_id, page) not in kept and not mine.isdisjoint(sweep.skus):
                sweep.shelves = None

    async def pages_known(self, *, chain: str, store_ids: Sequence[str]) -> PagesKnown:
        """Return the sweeps of some stores of a chain that keep what their page showed, and which of
        the stores have no history yet."""
        priced = {store_id for c, store_id, _ in self.history if c == chain}
        return PagesKnown(
            {
                (store_id, page): Sweep(sweep.seen_at, sweep.shelves, sweep.lone)
                for (c, store_id, page), sweep in self.sweeps_of.items()
                if c == chain and store_id in store_ids and sweep.shelves is not None
            },
            set(store_ids).difference(priced),
        )

    async def move_sweeps(self, *, chain: str, moved: Mapping[tuple[str, int], datetime]) -> None:
        """Move sweeps, by (store, page), to when their page was seen again unchanged: their runs too."""
        self._mark_changed(chain, [store_id for store_id, _ in moved])
        for (store_id, page), seen_at in moved.items():
            sweep = self.sweeps_of[chain, store_id, page]
            sweep.seen_at = seen_at
            self.sweeps_moved += 1
            for sku in sweep.skus:
                runs = self.history[chain, store_id, sku]
                newest = max(runs)
                runs[newest] = runs[newest]._replace(ends_at=max(runs[newest].ends_at, seen_at))

    async def move_current_prices(self, *, chain: str, moves: Sequence[PriceMove]) -> None:
        """Add each move (+1 or -1) to the stores counted at a product's price on a day."""
        for move in moves:
            key = (chain, move.sku, move.seen_on, move.price_cents)
            self.price_counts[key] = self.price_counts.get(key, 0) + move.delta

    async def current_medians(
        self, *, chain: str, skus: Sequence[str], fresh_after: datetime
    ) -> dict[str, float]:
        """Return each product's median price over the chain's stores seen since a day."""
        counted: dict[str, dict[int, int]] = {}
        for sku, price, stores in self._current(chain, skus, fresh_after):
            counted.setdefault(sku, {})
            counted[sku][price] = counted[sku].get(price, 0) + stores
        return {sku: median(by_price) for sku, by_price in counted.items()}

    async def price_bounds(
        self, *, chain: str, skus: Sequence[str], fresh_after: datetime
    ) -> dict[str, tuple[int, int]]:
        """Return each product's lowest and highest price over the chain's stores seen since a day."""
        bounds: dict[str, tuple[int, int]] = {}
        for sku, price, _ in self._current(chain, skus, fresh_after):
            lowest, highest = bounds.get(sku, (price, price))
            bounds[sku] = (min(lowest, price), max(highest, price))
        return bounds

    async def other_chain_prices(
        self, *, chain: str, skus: Sequence[str], fresh_after: datetime
    ) -> dict[str, OtherChains]:
        """Return the same products' current prices at other chains (same barcode, L1/L2)."""
        links: set[tuple[str, str, str]] = set()
        for sku in skus:
            barcode = self.products.get((chain, sku))
            if barcode is not None:
                links |= {
                    (sku, other_chain, other_sku)
                    for (other_chain, other_sku), other in self.products.items()
                    if other == barcode and other_chain != chain
                }
            links |= {(sku, c, s) for (mine, m, c, s) in self.equivalents if (mine, m) == (chain, sku)}
        counts: dict[str, dict[int, int]] = {}
        chains: dict[str, set[str]] = {}
        for sku, other_chain, other_sku in links:
            # A price per kilogram is compared with prices per kilogram only (unknown selling: each).
            if self.sold_by.get((chain, sku), "each") != self.sold_by.get((other_chain, other_sku), "each"):
                continue
            for _, price, stores in self._current(other_chain, [other_sku], fresh_after):
                by_price = counts.setdefault(sku, {})
                by_price[price] = by_price.get(price, 0) + stores
                chains.setdefault(sku, set()).add(other_chain)
        return {sku: OtherChains(by_price, len(chains[sku])) for sku, by_price in counts.items()}

    async def save_product(self, *, chain: str, sku: str, barcode: str | None) -> None:
        """Remember a product's barcode (a missing one keeps the barcode known)."""
        known = self.products.get((chain, sku))
        self.products[chain, sku] = barcode if barcode is not None else known

    async def save_sold_by(self, *, chain: str, sold_by: Mapping[str, SoldBy]) -> None:
        """Remember how each product of a chain was last sold: each or by the kilogram."""
        for sku, way in sold_by.items():
            self.sold_by[chain, sku] = way

    async def same_barcode(self, *, chain: str, sku: str) -> list[Product]:
        """Return the product and the products at any chain that share its barcode."""
        barcode = self.products.get((chain, sku))
        same = [
            Product(c, s)
            for (c, s), other in sorted(self.products.items())
            if barcode is not None and other == barcode
        ]
        return same or [Product(chain, sku)]

    async def replace_equivalents(self, *, chain: str, sku: str, others: Sequence[Product]) -> None:
        """Replace a product's identical and near-identical products at other chains."""
        self.equivalents = {e for e in self.equivalents if (e[0], e[1]) != (chain, sku)}
        for other in others:
            self._insert(self.equivalents, (chain, sku, other.chain, other.sku))

    async def stores_pricing(self, *, chain: str, sku: str) -> list[str]:
        """Return the stores (not members of a group) with a price history of a product."""
        stores = sorted({store for (c, store, s) in self.history if (c, s) == (chain, sku)})
        placed = {store: self.placements.get((chain, store)) for store in stores}
        return [store for store, p in placed.items() if p is None or p.anchor_store_id == store]

    async def anchors_of(self, *, chain: str, store_ids: Sequence[str]) -> dict[str, str]:
        """Return the store that answers for each of some stores: its anchor, or itself."""
        placed = {store: self.placements.get((chain, store)) for store in store_ids}
        return {store: p.anchor_store_id if p else store for store, p in placed.items()}

    async def apply_group(self, *, group: StoreGroupChangedPayload) -> list[str]:
        """Record a group's membership unless a newer version is known; return its members."""
        versions = [p.group_version for p in self.placements.values() if p.group_id == group.group_id]
        if versions and max(versions) >= group.group_version:
            return []
        self.placements = {k: p for k, p in self.placements.items() if p.group_id != group.group_id}
        if group.reason == "dissolved":
            return []
        placement = Placement(group.group_id, group.group_version, group.anchor_store_id)
        for store in (group.anchor_store_id, *group.member_store_ids):
            if (group.chain, store) not in self.placements:  # inserted: the column's default draws one
                self.history_marks_of[group.chain, store] = self._draw_mark()
            self.placements[group.chain, store] = placement
        return list(group.member_store_ids)

    async def bargains_of(
        self, *, chain: str, store_ids: Sequence[str], skus: Sequence[str] | None
    ) -> list[ListedBargain]:
        """Return the listed bargains of stores (of some products, or all)."""
        return [
            b
            for b in self.bargains.values()
            if b.chain == chain and b.store_id in store_ids and (skus is None or b.sku in skus)
        ]

    async def save_bargains(self, *, bargains: Sequence[ListedBargain]) -> None:
        """Insert or update bargains; an unknown category keeps the one listed."""
        for b in bargains:
            known = self.bargains.get(b.bargain_id)
            if known is None:
                self.bargains[b.bargain_id] = b
            else:  # only what the upsert sets: the rest stays as first listed
                self.bargains[b.bargain_id] = replace(
                    known,
                    price_cents=b.price_cents,
                    reference_cents=b.reference_cents,
                    score=b.score,
                    reason=b.reason,
                    observed_at=b.observed_at,
                    category=b.category if b.category is not None else known.category,
                )

    async def delete_bargains(self, *, bargain_ids: Sequence[str]) -> None:
        """Remove bargains that no longer apply."""
        for bargain_id in bargain_ids:
            self.bargains.pop(bargain_id, None)

    async def replace_flags(
        self, *, chain: str, products: Mapping[str, Collection[str]], flags: Sequence[FlaggedPrice]
    ) -> None:
        """Replace the flags of some products of some stores (skus by store) with new ones."""
        self.flags = {
            k: f for k, f in self.flags.items() if k[0] != chain or k[2] not in products.get(k[1], ())
        }
        for flag in flags:
            key = (chain, flag.store_id, flag.sku, flag.kind)
            if key in self.flags:
                raise ValueError(f"duplicate flag {key}")
            self.flags[key] = flag

    async def tidy_price_counts(self, *, before: date) -> int:
        """Delete empty counts and those of days before `before`; return how many (no ranges kept)."""
        empty = [key for key, stores in self.price_counts.items() if stores == 0 or key[2] < before]
        for key in empty:
            del self.price_counts[key]
        return len(empty)

    async def stale_bargains(self, *, before: datetime) -> list[ListedBargain]:
        """Return bargains resting on prices observed before a horizon."""
        return [b for b in self.bargains.values() if b.observed_at < before]

    def _current(self, chain: str, skus: Sequence[str], fresh_after: datetime) -> list[tuple[str, int, int]]:
        """Return (sku, price, stores) of counts held by some store and seen since a day."""
        since = utc_day(fresh_after)
        return [
            (sku, price, stores)
            for (c, sku, seen_on, price), stores in self.price_counts.items()
            if c == chain and sku in skus and seen_on >= since and stores > 0
        ]

    @staticmethod
    def _insert(table: set[tuple[str, str, str, str]], row: tuple[str, str, str, str]) -> None:
        """Add a row, refusing a duplicate primary key like the table does."""
        if row in table:
            raise ValueError(f"duplicate key {row}")
        table.add(row)


ANSWERED_BY_S1 = ("m1", "milk")
"""The key of prices_of that s1 answers once m1 is placed under it: it holds no history then."""


def prices_of(chain: str, *, at: datetime) -> list[PricesScrapedPayload]:
    """Return several events per store, in arrival order, the last `at`: every decision of a fold.

    Changes, repeats, specials, a late older one, a raised price before its "special", a member
    (m1, under the anchor s1 when placed so) and an outlier. Once placed, m1's milk is answered
    by s1 (ANSWERED_BY_S1): its own price of day 5 gives way when it shows s1's special again.
    """
    page = PageRef(category="grocery", page=1)

    def event(
        store: str, days: int, *rows: tuple[str, int, int | None], hours: int = 0
    ) -> PricesScrapedPayload:
        observed_at = at - timedelta(days=days) + timedelta(hours=hours)
        observations = tuple(
            PriceObservation(sku=sku, price_cents=price, was_price_cents=was, observed_at=observed_at)
            for sku, price, was in rows
        )
        return PricesScrapedPayload(
            chain=chain, store_id=store, source="ingest", page=page, observations=observations
        )

    regular = (("milk", 500, None), ("tea", 300, None), ("bread", 200, None))
    return [
        event("s1", 20, *regular),
        event("s2", 20, *regular),
        event("m1", 20, ("milk", 500, None)),
        event("s1", 12, *regular),
        event("s2", 10, ("milk", 500, None), ("tea", 300, None), ("bread", 210, None)),
        event("s1", 5, *regular),  # an unchanged repeat
        event("m1", 5, ("milk", 520, None)),  # a member's own price (its anchor's is 500)
        event("s1", 3, ("tea", 400, None)),  # raised before its "special"
        event("s2", 2, ("milk", 440, None), ("bread", 210, None)),
        event("s2", 4, ("milk", 480, None)),  # older than the one before it: dropped
        event("s1", 1, ("milk", 400, 500), ("tea", 300, 400), ("bread", 150, None)),
        event("s1", 1, ("milk", 400, 500), hours=1),  # the special seen again
        # A member (never assessed): its anchor's special answers its milk, its tea is its own.
        event("m1", 1, ("milk", 400, 500), ("tea", 350, None)),
        event("s3", 0, ("milk", 120, None)),  # a third of the median: an outlier
    ]
