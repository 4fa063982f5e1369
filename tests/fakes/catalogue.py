"""An in-memory catalogue repository with the SQL's semantics."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from catalogue.domain.history import Segment, fold
from catalogue.repository import CopiedPage, HeldPage, Key, PageState, PriceRow, ProductRow
from contracts.events.v1 import Bargain, StoreGroupChangedPayload, Substitute
from servicekit.sweeps import SeenPage


@dataclass(eq=False)
class FakeSweeps:
    """The sweeps and the prices they hold. A sweep's move is applied to its prices at once (their
    observed_at and current run's end), as the SQL reads them through their sweep: so how prices
    are held is not what the catalogue answers, and any two compare equal."""

    # (chain, store, page) -> (seen_at, shelves noted while it holds its page whole, else None)
    of: dict[tuple[str, str, int], tuple[datetime, int | None]] = field(default_factory=dict)
    # The page whose sweep holds a current price
    held: dict[Key, int] = field(default_factory=dict)
    # How many sweeps moved with no price written
    moved: int = 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FakeSweeps)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class InMemoryCatalogueRepository:
    """The catalogue's tables in dicts; each method does what its SQL does."""

    products: dict[tuple[str, str], ProductRow] = field(default_factory=dict)
    prices: dict[Key, PriceRow] = field(default_factory=dict)
    history: dict[Key, tuple[Segment, ...]] = field(default_factory=dict)
    group_versions: dict[tuple[str, str], int] = field(default_factory=dict)
    # (chain, store) -> (group, anchor)
    placements: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    substitute_sets: dict[tuple[str, str], datetime] = field(default_factory=dict)
    substitutes: dict[tuple[str, str], tuple[Substitute, ...]] = field(default_factory=dict)
    # bargain id -> (bargain, expired)
    bargains: dict[str, tuple[Bargain, bool]] = field(default_factory=dict)
    # (chain, store) -> the mark of a placed store's current prices; the sequence it is drawn from
    price_marks_of: dict[tuple[str, str], int] = field(default_factory=dict)
    marks_drawn: int = 0
    # How many stores' current shelves were read: what a kept read spares
    shelves_read: int = 0
    sweeping: "FakeSweeps" = field(default_factory=lambda: FakeSweeps())

    async def save_products(self, products: Sequence[ProductRow]) -> None:
        """Insert products or replace them with a newer description."""
        for p in products:
            held = self.products.get((p.chain, p.sku))
            if held is None or held.observed_at < p.observed_at:
                self.products[p.chain, p.sku] = p

    async def save_prices(self, prices: Sequence[PriceRow], *, held: Sequence[HeldPage] = ()) -> list[Key]:
        """Merge current prices, a newer one extending or ending the current run; return the others' keys.

        The rows of `held` pages written are held by their page's sweep, which moves to the page.
        """
        assert len({p.key for p in prices}) == len(prices), "one row per key, as ON CONFLICT requires"
        sweep_of: dict[Key, int] = {}
        for chain, page, alone in held:
            keys = [(chain, page.store_id, sku) for sku in page.skus]
            assert sweep_of.keys().isdisjoint(keys), "no product on two held pages"
            sweep_of.update(dict.fromkeys(keys, page.page))
            if alone:  # the SQL holds every row of its store given by it
                assert {p.key for p in prices if p[:2] == (chain, page.store_id)} <= set(keys), "alone"
        self._mark_changed((p.chain, p.store_id) for p in prices)
        late: list[Key] = []
        for p in prices:
            current = self.prices.get(p.key)
            if current is None and p.key in self.history:
                # Its last price ended (its anchor answered it): a price of its own starts a run.
                start = Segment(p.observed_at, p.observed_at, p.price_cents, p.was_price_cents)
                self.prices[p.key] = p
                self.history[p.key] = (*self.history[p.key], start)
            elif current is None or current.observed_at < p.observed_at:
                self.prices[p.key] = p
                self.history[p.key] = fold(
                    self.history.get(p.key, ()),
                    price_cents=p.price_cents,
                    was_price_cents=p.was_price_cents,
                    observed_at=p.observed_at,
                )
            else:
                late.append(p.key)
                continue
            self._hold(p.key, sweep_of.get(p.key))
        unwritten = set(late)
        for chain, page, _ in held:
            whole = not any((chain, page.store_id, sku) in unwritten for sku in page.skus)
            self.sweeping.of[chain, page.store_id, page.page] = (
                page.seen_at,
                page.shelves if whole else None,
            )
        return late

    async def page_states(self, pages: Sequence[tuple[str, SeenPage]]) -> list[PageState]:
        """Return, for each page of a chain, whether its store holds any current price, and its sweep."""
        stocked = {key[:2] for key in self.prices}
        states = []
        for chain, page in pages:
            sweep = self.sweeping.of.get((chain, page.store_id, page.page))
            seen_at, shelves = sweep if sweep is not None else (None, None)
            states.append(PageState((chain, page.store_id) in stocked, seen_at, shelves))
        return states

    async def move_sweeps(self, pages: Sequence[tuple[str, SeenPage]]) -> set[tuple[str, str, int]]:
        """Move the sweeps holding their pages whole, showing what the pages show, to the pages' moments."""
        moved: set[tuple[str, str, int]] = set()
        for chain, page in pages:
            sweep = self.sweeping.of.get((chain, page.store_id, page.page))
            if sweep is None or sweep[1] != page.shelves or sweep[0] > page.seen_at:
                continue
            keys = [(chain, page.store_id, sku) for sku in page.skus]
            assert all(self.sweeping.held.get(key) == page.page for key in keys), (
                "a sweep noted whole holds its page"
            )
            self.sweeping.of[chain, page.store_id, page.page] = (page.seen_at, sweep[1])
            for key in keys:
                self.prices[key] = self.prices[key]._replace(observed_at=page.seen_at)
                *ended, current = self.history[key]
                self.history[key] = (*ended, replace(current, ends_at=page.seen_at))
            moved.add((chain, page.store_id, page.page))
        self.sweeping.moved += len(moved)
        self._mark_changed((chain, store_id) for chain, store_id, _ in moved)
        return moved

    async def copy_prices(self, pages: Sequence[CopiedPage]) -> None:
        """Copy in the current prices of stores that hold none yet: each row starts its run."""
        stocked = {key[:2] for key in self.prices}
        for chain, page, rows, held in pages:
            assert (chain, page.store_id) not in stocked, "a store holding none before"
            assert not any((chain, page.store_id, sku) in self.prices for sku in page.skus), "pages apart"
            self._mark_changed([(chain, page.store_id)])
            for row in rows:
                price = PriceRow(*row[:15])  # type: ignore[arg-type]
                assert row[15] == price.observed_at, "a run starts at its sighting"
                assert row[16] == (page.page if held else None), "held rows name their sweep"
                start = Segment(
                    price.observed_at, price.observed_at, price.price_cents, price.was_price_cents
                )
                self.prices[price.key] = price
                self.history[price.key] = (*self.history.get(price.key, ()), start)
                self._hold(price.key, page.page if held else None)
            if held:
                self.sweeping.of[chain, page.store_id, page.page] = (page.seen_at, page.shelves)

    def _hold(self, key: Key, page: int | None) -> None:
        """Note the sweep holding a price just written (or none); one it leaves no longer holds its page."""
        before = self.sweeping.held.pop(key, None)
        if page is not None:
            self.sweeping.held[key] = page
        if before is not None and before != page:
            seen_at, _ = self.sweeping.of[key[0], key[1], before]
            self.sweeping.of[key[0], key[1], before] = (seen_at, None)

    async def histories(self, keys: Sequence[Key]) -> dict[Key, tuple[Segment, ...]]:
        """Return the history of these keys, the current run last."""
        return {key: self.history[key] for key in keys if key in self.history}

    async def save_segments(
        self,
        segments: Sequence[tuple[Key, Segment]],
        removed: Sequence[tuple[Key, datetime]],
        restarted: Sequence[tuple[Key, datetime]] = (),
    ) -> None:
        """Insert or update ended runs by key and start, delete those removed, move current runs' starts."""
        # The current run (the last) is kept with the price, apart from the runs that ended.
        current = {key: history[-1] for key, history in self.history.items()}
        runs = {key: {s.starts_at: s for s in history[:-1]} for key, history in self.history.items()}
        for key, at in removed:
            del runs[key][at]
        for key, segment in segments:
            runs.setdefault(key, {})[segment.starts_at] = segment
        for key, at in restarted:
            current[key] = replace(current[key], starts_at=at)
        self.history = {
            key: (*sorted(runs.get(key, {}).values(), key=lambda s: s.starts_at), last)
            for key, last in current.items()
        }

    async def anchors_of(self, stores: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Return the anchor of each of these stores that is a member of a group."""
        return {
            store: anchor
            for store in stores
            if (placed := self.placements.get(store)) is not None and (anchor := placed[1]) != store[1]
        }

    async def current_shelves(
        self, *, chain: str, store_ids: Sequence[str], skus: Sequence[str] | None = None
    ) -> dict[tuple[str, str], tuple[tuple[object, ...], datetime]]:
        """Return what stores of a chain currently show, by store and sku, of some skus or of all."""
        self.shelves_read += len(store_ids)
        return {
            (key[1], key[2]): (row.shelf, row.observed_at)
            for key, row in self.prices.items()
            if key[0] == chain and key[1] in store_ids and (skus is None or key[2] in skus)
        }

    async def drop_prices(self, keys: Sequence[Key], *, stores: Sequence[tuple[str, str]] = ()) -> None:
        """Delete current prices, their current runs with them, and whole stores' ones."""
        self._mark_changed([*stores, *(key[:2] for key in keys)])
        self.sweeping.of = {sweep: at for sweep, at in self.sweeping.of.items() if sweep[:2] not in stores}
        for key in [*keys, *(key for key in self.prices if key[:2] in stores)]:
            if key[:2] in stores:
                self.sweeping.held.pop(key, None)
            else:
                self._hold(key, None)
            del self.prices[key]
            if ended := self.history[key][:-1]:
                self.history[key] = ended
            else:
                del self.history[key]

    async def end_prices(self, keys: Sequence[Key]) -> None:
        """Remove current prices; their runs stay in history as ended runs."""
        self._mark_changed(key[:2] for key in keys)
        for key in keys:
            self._hold(key, None)
            del self.prices[key]

    async def price_marks(self, *, chain: str, store_ids: Sequence[str]) -> dict[str, int]:
        """Return the mark of placed stores' current prices: a new one whenever any of them changes."""
        return {s: self.price_marks_of[chain, s] for s in store_ids if (chain, s) in self.placements}

    def _mark_changed(self, stores: Iterable[tuple[str, str]]) -> None:
        # One mark per store, in order, as the SQL draws them.
        for store in sorted(set(stores)):
            if store in self.placements:
                self.price_marks_of[store] = self._draw_mark()

    def _draw_mark(self) -> int:
        self.marks_drawn += 1
        return self.marks_drawn

    async def apply_group(self, group: StoreGroupChangedPayload) -> bool:
        """Place a group's stores under its anchor unless a newer version is known."""
        key = (group.chain, group.group_id)
        if self.group_versions.get(key, 0) >= group.group_version:
            return False
        self.group_versions[key] = group.group_version
        stores = [] if group.reason == "dissolved" else [group.anchor_store_id, *group.member_store_ids]
        for (chain, store), (group_id, _) in list(self.placements.items()):
            if chain == group.chain and group_id == group.group_id and store not in stores:
                del self.placements[chain, store]
        for store in stores:
            if (group.chain, store) not in self.placements:  # inserted: the column's default draws one
                self.price_marks_of[group.chain, store] = self._draw_mark()
            self.placements[group.chain, store] = (group.group_id, group.anchor_store_id)
        return True

    async def replace_substitutes(
        self, *, chain: str, sku: str, occurred_at: datetime, substitutes: Sequence[Substitute]
    ) -> bool:
        """Replace a product's substitutes unless a newer set is known."""
        held = self.substitute_sets.get((chain, sku))
        if held is not None and held >= occurred_at:
            return False
        self.substitute_sets[chain, sku] = occurred_at
        self.substitutes[chain, sku] = tuple(substitutes)
        return True

    async def save_bargains(self, bargains: Sequence[tuple[Bargain, bool]]) -> None:
        """Record bargains with whether they expired; an older sighting changes nothing."""
        for bargain, expired in bargains:
            held = self.bargains.get(bargain.bargain_id)
            if (
                held is None
                or held[0].observed_at < bargain.observed_at
                or (held[0].observed_at == bargain.observed_at and expired)
            ):
                self.bargains[bargain.bargain_id] = (bargain, expired)
