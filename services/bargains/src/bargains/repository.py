"""The bargains service's write side: price history, placements, bargains, flags."""

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from itertools import chain as chain_of
from itertools import repeat
from operator import attrgetter
from typing import NamedTuple, Protocol

import asyncpg

from bargains.domain.answering import Run
from bargains.domain.bargains import median
from bargains.domain.history import NO_LABEL, Label, PriceMove, Segment, SoldBy, day_ranges, utc_day
from bargains.domain.listing import FlaggedPrice, Key, ListedBargain, OtherChains
from contracts.events.v1 import PriceColumns, StoreGroupChangedPayload
from servicekit import columns
from servicekit.copying import Kind, copy_rows
from servicekit.db import Connection
from servicekit.sweeps import SeenPage, plan


@dataclass(frozen=True, slots=True)
class Product:
    """A product of a chain."""

    chain: str
    sku: str


class Sweep(NamedTuple):
    """A store's page's sweep as stored (servicekit.sweeps), and what it knows of the runs it holds."""

    seen_at: datetime
    shelves: int | None
    """What the page showed (servicekit.sweeps.shelves_of) while the sweep holds the newest run of
    every product of the page, each showing it; None when it may not."""
    lone: bool
    """Whether each of those runs is its product's only one (never changed)."""


class PagesKnown(NamedTuple):
    """What a batch's stores' own pages may skip: their sweeps, and the stores with no history yet."""

    sweeps: dict[tuple[str, int], Sweep]
    """By (store, page): those that keep what their page showed."""
    unpriced: set[str]


Shown = tuple[int, bool]
"""What a page swept whole showed (its shelves) and whether each of its runs is its product's only one."""


# The bargains table's columns are named like the fields of a listed bargain.
BARGAIN_FIELDS = tuple(field.name for field in fields(ListedBargain))
BARGAIN_COLUMNS = ", ".join(BARGAIN_FIELDS)
_starts = attrgetter("starts_at")


def bargain_from(row: asyncpg.Record) -> ListedBargain:
    """Build a listed bargain from a row of BARGAIN_COLUMNS."""
    return ListedBargain(
        bargain_id=row["bargain_id"],
        chain=row["chain"],
        store_id=row["store_id"],
        sku=row["sku"],
        category=row["category"],
        kind=row["kind"],
        price_cents=row["price_cents"],
        reference_cents=row["reference_cents"],
        score=row["score"],
        reason=row["reason"],
        observed_at=row["observed_at"],
    )


class BargainsRepository(Protocol):
    """What the service layer reads and writes, inside one transaction."""

    async def histories(self, *, chain: str, keys: Sequence[Key]) -> dict[Key, tuple[Segment, ...]]:
        """Return the price history of (store, sku) pairs of a chain, oldest segment first."""
        ...

    async def store_histories(
        self, *, chain: str, store_ids: Sequence[str]
    ) -> dict[Key, tuple[Segment, ...]]:
        """Return the price history of every product of some stores of a chain, oldest segment first."""
        ...

    async def newest_runs(self, *, chain: str, keys: Sequence[Key]) -> dict[Key, Run]:
        """Return the newest run of (store, sku) pairs of a chain (pairs without a history omitted)."""
        ...

    async def history_marks(self, *, chain: str, store_ids: Sequence[str]) -> dict[str, int]:
        """Return the mark of placed stores' histories: a new one whenever a history of theirs changes."""
        ...

    async def drop_histories(self, *, chain: str, keys: Sequence[Key], stores: Sequence[str] = ()) -> None:
        """Delete the whole history of (store, sku) pairs of a chain, and of whole stores."""
        ...

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

        `pages`: the batch's pages seen whole, whose runs a sweep may carry (servicekit.sweeps);
        `shown`: by (store, page), what those a sweep may keep for the page seen again unchanged
        showed (`Sweep`): each a store's own page, sharing no product with the store's other pages
        in the batch; `copied`: the first pages of stores with no history yet (a store's several
        pages share no product), each product's first run held by its page's sweep.
        """
        ...

    async def pages_known(self, *, chain: str, store_ids: Sequence[str]) -> PagesKnown:
        """Return the sweeps of some stores of a chain that keep what their page showed, and which of
        the stores have no history yet."""
        ...

    async def move_sweeps(self, *, chain: str, moved: Mapping[tuple[str, int], datetime]) -> None:
        """Move sweeps, by (store, page), to when their page was seen again unchanged."""
        ...

    async def move_current_prices(self, *, chain: str, moves: Sequence[PriceMove]) -> None:
        """Add each move (+1 or -1) to the stores counted at a product's price on a day."""
        ...

    async def current_medians(
        self, *, chain: str, skus: Sequence[str], fresh_after: datetime
    ) -> dict[str, float]:
        """Return each product's median price over the chain's stores seen since a day."""
        ...

    async def price_bounds(
        self, *, chain: str, skus: Sequence[str], fresh_after: datetime
    ) -> dict[str, tuple[int, int]]:
        """Return for each product a lowest and highest price holding every price counted since a day.

        The bounds may be wider than the prices counted now, never narrower: they only tell
        which prices need a median.
        """
        ...

    async def other_chain_prices(
        self, *, chain: str, skus: Sequence[str], fresh_after: datetime
    ) -> dict[str, OtherChains]:
        """Return the same products' current prices at other chains (same barcode, L1/L2)."""
        ...

    async def save_product(self, *, chain: str, sku: str, barcode: str | None) -> None:
        """Remember a product's barcode (a missing one keeps the barcode known)."""
        ...

    async def save_sold_by(self, *, chain: str, sold_by: Mapping[str, SoldBy]) -> None:
        """Remember how each product of a chain was last sold: each or by the kilogram."""
        ...

    async def same_barcode(self, *, chain: str, sku: str) -> list[Product]:
        """Return the product and the products at any chain that share its barcode."""
        ...

    async def replace_equivalents(self, *, chain: str, sku: str, others: Sequence[Product]) -> None:
        """Replace a product's identical and near-identical products at other chains."""
        ...

    async def stores_pricing(self, *, chain: str, sku: str) -> list[str]:
        """Return the stores (not members of a group) with a price history of a product."""
        ...

    async def anchors_of(self, *, chain: str, store_ids: Sequence[str]) -> dict[str, str]:
        """Return the store that answers for each of some stores: its anchor, or itself."""
        ...

    async def apply_group(self, *, group: StoreGroupChangedPayload) -> list[str]:
        """Record a group's membership unless a newer version is known; return its members."""
        ...

    async def bargains_of(
        self, *, chain: str, store_ids: Sequence[str], skus: Sequence[str] | None
    ) -> list[ListedBargain]:
        """Return the listed bargains of stores (of some products, or all)."""
        ...

    async def save_bargains(self, *, bargains: Sequence[ListedBargain]) -> None:
        """Insert or update bargains; an unknown category keeps the one listed."""
        ...

    async def delete_bargains(self, *, bargain_ids: Sequence[str]) -> None:
        """Remove bargains that no longer apply."""
        ...

    async def replace_flags(
        self, *, chain: str, products: Mapping[str, Collection[str]], flags: Sequence[FlaggedPrice]
    ) -> None:
        """Replace the flags of some products of some stores (skus by store) with new ones."""
        ...

    async def tidy_price_counts(self, *, before: date) -> int:
        """Delete empty counts, and counts and price ranges of days before `before`; return how many."""
        ...

    async def stale_bargains(self, *, before: datetime) -> list[ListedBargain]:
        """Return bargains resting on prices observed before a horizon."""
        ...


_HISTORY_COLUMNS = """h.store_id, h.sku, h.price_cents, h.was_price_cents, h.starts_at, h.ends_at,
    h.member_price_cents, h.multibuy_quantity, h.multibuy_total_cents, h.sold_by, h.sweep"""
SEGMENT_COLUMNS = (
    "chain",
    "store_id",
    "sku",
    "price_cents",
    "was_price_cents",
    "starts_at",
    "ends_at",
    "member_price_cents",
    "multibuy_quantity",
    "multibuy_total_cents",
    "sold_by",
    "sweep",
)
SEGMENT_KINDS: tuple[Kind, ...] = (
    "text", "text", "text", "int4", "int4", "timestamptz", "timestamptz", "int4", "int4", "int4", "text",
    "int8",
)  # fmt: skip
# The planner takes the unnested ends for a few rows and probes the primary key for each; with
# table statistics it sometimes hashes the whole history instead (for 25,000 ends of a 1.2 M-row
# history, 8.0 us a row as planned against 6.7 probed): so it is told not to, for this statement.
_PROBE_ONLY = "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
_PLAN_FREELY = "RESET enable_hashjoin; RESET enable_mergejoin"  # back to the server's own settings


class PostgresBargainsRepository:
    """Raw SQL over one connection; the caller owns the transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # The pages holding the newest runs this transaction read, by chain: save_segments lets go
        # of those a new run follows, and skips those whose page is seen again unchanged.
        self._held: dict[str, dict[Key, int]] = {}

    async def _swept(self, chain: str, rows: Sequence[asyncpg.Record]) -> dict[tuple[str, int], datetime]:
        """Return when the sweeps holding any of these rows (store first, page last) were last seen.

        Read apart and applied here: joined in the history's read, the planner without fresh
        statistics took twice the time of the read alone.
        """
        stores = {r[0] for r in rows if r[-1] is not None}
        if not stores:
            return {}
        found = await self.conn.fetch(
            """SELECT store_id, page, seen_at FROM sweeps
               WHERE chain = $1 AND store_id = ANY($2::text::text[])""",
            chain,
            columns.texts(sorted(stores)),
        )
        return {(r[0], r[1]): r[2] for r in found}

    async def histories(self, *, chain: str, keys: Sequence[Key]) -> dict[Key, tuple[Segment, ...]]:
        """Return the price history of (store, sku) pairs of a chain, oldest segment first."""
        stores = {store_id for store_id, _ in keys}
        skus = {sku for _, sku in keys}
        wanted: set[Key] | None = None
        if len(stores) * len(skus) <= 2 * len(keys):
            # A batch is mostly a few stores' pages, or many stores' same products: its stores by
            # its products then hold few pairs it lacks, and one scan of the primary key walks
            # them in order, skipping between the arrays' values. That costs a third of probing
            # the key once per pair (30 against 84 ms for 25,000 pairs, half of them new).
            rows = await self.conn.fetch(
                f"""SELECT {_HISTORY_COLUMNS} FROM history h
                    WHERE h.chain = $1 AND h.store_id = ANY($2::text::text[])
                      AND h.sku = ANY($3::text::text[])""",
                chain,
                columns.texts(sorted(stores)),
                columns.texts(sorted(skus)),
            )
            wanted = set(keys) if len(stores) * len(skus) > len(keys) else None
        else:
            rows = await self.conn.fetch(
                f"""SELECT {_HISTORY_COLUMNS}
                    FROM unnest($2::text::text[], $3::text::text[]) AS k(store_id, sku)
                    JOIN history h ON h.chain = $1 AND h.store_id = k.store_id AND h.sku = k.sku""",
                chain,
                columns.texts([store_id for store_id, _ in keys]),
                columns.texts([sku for _, sku in keys]),
            )
        return _histories_of(rows, wanted, await self._swept(chain, rows), self._held.setdefault(chain, {}))

    async def store_histories(
        self, *, chain: str, store_ids: Sequence[str]
    ) -> dict[Key, tuple[Segment, ...]]:
        """Return the price history of every product of some stores of a chain, oldest segment first."""
        rows = await self.conn.fetch(
            f"SELECT {_HISTORY_COLUMNS} FROM history h WHERE h.chain = $1 AND h.store_id = ANY($2::text[])",
            chain,
            list(store_ids),
        )
        return _histories_of(rows, None, await self._swept(chain, rows), self._held.setdefault(chain, {}))

    async def newest_runs(self, *, chain: str, keys: Sequence[Key]) -> dict[Key, Run]:
        """Return the newest run of (store, sku) pairs of a chain (pairs without a history omitted).

        A batch asks for its members' anchors' products: their stores by its products, in one scan
        of the key; each pair's newest run is kept as a tuple, with no object per row read.
        """
        wanted = set(keys)
        rows = await self.conn.fetch(
            """SELECT store_id, sku, starts_at, price_cents, was_price_cents, ends_at,
                      member_price_cents, multibuy_quantity, multibuy_total_cents, sold_by, sweep
               FROM history
               WHERE chain = $1 AND store_id = ANY($2::text::text[]) AND sku = ANY($3::text::text[])""",
            chain,
            columns.texts(sorted({store_id for store_id, _ in keys})),
            columns.texts(sorted({sku for _, sku in keys})),
        )
        newest: dict[Key, asyncpg.Record] = {}
        for r in rows:
            key = (r[0], r[1])
            if key in wanted and ((held := newest.get(key)) is None or held[2] < r[2]):
                newest[key] = r
        swept = await self._swept(chain, list(newest.values()))
        return {
            key: Run(r[3], r[4], _label(r[6], r[7], r[8], r[9]), _ends(r[5], swept.get((r[0], r[10]))))
            for key, r in newest.items()
        }

    async def history_marks(self, *, chain: str, store_ids: Sequence[str]) -> dict[str, int]:
        """Return the mark of placed stores' histories: a new one whenever a history of theirs changes."""
        rows = await self.conn.fetch(
            "SELECT store_id, history_mark FROM placements WHERE chain = $1 AND store_id = ANY($2::text[])",
            chain,
            list(store_ids),
        )
        return {r[0]: r[1] for r in rows}

    async def _mark_changed(self, chain: str, store_ids: Iterable[str]) -> None:
        """Draw new marks for stores whose history this transaction changes."""
        await self.conn.execute(
            """UPDATE placements SET history_mark = nextval('history_marks')
               WHERE chain = $1 AND store_id = ANY($2::text::text[])""",
            chain,
            columns.texts(sorted(set(store_ids))),
        )

    async def drop_histories(self, *, chain: str, keys: Sequence[Key], stores: Sequence[str] = ()) -> None:
        """Delete the whole history of (store, sku) pairs of a chain, and of whole stores."""
        if stores or keys:
            await self._mark_changed(chain, [*stores, *(store_id for store_id, _ in keys)])
        if stores:
            # A range of the key each: 11 against 110 ms for 49 stores' 24,500 rows as pairs.
            await self.conn.execute(
                "DELETE FROM history WHERE chain = $1 AND store_id = ANY($2::text[])", chain, list(stores)
            )
            await self.conn.execute(
                "DELETE FROM sweeps WHERE chain = $1 AND store_id = ANY($2::text[])", chain, list(stores)
            )
        if not keys:
            return
        # A sweep holding a run deleted no longer holds its whole page.
        await self.conn.execute(
            """WITH gone AS (
                   DELETE FROM history h USING unnest($2::text::text[], $3::text::text[]) AS k(store_id, sku)
                   WHERE h.chain = $1 AND h.store_id = k.store_id AND h.sku = k.sku
                   RETURNING h.store_id, h.sweep)
               UPDATE sweeps s SET shelves = NULL FROM gone
               WHERE s.chain = $1 AND s.store_id = gone.store_id AND s.page = gone.sweep""",
            chain,
            columns.texts([store_id for store_id, _ in keys]),
            columns.texts([sku for _, sku in keys]),
        )

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

        New ones are copied in plainly: a history read in the same transaction holds every segment
        of their keys, and none starts when they do. A binary COPY takes half the CPU of an INSERT
        from unnested columns (2.6 against 5.4 us a row, client and server). An extended segment
        only moves its end: an UPDATE by primary key spares the upsert its attempted insert (6.7
        against 8.7 us a row). A page seen whole (`pages`) whose runs a sweep holds, all extended
        to the page's moment, moves its sweep instead (servicekit.sweeps). A sweep stored keeps
        what its page showed (`shown`, `Sweep`); one that lets go of a run forgets it. A store's
        first page (`copied`) is copied in from its columns: a run per price, each its product's
        only one, its sweep stored as a page folded whole would store it.
        """
        held = self._held.setdefault(chain, {})
        sweeping = plan(
            pages,
            moved={key: s[-1].ends_at for key, s in extended.items() if key not in started},
            renewed={key: s[-1].ends_at for key, s in started.items()},
            held=held,
        )
        new = [
            (chain, store_id, sku, s.price_cents, s.was_price_cents, s.starts_at, s.ends_at,
             s.label.member_price_cents, s.label.multibuy_quantity, s.label.multibuy_total_cents,
             s.label.sold_by, sweeping.held.get((store_id, sku)) if s is segments[-1] else None)
            for (store_id, sku), segments in started.items()
            for s in segments
        ]  # fmt: skip
        ends = [
            (key[0], key[1], s.starts_at, s.ends_at, None if key in started else sweeping.held.get(key))
            for key, segments in extended.items()
            if key not in sweeping.skipped
            for s in segments
        ]
        if new or extended or copied:
            await self._mark_changed(
                chain,
                [*(store_id for store_id, _ in (*started, *extended)), *(p.store_id for p, _ in copied)],
            )
        # A sweep that lets go of a run, and is not stored again here, no longer holds its whole page.
        released = {
            (key[0], page)
            for key in (*started, *extended)
            if (page := held.get(key)) is not None
            and key not in sweeping.skipped
            and sweeping.held.get(key) != page
        }.difference(sweeping.sweeps)
        if released:
            await self.conn.execute(
                """UPDATE sweeps s SET shelves = NULL
                   FROM unnest($2::text::text[], $3::bigint[]) AS r(store_id, page)
                   WHERE s.chain = $1 AND s.store_id = r.store_id AND s.page = r.page""",
                chain,
                columns.texts([store_id for store_id, _ in released]),
                [page for _, page in released],
            )
        # A held run that a new one follows is held no more: the sweep's moment, before it moves,
        # becomes its own end.
        if let_go := [key for key in started if key in held]:
            await self.conn.execute(
                """UPDATE history h SET ends_at = GREATEST(h.ends_at, s.seen_at), sweep = NULL
                   FROM unnest($2::text::text[], $3::text::text[]) AS k(store_id, sku), sweeps s
                   WHERE h.chain = $1 AND h.store_id = k.store_id AND h.sku = k.sku
                     AND s.chain = h.chain AND s.store_id = h.store_id AND s.page = h.sweep""",
                chain,
                columns.texts([store_id for store_id, _ in let_go]),
                columns.texts([sku for _, sku in let_go]),
            )
        # What holds each key's newest run now, for a later save in this transaction.
        for key in started.keys() | extended.keys() - sweeping.skipped:
            held.pop(key, None)
        held.update(sweeping.held)
        sweeps = dict(sweeping.sweeps)
        kept = [(shown or {}).get(sweep, (None, False)) for sweep in sweeps]
        for first, _ in copied:
            held.update(zip(zip(repeat(first.store_id), first.skus), repeat(first.page)))
            sweeps[first.store_id, first.page] = first.seen_at
            kept.append((first.shelves, True))
        if sweeps:
            # A month the archive may restore could add runs before those held: none is lone then.
            await self.conn.execute(
                """INSERT INTO sweeps (chain, store_id, page, seen_at, shelves, lone)
                   SELECT $1, s.store_id, s.page, s.seen_at, s.shelves,
                          s.lone AND NOT EXISTS (SELECT FROM archived_months a WHERE a.chain = $1)
                   FROM unnest($2::text::text[], $3::bigint[], $4::text::timestamptz[], $5::bigint[],
                               $6::bool[]) AS s(store_id, page, seen_at, shelves, lone)
                   ORDER BY 1, 2
                   ON CONFLICT (chain, store_id, page) DO UPDATE
                   SET seen_at = EXCLUDED.seen_at, shelves = EXCLUDED.shelves, lone = EXCLUDED.lone""",
                chain,
                columns.texts([store_id for store_id, _ in sweeps]),
                [page for _, page in sweeps],
                columns.instants(list(sweeps.values())),
                [shelves for shelves, _ in kept],
                [lone for _, lone in kept],
            )
        if new or copied:
            records = chain_of(new, *(_first_runs(chain, page, prices) for page, prices in copied))
            await copy_rows(
                self.conn, "history", columns=SEGMENT_COLUMNS, kinds=SEGMENT_KINDS, records=records
            )
        if not ends:
            return
        await self.conn.execute(_PROBE_ONLY)
        await self.conn.execute(
            """UPDATE history h SET ends_at = e.ends_at, sweep = e.sweep
               FROM unnest($2::text::text[], $3::text::text[], $4::text::timestamptz[],
                           $5::text::timestamptz[], $6::bigint[])
                    AS e(store_id, sku, starts_at, ends_at, sweep)
               WHERE h.chain = $1 AND h.store_id = e.store_id AND h.sku = e.sku
                 AND h.starts_at = e.starts_at""",
            chain,
            columns.texts([store_id for store_id, _, _, _, _ in ends]),
            columns.texts([sku for _, sku, _, _, _ in ends]),
            columns.instants([starts_at for _, _, starts_at, _, _ in ends]),
            columns.instants([ends_at for _, _, _, ends_at, _ in ends]),
            [sweep for _, _, _, _, sweep in ends],
        )
        await self.conn.execute(_PLAN_FREELY)

    async def pages_known(self, *, chain: str, store_ids: Sequence[str]) -> PagesKnown:
        """Return the sweeps of some stores of a chain that keep what their page showed, and which of
        the stores have no history yet (a probe of the history's key each)."""
        rows = await self.conn.fetch(
            """SELECT s.store_id, w.page, w.seen_at, w.shelves, w.lone,
                      NOT EXISTS (SELECT FROM history h WHERE h.chain = $1 AND h.store_id = s.store_id)
               FROM unnest($2::text::text[]) AS s(store_id)
               LEFT JOIN sweeps w ON w.chain = $1 AND w.store_id = s.store_id AND w.shelves IS NOT NULL""",
            chain,
            columns.texts(store_ids),
        )
        return PagesKnown(
            {(r[0], r[1]): Sweep(r[2], r[3], r[4]) for r in rows if r[1] is not None},
            {r[0] for r in rows if r[5]},
        )

    async def move_sweeps(self, *, chain: str, moved: Mapping[tuple[str, int], datetime]) -> None:
        """Move sweeps, by (store, page), to when their page was seen again unchanged.

        Their runs' last sightings move with them: the stores' history marks are drawn anew.
        """
        if not moved:
            return
        await self._mark_changed(chain, [store_id for store_id, _ in moved])
        # Taken in one order, as the upsert of save_segments takes them: no deadlock between batches.
        ordered = sorted(moved.items())
        await self.conn.execute(
            """UPDATE sweeps s SET seen_at = m.seen_at
               FROM unnest($2::text::text[], $3::bigint[], $4::text::timestamptz[])
                    AS m(store_id, page, seen_at)
               WHERE s.chain = $1 AND s.store_id = m.store_id AND s.page = m.page""",
            chain,
            columns.texts([store_id for (store_id, _), _ in ordered]),
            [page for (_, page), _ in ordered],
            columns.instants([seen_at for _, seen_at in ordered]),
        )

    async def move_current_prices(self, *, chain: str, moves: Sequence[PriceMove]) -> None:
        """Add each move (+1 or -1) to the stores counted at a product's price on a day."""
        if not moves:
            return
        # Rows taken in one order (ORDER BY) lock in one order, so concurrent batches cannot deadlock.
        await self.conn.execute(
            """INSERT INTO price_counts (chain, sku, seen_on, price_cents, stores)
               SELECT $1, sku, seen_on, price_cents, sum(delta)
               FROM unnest($2::text::text[], $3::text::date[], $4::text::int[], $5::text::int[])
                    AS m(sku, seen_on, price_cents, delta)
               GROUP BY sku, seen_on, price_cents ORDER BY sku, seen_on, price_cents
               ON CONFLICT (chain, sku, seen_on, price_cents)
               DO UPDATE SET stores = price_counts.stores + EXCLUDED.stores""",
            chain,
            columns.texts([m.sku for m in moves]),
            columns.days([m.seen_on for m in moves]),
            columns.ints([m.price_cents for m in moves]),
            columns.ints([m.delta for m in moves]),
        )
        # A range only widens: a store leaving a price never narrows it (and costs no statement).
        ranges = await self._widening(chain, day_ranges(moves))
        if not ranges:
            return
        await self.conn.execute(
            """INSERT INTO price_ranges (chain, sku, seen_on, lowest, highest)
               SELECT $1, sku, seen_on, lowest, highest
               FROM unnest($2::text::text[], $3::text::date[], $4::text::int[], $5::text::int[])
                    AS r(sku, seen_on, lowest, highest)
               ORDER BY sku, seen_on
               ON CONFLICT (chain, sku, seen_on) DO UPDATE
               SET lowest = least(price_ranges.lowest, EXCLUDED.lowest),
                   highest = greatest(price_ranges.highest, EXCLUDED.highest)
               -- Most prices fall inside their day's range: no new row version for them.
               WHERE EXCLUDED.lowest < price_ranges.lowest OR EXCLUDED.highest > price_ranges.highest""",
            chain,
            columns.texts([sku for sku, _ in ranges]),
            columns.days([day for _, day in ranges]),
            columns.ints([lowest for lowest, _ in ranges.values()]),
            columns.ints([highest for _, highest in ranges.values()]),
        )

    async def _widening(
        self, chain: str, ranges: dict[tuple[str, date], tuple[int, int]]
    ) -> dict[tuple[str, date], tuple[int, int]]:
        """Return the ranges that widen what their product's day holds, or that it lacks.

        Most prices fall inside their day's range. Reading the ranges first costs a scan; an
        upsert that changes nothing still locks each row it meets (for a one-event batch, 1.7 ms
        against 1.2 read first).
        """
        if not ranges:
            return {}
        rows = await self.conn.fetch(
            """SELECT sku, seen_on, lowest, highest FROM price_ranges
               WHERE chain = $1 AND sku = ANY($2::text::text[]) AND seen_on = ANY($3::text::date[])""",
            chain,
            columns.texts(sorted({sku for sku, _ in ranges})),
            columns.days(sorted({day for _, day in ranges})),
        )
        held = {(r["sku"], r["seen_on"]): (r["lowest"], r["highest"]) for r in rows}
        # A stale read only shows a narrower range (none narrows): an upsert too many, never too few.
        return {
            key: (lowest, highest)
            for key, (lowest, highest) in ranges.items()
            if (have := held.get(key)) is None or lowest < have[0] or highest > have[1]
        }

    async def current_medians(
        self, *, chain: str, skus: Sequence[str], fresh_after: datetime
    ) -> dict[str, float]:
        """Return each product's median price over the chain's stores seen since a day.

        The database sums the counted prices into one row per product (its prices in order,
        with how many stores charge each), so a product priced differently at many stores
        costs one row here, not one per price.
        """
        if not skus:
            return {}
        rows = await self.conn.fetch(
            """SELECT sku, array_agg(price_cents ORDER BY price_cents) AS prices,
                      array_agg(stores ORDER BY price_cents) AS stores
               FROM (SELECT sku, price_cents, sum(stores)::int AS stores FROM price_counts
                     WHERE chain = $1 AND sku = ANY($2::text[]) AND seen_on >= $3 AND stores > 0
                     GROUP BY sku, price_cents) AS counted
               GROUP BY sku""",
            chain,
            list(skus),
            utc_day(fresh_after),
        )
        return {r["sku"]: median(dict(zip(r["prices"], r["stores"], strict=True))) for r in rows}

    async def price_bounds(
        self, *, chain: str, skus: Sequence[str], fresh_after: datetime
    ) -> dict[str, tuple[int, int]]:
        """Return for each product a lowest and highest price holding every price counted since a day.

        From each day's price range: one row per product and day. Walking price_counts for each
        day's lowest and highest instead took 5 index probes per product, each a cache miss once
        stores price on their own (21 ms for 500 products with 400 stores' own prices, against 6 ms
        with a chain's 5 price points).
        """
        if not skus:
            return {}
        rows = await self.conn.fetch(
            """SELECT sku, min(lowest) AS lowest, max(highest) AS highest FROM price_ranges
               WHERE chain = $1 AND sku = ANY($2::text::text[]) AND seen_on >= $3
               GROUP BY sku""",
            chain,
            columns.texts(skus),
            utc_day(fresh_after),
        )
        return {r["sku"]: (r["lowest"], r["highest"]) for r in rows}

    async def other_chain_prices(
        self, *, chain: str, skus: Sequence[str], fresh_after: datetime
    ) -> dict[str, OtherChains]:
        """Return the same products' current prices at other chains (same barcode, L1/L2), sold alike."""
        if not skus:
            return {}
        # A price per kilogram is compared with prices per kilogram only (unknown selling: each).
        rows = await self.conn.fetch(
            """WITH mine AS (SELECT sku, barcode FROM products
                             WHERE chain = $1 AND sku = ANY($2::text[]) AND barcode IS NOT NULL),
                    links AS (SELECT m.sku, p.chain AS other_chain, p.sku AS other_sku
                              FROM mine m JOIN products p ON p.barcode = m.barcode AND p.chain <> $1
                              UNION
                              SELECT sku, other_chain, other_sku FROM equivalents
                              WHERE chain = $1 AND sku = ANY($2::text[]))
               SELECT l.sku, c.chain, c.price_cents, sum(c.stores)::int AS stores
               FROM links l JOIN price_counts c ON c.chain = l.other_chain AND c.sku = l.other_sku
               LEFT JOIN products me ON me.chain = $1 AND me.sku = l.sku
               LEFT JOIN products them ON them.chain = l.other_chain AND them.sku = l.other_sku
               WHERE c.seen_on >= $3 AND c.stores > 0
                 AND coalesce(me.sold_by, 'each') = coalesce(them.sold_by, 'each')
               GROUP BY l.sku, c.chain, c.price_cents""",
            chain,
            list(skus),
            utc_day(fresh_after),
        )
        counts: dict[str, dict[int, int]] = {}
        chains: dict[str, set[str]] = {}
        for r in rows:
            by_price = counts.setdefault(r["sku"], {})
            by_price[r["price_cents"]] = by_price.get(r["price_cents"], 0) + r["stores"]
            chains.setdefault(r["sku"], set()).add(r["chain"])
        return {sku: OtherChains(by_price, len(chains[sku])) for sku, by_price in counts.items()}

    async def save_product(self, *, chain: str, sku: str, barcode: str | None) -> None:
        """Remember a product's barcode (a missing one keeps the barcode known)."""
        await self.conn.execute(
            """INSERT INTO products (chain, sku, barcode) VALUES ($1, $2, $3)
               ON CONFLICT (chain, sku) DO UPDATE
               SET barcode = coalesce(EXCLUDED.barcode, products.barcode)""",
            chain,
            sku,
            barcode,
        )

    async def save_sold_by(self, *, chain: str, sold_by: Mapping[str, SoldBy]) -> None:
        """Remember how each product of a chain was last sold: each or by the kilogram."""
        if not sold_by:
            return
        # Products are nearly always sold as before: read first, for an upsert that changes nothing
        # still locks each row it meets (for a one-event batch, 1.3 ms against 0.7 read first).
        known = await self.conn.fetch(
            "SELECT sku, sold_by FROM products WHERE chain = $1 AND sku = ANY($2::text::text[])",
            chain,
            columns.texts(list(sold_by)),
        )
        held = {r["sku"]: r["sold_by"] for r in known}
        # Rows taken in one order lock in one order, so concurrent batches cannot deadlock.
        skus = sorted(sku for sku, way in sold_by.items() if sku not in held or held[sku] != way)
        if not skus:
            return
        await self.conn.execute(
            """INSERT INTO products (chain, sku, sold_by)
               SELECT $1, s.sku, s.sold_by FROM unnest($2::text::text[], $3::text::text[]) AS s(sku, sold_by)
               ON CONFLICT (chain, sku) DO UPDATE SET sold_by = EXCLUDED.sold_by
               WHERE products.sold_by IS DISTINCT FROM EXCLUDED.sold_by""",
            chain,
            columns.texts(skus),
            columns.texts([sold_by[sku] for sku in skus]),
        )

    async def same_barcode(self, *, chain: str, sku: str) -> list[Product]:
        """Return the product and the products at any chain that share its barcode."""
        rows = await self.conn.fetch(
            """SELECT p.chain, p.sku FROM products p
               JOIN products m ON m.barcode = p.barcode WHERE m.chain = $1 AND m.sku = $2""",
            chain,
            sku,
        )
        return [Product(r["chain"], r["sku"]) for r in rows] or [Product(chain, sku)]

    async def replace_equivalents(self, *, chain: str, sku: str, others: Sequence[Product]) -> None:
        """Replace a product's identical and near-identical products at other chains."""
        await self.conn.execute("DELETE FROM equivalents WHERE chain = $1 AND sku = $2", chain, sku)
        await self.conn.executemany(
            "INSERT INTO equivalents (chain, sku, other_chain, other_sku) VALUES ($1, $2, $3, $4)",
            [(chain, sku, other.chain, other.sku) for other in others],
        )

    async def stores_pricing(self, *, chain: str, sku: str) -> list[str]:
        """Return the stores (not members of a group) with a price history of a product."""
        rows = await self.conn.fetch(
            """SELECT DISTINCT h.store_id FROM history h
               LEFT JOIN placements p ON p.chain = h.chain AND p.store_id = h.store_id
               WHERE h.chain = $1 AND h.sku = $2
                 AND (p.anchor_store_id IS NULL OR p.anchor_store_id = h.store_id)""",
            chain,
            sku,
        )
        return [r["store_id"] for r in rows]

    async def anchors_of(self, *, chain: str, store_ids: Sequence[str]) -> dict[str, str]:
        """Return the store that answers for each of some stores: its anchor, or itself."""
        rows = await self.conn.fetch(
            """SELECT store_id, anchor_store_id FROM placements
               WHERE chain = $1 AND store_id = ANY($2::text[])""",
            chain,
            list(store_ids),
        )
        placed = {r["store_id"]: r["anchor_store_id"] for r in rows}
        return {store_id: placed.get(store_id) or store_id for store_id in store_ids}

    async def apply_group(self, *, group: StoreGroupChangedPayload) -> list[str]:
        """Record a group's membership unless a newer version is known; return its members."""
        newest = await self.conn.fetchval(
            "SELECT max(group_version) FROM placements WHERE group_id = $1", group.group_id
        )
        if newest is not None and newest >= group.group_version:
            return []
        await self.conn.execute("DELETE FROM placements WHERE group_id = $1", group.group_id)
        if group.reason == "dissolved":
            return []
        stores = [group.anchor_store_id, *group.member_store_ids]
        await self.conn.execute(
            """INSERT INTO placements (chain, store_id, group_id, group_version, anchor_store_id)
               SELECT $1, s, $2, $3, $4 FROM unnest($5::text[]) AS s
               ON CONFLICT (chain, store_id) DO UPDATE
               SET group_id = EXCLUDED.group_id, group_version = EXCLUDED.group_version,
                   anchor_store_id = EXCLUDED.anchor_store_id""",
            group.chain,
            group.group_id,
            group.group_version,
            group.anchor_store_id,
            stores,
        )
        return list(group.member_store_ids)

    async def bargains_of(
        self, *, chain: str, store_ids: Sequence[str], skus: Sequence[str] | None
    ) -> list[ListedBargain]:
        """Return the listed bargains of stores (of some products, or all)."""
        rows = await self.conn.fetch(
            f"""SELECT {BARGAIN_COLUMNS} FROM bargains
               WHERE chain = $1 AND store_id = ANY($2::text[])
                 AND ($3::text[] IS NULL OR sku = ANY($3::text[]))""",
            chain,
            list(store_ids),
            None if skus is None else list(skus),
        )
        return [bargain_from(r) for r in rows]

    async def save_bargains(self, *, bargains: Sequence[ListedBargain]) -> None:
        """Insert or update bargains; an unknown category keeps the one listed."""
        if not bargains:
            return
        await self.conn.execute(
            f"""INSERT INTO bargains ({BARGAIN_COLUMNS})
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                    $6::text[], $7::int[], $8::int[], $9::float8[], $10::text[],
                                    $11::timestamptz[])
               ON CONFLICT (bargain_id) DO UPDATE
               SET price_cents = EXCLUDED.price_cents, reference_cents = EXCLUDED.reference_cents,
                   score = EXCLUDED.score, reason = EXCLUDED.reason, observed_at = EXCLUDED.observed_at,
                   category = coalesce(EXCLUDED.category, bargains.category)""",
            *([getattr(b, name) for b in bargains] for name in BARGAIN_FIELDS),
        )

    async def delete_bargains(self, *, bargain_ids: Sequence[str]) -> None:
        """Remove bargains that no longer apply."""
        if not bargain_ids:
            return
        await self.conn.execute("DELETE FROM bargains WHERE bargain_id = ANY($1::text[])", list(bargain_ids))

    async def replace_flags(
        self, *, chain: str, products: Mapping[str, Collection[str]], flags: Sequence[FlaggedPrice]
    ) -> None:
        """Replace the flags of some products of some stores (skus by store) with new ones.

        The stores' flags are read (a range of the primary key per store: few rows, most prices
        have none) and only those that differ are written: deleting by every pair probed the
        index once per price of the batch.
        """
        held = await self.conn.fetch(
            """SELECT store_id, sku, kind, reason, observed_at FROM flags
               WHERE chain = $1 AND store_id = ANY($2::text[])""",
            chain,
            sorted(products),
        )
        known = {
            (r["store_id"], r["sku"], r["kind"]): (r["reason"], r["observed_at"])
            for r in held
            if r["sku"] in products[r["store_id"]]
        }
        wanted = {(f.store_id, f.sku, f.kind) for f in flags}
        gone = [key for key in known if key not in wanted]
        if gone:
            await self.conn.execute(
                """DELETE FROM flags f
                   USING unnest($2::text[], $3::text[], $4::text[]) AS k(store_id, sku, kind)
                   WHERE f.chain = $1 AND f.store_id = k.store_id AND f.sku = k.sku AND f.kind = k.kind""",
                chain,
                *(list(column) for column in zip(*gone, strict=True)),
            )
        written = [f for f in flags if known.get((f.store_id, f.sku, f.kind)) != (f.reason, f.observed_at)]
        if not written:
            return
        # Two flags of one kind for one price fail here as the plain INSERT did: a row affected twice.
        await self.conn.execute(
            """INSERT INTO flags (chain, store_id, sku, kind, reason, observed_at)
               SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
               ON CONFLICT (chain, store_id, sku, kind) DO UPDATE
               SET reason = EXCLUDED.reason, observed_at = EXCLUDED.observed_at""",
            chain,
            [f.store_id for f in written],
            [f.sku for f in written],
            [f.kind for f in written],
            [f.reason for f in written],
            [f.observed_at for f in written],
        )

    async def tidy_price_counts(self, *, before: date) -> int:
        """Delete empty counts, and counts and price ranges of days before `before`; return how many."""
        await self.conn.execute("DELETE FROM price_ranges WHERE seen_on < $1", before)
        # A store leaving a day that no median reads any more is not counted off it (tally_moves).
        result: str = await self.conn.execute(
            "DELETE FROM price_counts WHERE stores = 0 OR seen_on < $1", before
        )
        return int(result.rsplit(" ", 1)[-1])

    async def stale_bargains(self, *, before: datetime) -> list[ListedBargain]:
        """Return bargains resting on prices observed before a horizon."""
        rows = await self.conn.fetch(f"SELECT {BARGAIN_COLUMNS} FROM bargains WHERE observed_at < $1", before)
        return [bargain_from(r) for r in rows]


def _histories_of(
    rows: Sequence[asyncpg.Record],
    wanted: set[Key] | None,
    swept: Mapping[tuple[str, int], datetime],
    held: dict[Key, int],
) -> dict[Key, tuple[Segment, ...]]:
    """Build histories from rows of _HISTORY_COLUMNS, keeping only the wanted pairs (all if None).

    A run a sweep holds (its page noted in `held`) was last seen when the sweep was, if later.
    """
    found: dict[Key, list[Segment]] = {}
    for store_id, sku, price, was, starts_at, ends_at, member, quantity, total, sold_by, sweep in rows:
        if wanted is not None and (store_id, sku) not in wanted:
            continue  # a pair of the batch's stores and products that the batch does not hold
        if sweep is not None:
            held[store_id, sku] = sweep
            ends_at = _ends(ends_at, swept.get((store_id, sweep)))
        segment = Segment(price, was, starts_at, ends_at, _label(member, quantity, total, sold_by))
        if (segments := found.get((store_id, sku))) is None:
            found[store_id, sku] = [segment]
        else:
            segments.append(segment)
    # Sorting 25,000 rows by text keys took a quarter of the query in PostgreSQL; most keys
    # have one run, so only those with several are put in order here.
    return {
        key: (segments[0],) if len(segments) == 1 else tuple(sorted(segments, key=_starts))
        for key, segments in found.items()
    }


def _first_runs(chain: str, page: SeenPage, prices: PriceColumns) -> Iterator[tuple[object, ...]]:
    """Return the rows (SEGMENT_COLUMNS) of a page's first runs, seen once at its moment, held by its
    sweep: built a column at a time, as `fold` would start each (its label's parts as `label_from`)."""
    count = len(page.skus)
    multibuy = prices.multibuy
    return zip(
        repeat(chain),
        repeat(page.store_id),
        page.skus,
        prices.price_cents,
        prices.was_price_cents or repeat(None, count),
        repeat(page.seen_at),
        repeat(page.seen_at),
        prices.member_price_cents or repeat(None, count),
        repeat(None, count) if multibuy is None else [None if m is None else m.quantity for m in multibuy],
        repeat(None, count) if multibuy is None else [None if m is None else m.total_cents for m in multibuy],
        prices.sold_by or repeat("each", count),
        repeat(page.page),
    )


def _ends(ends_at: datetime, seen_at: datetime | None) -> datetime:
    """Return when a run was last seen: its own end, or its sweep's moment if later."""
    return seen_at if seen_at is not None and seen_at > ends_at else ends_at


def _label(member: int | None, quantity: int | None, total: int | None, sold_by: SoldBy) -> Label:
    """Return a run's label from its columns."""
    # Most runs show no label: they share the empty one, which fold compares by identity.
    if member is None and quantity is None and total is None and sold_by == "each":
        return NO_LABEL
    return Label(member, quantity, total, sold_by)
