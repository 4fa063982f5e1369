"""The catalogue's write side: products, current prices, history, placements, substitutes, bargains."""

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from catalogue.domain.answering import Shelf
from catalogue.domain.history import Segment
from contracts.events.v1 import Bargain, StoreGroupChangedPayload, Substitute
from servicekit.copying import Kind, copy_rows
from servicekit.db import Connection
from servicekit.sweeps import SeenPage

Key = tuple[str, str, str]
"""A price's key: chain, store, sku."""


@dataclass(frozen=True, slots=True)
class ProductRow:
    """A product as the catalogue keeps it."""

    chain: str
    sku: str
    name: str
    brand: str | None
    size: str | None
    category: str | None
    shared_category: str | None
    barcode: str | None
    url: str | None
    search_text: str
    observed_at: datetime


class PriceRow(NamedTuple):
    """What a store charged for a product at its newest sighting.

    A named tuple, not a dataclass: one is built per price folded (a third of the cost of a
    frozen dataclass), and its fields are the table's columns in order (PRICE_COLUMNS).
    """

    chain: str
    store_id: str
    sku: str
    price_cents: int
    was_price_cents: int | None
    available: bool
    member_price_cents: int | None
    multibuy_quantity: int | None
    multibuy_total_cents: int | None
    sold_by: str
    stated_cents: int | None
    stated_quantity: int | None
    stated_unit: str | None
    stated_text: str | None
    observed_at: datetime

    @property
    def key(self) -> Key:
        """Return the price's key."""
        return (self.chain, self.store_id, self.sku)

    @property
    def shelf(self) -> tuple[object, ...]:
        """Return what the shelf label shows: every field but where and when."""
        return self[3:14]


class PageState(NamedTuple):
    """Where a store's page stands before a batch: whether its store holds a price, and its sweep."""

    stocked: bool
    seen_at: datetime | None
    """When the page's sweep was last seen (None: no sweep)."""
    shelves: int | None
    """What the page showed when its sweep last held it whole (servicekit.sweeps.shelves_of); None
    when it holds it whole no more."""


class HeldPage(NamedTuple):
    """A page seen at once whose rows a merge writes held by its sweep (its sweep older, or none)."""

    chain: str
    page: SeenPage
    alone: bool
    """Whether it is the only page of its store whose rows are given: then the store names it."""


class CopiedPage(NamedTuple):
    """A page of a store holding no price yet, copied in as its rows (PRICE_COLUMNS, run_starts_at, sweep)."""

    chain: str
    page: SeenPage
    rows: Iterable[tuple[object, ...]]
    held: bool
    """Whether its rows are held by its sweep (their sweep column its page)."""


PRICE_COLUMNS = (
    "chain, store_id, sku, price_cents, was_price_cents, available, member_price_cents, "
    "multibuy_quantity, multibuy_total_cents, sold_by, stated_cents, stated_quantity, stated_unit, "
    "stated_text, observed_at"
)
PRICE_FIELDS = tuple(PRICE_COLUMNS.split(", "))
PRICE_KINDS: tuple[Kind, ...] = (
    "text", "text", "text", "int4", "int4", "bool", "int4", "int4", "int4", "text", "int4", "int4", "text",
    "text", "timestamptz",
)  # fmt: skip
_COPIED_FIELDS = (*PRICE_FIELDS, "run_starts_at", "sweep")
_COPIED_KINDS: tuple[Kind, ...] = (*PRICE_KINDS, "timestamptz", "int8")
_SHELF_COLUMNS = ", ".join(PRICE_FIELDS[3:14])
# Empties the staging table as it merges (one scan of it), so no other transaction ever sees a
# row of it; an older sighting never replaces a newer current price. A newer one at the same price
# extends the current run (its row only); at another price it starts a run, and the row notes the
# run it ended (ended_*), which the same statement writes to history: the old values come from
# the upsert itself, with no join the planner could get wrong. It returns the keys whose sighting
# was not newer: the caller folds those into their history.
# A row is written held by the sweep of its page, else by none: of its store's page in $1-$3 when
# that is the only page of its store given (most), else of the page given with its key in $4-$7;
# a sweep that a written row was held by and is no more loses its shelves (it holds the page no
# longer whole). A held row was last seen when its sweep was, if later (_LAST_SEEN): a subquery
# per held row, but not for a row held by the page that writes it, whose sweep the caller found
# older than the page (so the row's own sighting decides).
# A sweep some of whose rows (chain, store_id, sweep) went holds its page no longer whole.
_LET_GO = """UPDATE sweeps s SET shelves = NULL
    FROM (SELECT DISTINCT chain, store_id, sweep FROM {rows} WHERE sweep IS NOT NULL) AS r
    WHERE s.chain = r.chain AND s.store_id = r.store_id AND s.page = r.sweep AND s.shelves IS NOT NULL"""
_SAME_RUN = """(prices.price_cents, prices.was_price_cents)
    IS NOT DISTINCT FROM (EXCLUDED.price_cents, EXCLUDED.was_price_cents)"""
_SWEEP_SEEN = """(SELECT s.seen_at FROM sweeps s
    WHERE s.chain = prices.chain AND s.store_id = prices.store_id AND s.page = prices.sweep)"""
_LAST_SEEN = f"GREATEST(prices.observed_at, {_SWEEP_SEEN})"
_MERGE_STAGED_PRICES = f"""
    WITH staged AS (DELETE FROM incoming_prices RETURNING *),
    merged AS (
        INSERT INTO prices ({PRICE_COLUMNS}, run_starts_at, sweep)
        SELECT {", ".join(f"st.{c}" for c in PRICE_FIELDS)}, st.observed_at, coalesce(h.page, k.page)
        FROM staged st
        LEFT JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS h(chain, store_id, page)
            ON h.chain = st.chain AND h.store_id = st.store_id
        LEFT JOIN unnest($4::text[], $5::text[], $6::text[], $7::bigint[]) AS k(chain, store_id, sku, page)
            ON k.chain = st.chain AND k.store_id = st.store_id AND k.sku = st.sku
        ON CONFLICT (chain, store_id, sku) DO UPDATE SET
            {", ".join(f"{c} = EXCLUDED.{c}" for c in PRICE_FIELDS[3:])},
            sweep = EXCLUDED.sweep,
            run_starts_at = CASE WHEN {_SAME_RUN} THEN prices.run_starts_at ELSE EXCLUDED.observed_at END,
            ended_starts_at = CASE WHEN {_SAME_RUN} THEN NULL ELSE prices.run_starts_at END,
            ended_at = CASE WHEN {_SAME_RUN} THEN NULL WHEN prices.sweep IS NULL THEN prices.observed_at
                            ELSE {_LAST_SEEN} END,
            ended_cents = CASE WHEN {_SAME_RUN} THEN NULL ELSE prices.price_cents END,
            ended_was_cents = CASE WHEN {_SAME_RUN} THEN NULL ELSE prices.was_price_cents END
        WHERE prices.observed_at < EXCLUDED.observed_at
          AND (prices.sweep IS NULL OR prices.sweep = EXCLUDED.sweep
               OR coalesce({_SWEEP_SEEN}, '-infinity') < EXCLUDED.observed_at)
        RETURNING chain, store_id, sku, ended_starts_at, ended_at, ended_cents, ended_was_cents,
                  CASE WHEN old.sweep IS DISTINCT FROM new.sweep THEN old.sweep END AS let_go),
    ended AS (
        INSERT INTO history (chain, store_id, sku, starts_at, ends_at, price_cents, was_price_cents)
        SELECT chain, store_id, sku, ended_starts_at, ended_at, ended_cents, ended_was_cents
        FROM merged WHERE ended_starts_at IS NOT NULL
        ON CONFLICT (chain, store_id, sku, starts_at) DO UPDATE SET ends_at = EXCLUDED.ends_at,
            price_cents = EXCLUDED.price_cents, was_price_cents = EXCLUDED.was_price_cents),
    released AS ({_LET_GO.format(rows="(SELECT chain, store_id, let_go AS sweep FROM merged) AS m")})
    SELECT chain, store_id, sku FROM staged EXCEPT SELECT chain, store_id, sku FROM merged"""

PRODUCT_COLUMNS = (
    "chain, sku, name, brand, size, category, shared_category, barcode, url, search_text, observed_at"
)


class CatalogueRepository(Protocol):
    """What the service layer reads and writes, inside one transaction."""

    async def save_products(self, products: Sequence[ProductRow]) -> None:
        """Insert products or replace them with a newer description; an older one changes nothing."""
        ...

    async def save_prices(self, prices: Sequence[PriceRow], *, held: Sequence[HeldPage] = ()) -> list[Key]:
        """Merge current prices (one row per key), a newer one extending or ending the current run.

        `held`: pages whose rows are given, no product on two of them: the rows written of each
        page are held by its sweep, which moves to the page's moment and notes what it shows when
        every row of it was written (servicekit.sweeps). Several pages of a store each stand apart.
        Return the keys whose sighting was not newer than their current price: left to fold.
        """
        ...

    async def page_states(self, pages: Sequence[tuple[str, SeenPage]]) -> list[PageState]:
        """Return, for each page of a chain, whether its store holds any current price, and its sweep."""
        ...

    async def move_sweeps(self, pages: Sequence[tuple[str, SeenPage]]) -> set[tuple[str, str, int]]:
        """Move the sweeps of pages seen again showing what their sweep notes, to the pages' moments.

        Only a sweep that still holds its whole page moves (its shelves noted): nothing is written
        per price. Return the (chain, store, page) of the pages moved.
        """
        ...

    async def copy_prices(self, pages: Sequence[CopiedPage]) -> None:
        """Copy in the current prices of stores that hold none yet: each page's rows start their runs.

        A held page's rows (their sweep column its page) are held by its sweep, which notes the page.
        """
        ...

    async def histories(self, keys: Sequence[Key]) -> dict[Key, tuple[Segment, ...]]:
        """Return the history of these keys, oldest run first, the current one last (unknown keys omitted)."""
        ...

    async def save_segments(
        self,
        segments: Sequence[tuple[Key, Segment]],
        removed: Sequence[tuple[Key, datetime]],
        restarted: Sequence[tuple[Key, datetime]] = (),
    ) -> None:
        """Insert or update ended runs (by key and start), delete those removed, move current runs' starts."""
        ...

    async def anchors_of(self, stores: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Return the anchor of each of these stores that is a member of a group (others omitted)."""
        ...

    async def current_shelves(
        self, *, chain: str, store_ids: Sequence[str], skus: Sequence[str] | None = None
    ) -> dict[tuple[str, str], Shelf]:
        """Return what stores of a chain currently show, by store and sku, of some skus or of all."""
        ...

    async def end_prices(self, keys: Sequence[Key]) -> None:
        """Remove current prices, their runs kept as ended runs in history."""
        ...

    async def price_marks(self, *, chain: str, store_ids: Sequence[str]) -> dict[str, int]:
        """Return the mark of placed stores' current prices: a new one whenever any of them changes."""
        ...

    async def drop_prices(self, keys: Sequence[Key], *, stores: Sequence[tuple[str, str]] = ()) -> None:
        """Delete current prices whose runs repeat another store's (an anchor's), and whole stores' ones."""
        ...

    async def apply_group(self, group: StoreGroupChangedPayload) -> bool:
        """Place a group's stores under its anchor unless a newer version is known; return if applied."""
        ...

    async def replace_substitutes(
        self, *, chain: str, sku: str, occurred_at: datetime, substitutes: Sequence[Substitute]
    ) -> bool:
        """Replace a product's substitutes unless a newer set is known; return if applied."""
        ...

    async def save_bargains(self, bargains: Sequence[tuple[Bargain, bool]]) -> None:
        """Record bargains with whether they expired; an older sighting changes nothing."""
        ...


class PostgresCatalogueRepository:
    """The catalogue repository over one PostgreSQL connection (in a transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def save_products(self, products: Sequence[ProductRow]) -> None:
        """Insert products or replace them with a newer description; an older one changes nothing."""
        if not products:
            return
        columns = PRODUCT_COLUMNS.split(", ")
        await self.conn.execute(
            f"""INSERT INTO products ({PRODUCT_COLUMNS})
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                                     $11::timestamptz[])
                ON CONFLICT (chain, sku) DO UPDATE SET
                    {", ".join(f"{c} = EXCLUDED.{c}" for c in columns[2:])}
                WHERE products.observed_at < EXCLUDED.observed_at""",
            *([getattr(p, c) for p in products] for c in columns),
        )

    async def save_prices(self, prices: Sequence[PriceRow], *, held: Sequence[HeldPage] = ()) -> list[Key]:
        """Merge current prices (one row per key), a newer one extending or ending the current run.

        `held`: pages whose rows are given, no product on two of them: the rows written of each
        page are held by its sweep, which moves to the page's moment and notes what it shows when
        every row of it was written (servicekit.sweeps). Several pages of a store each stand apart.
        Return the keys whose sighting was not newer than their current price: left to fold.
        """
        if not prices:
            return []
        stores = sorted({(p.chain, p.store_id) for p in prices})
        await self._mark_changed(stores)
        # A store holding no price yet (a chain's first scrape, a new store, the projection rebuilt
        # from the topic) has nothing to merge with: its rows start their runs, copied straight in
        # for a third of the merge's cost.
        empty = await self._stores_without_prices(stores)
        # Which page's sweep holds each row written, by key (a store's pages hold products apart).
        sweep_of = {
            (chain, page.store_id, sku): page.page
            for chain, page, _ in held
            if (chain, page.store_id) in empty
            for sku in page.skus
        }
        first = [(*p, p.observed_at, sweep_of.get(p[:3])) for p in prices if (p.chain, p.store_id) in empty]
        staged = [p for p in prices if (p.chain, p.store_id) not in empty]
        if first:
            await copy_rows(self.conn, "prices", columns=_COPIED_FIELDS, kinds=_COPIED_KINDS, records=first)
        late = []
        if staged:
            # The rows are tuples in column order: COPY takes them as they are, and one statement
            # merges and empties the staging table (one row per key: a statement may touch a row once).
            await copy_rows(
                self.conn, "incoming_prices", columns=PRICE_FIELDS, kinds=PRICE_KINDS, records=staged
            )
            merged = [
                held_page for held_page in held if (held_page.chain, held_page.page.store_id) not in empty
            ]
            alone = [(chain, page) for chain, page, alone in merged if alone]
            # A page beside others of its store names its rows by key (rare: most batches merge one
            # page of a store, the others unchanged).
            late = await self.conn.fetch(
                _MERGE_STAGED_PRICES,
                [chain for chain, _ in alone],
                [page.store_id for _, page in alone],
                [page.page for _, page in alone],
                *_keys_of([(chain, page) for chain, page, alone in merged if not alone]),
            )
        left = [(r["chain"], r["store_id"], r["sku"]) for r in late]
        # A page is written whole unless one of its rows was left to fold (an older sighting).
        unwritten = set(left)
        stores_left = {key[:2] for key in unwritten}
        await self._note_sweeps(
            [
                (
                    chain,
                    page,
                    (chain, page.store_id) not in stores_left or not _any_of(unwritten, chain, page),
                )
                for chain, page, _ in held
            ]
        )
        await self._note_stores(stores)
        return left

    async def page_states(self, pages: Sequence[tuple[str, SeenPage]]) -> list[PageState]:
        """Return, for each page of a chain, whether its store holds any current price, and its sweep."""
        rows = await self.conn.fetch(
            """SELECT EXISTS (SELECT FROM prices p WHERE p.chain = k.chain AND p.store_id = k.store_id),
                      s.seen_at, s.shelves
               FROM unnest($1::text[], $2::text[], $3::bigint[])
                    WITH ORDINALITY AS k(chain, store_id, page, n)
               LEFT JOIN sweeps s ON s.chain = k.chain AND s.store_id = k.store_id AND s.page = k.page
               ORDER BY k.n""",
            [chain for chain, _ in pages],
            [page.store_id for _, page in pages],
            [page.page for _, page in pages],
        )
        return [PageState(r[0], r[1], r[2]) for r in rows]

    async def move_sweeps(self, pages: Sequence[tuple[str, SeenPage]]) -> set[tuple[str, str, int]]:
        """Move the sweeps of pages seen again showing what their sweep notes, to the pages' moments.

        Only a sweep that still holds its whole page moves (its shelves noted): nothing is written
        per price. Return the (chain, store, page) of the pages moved.
        """
        if not pages:
            return set()
        rows = await self.conn.fetch(
            """UPDATE sweeps s SET seen_at = k.seen_at
               FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::timestamptz[])
                    AS k(chain, store_id, page, shelves, seen_at)
               WHERE s.chain = k.chain AND s.store_id = k.store_id AND s.page = k.page
                 AND s.shelves = k.shelves AND s.seen_at <= k.seen_at
               RETURNING s.chain, s.store_id, s.page""",
            [chain for chain, _ in pages],
            [page.store_id for _, page in pages],
            [page.page for _, page in pages],
            [page.shelves for _, page in pages],
            [page.seen_at for _, page in pages],
        )
        moved = {(r[0], r[1], r[2]) for r in rows}
        # Their prices' last sightings moved: a process keeping them must read them again.
        await self._mark_changed({(chain, store_id) for chain, store_id, _ in moved})
        return moved

    async def copy_prices(self, pages: Sequence[CopiedPage]) -> None:
        """Copy in the current prices of stores that hold none yet: each page's rows start their runs.

        A held page's rows (their sweep column its page) are held by its sweep, which notes the page.
        """
        if not pages:
            return
        stores = sorted({(copied.chain, copied.page.store_id) for copied in pages})
        await self._mark_changed(stores)
        await copy_rows(
            self.conn,
            "prices",
            columns=_COPIED_FIELDS,
            kinds=_COPIED_KINDS,
            records=itertools.chain.from_iterable(page.rows for page in pages),
        )
        await self._note_sweeps([(copied.chain, copied.page, True) for copied in pages if copied.held])
        await self._note_stores(stores)

    async def _note_sweeps(self, pages: Sequence[tuple[str, SeenPage, bool]]) -> None:
        """Move the sweeps of pages whose rows were just written held, noting what a page shows if whole."""
        if not pages:
            return
        await self.conn.execute(
            """INSERT INTO sweeps (chain, store_id, page, seen_at, shelves)
               SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::bigint[])
               ORDER BY 1, 2, 3
               ON CONFLICT (chain, store_id, page) DO UPDATE
               SET seen_at = EXCLUDED.seen_at, shelves = EXCLUDED.shelves""",
            [chain for chain, _, _ in pages],
            [page.store_id for _, page, _ in pages],
            [page.page for _, page, _ in pages],
            [page.seen_at for _, page, _ in pages],
            [page.shelves if whole else None for _, page, whole in pages],
        )

    async def _note_stores(self, stores: Sequence[tuple[str, str]]) -> None:
        """Note stores priced, for the export to walk."""
        await self.conn.execute(
            """INSERT INTO stores (chain, store_id) SELECT * FROM unnest($1::text[], $2::text[])
               ON CONFLICT DO NOTHING""",
            [c for c, _ in stores],
            [s for _, s in stores],
        )

    async def _stores_without_prices(self, stores: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Return the stores of a batch that hold no current price (one probe of the key each)."""
        rows = await self.conn.fetch(
            """SELECT b.chain, b.store_id FROM unnest($1::text[], $2::text[]) AS b(chain, store_id)
               WHERE NOT EXISTS (SELECT FROM prices p WHERE p.chain = b.chain AND p.store_id = b.store_id)""",
            [chain for chain, _ in stores],
            [store_id for _, store_id in stores],
        )
        return {(r["chain"], r["store_id"]) for r in rows}

    async def histories(self, keys: Sequence[Key]) -> dict[Key, tuple[Segment, ...]]:
        """Return the history of these keys, oldest run first, the current one last (unknown keys omitted)."""
        if not keys:
            return {}
        rows = await self.conn.fetch(
            """WITH k AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS k(chain, store_id, sku))
               SELECT h.chain, h.store_id, h.sku, h.starts_at, h.ends_at, h.price_cents, h.was_price_cents
               FROM k JOIN history h USING (chain, store_id, sku)
               UNION ALL
               SELECT p.chain, p.store_id, p.sku, p.run_starts_at, p.observed_at, p.price_cents,
                      p.was_price_cents
               FROM k JOIN current_prices p USING (chain, store_id, sku)
               ORDER BY 1, 2, 3, 4""",
            *(list(column) for column in zip(*keys, strict=True)),
        )
        found: dict[Key, list[Segment]] = {}
        for chain, store_id, sku, starts_at, ends_at, price_cents, was_price_cents in rows:
            segment = Segment(starts_at, ends_at, price_cents, was_price_cents)
            if (held := found.get((chain, store_id, sku))) is None:
                found[chain, store_id, sku] = [segment]
            else:
                held.append(segment)
        return {key: tuple(segments) for key, segments in found.items()}

    async def save_segments(
        self,
        segments: Sequence[tuple[Key, Segment]],
        removed: Sequence[tuple[Key, datetime]],
        restarted: Sequence[tuple[Key, datetime]] = (),
    ) -> None:
        """Insert or update ended runs (by key and start), delete those removed, move current runs' starts."""
        if restarted:
            await self.conn.execute(
                """UPDATE prices p SET run_starts_at = k.starts_at
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
                        AS k(chain, store_id, sku, starts_at)
                   WHERE p.chain = k.chain AND p.store_id = k.store_id AND p.sku = k.sku""",
                [k[0] for k, _ in restarted],
                [k[1] for k, _ in restarted],
                [k[2] for k, _ in restarted],
                [at for _, at in restarted],
            )
        if removed:
            await self.conn.execute(
                """DELETE FROM history h
                   USING unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
                         AS k(chain, store_id, sku, starts_at)
                   WHERE h.chain = k.chain AND h.store_id = k.store_id AND h.sku = k.sku
                     AND h.starts_at = k.starts_at""",
                [k[0] for k, _ in removed],
                [k[1] for k, _ in removed],
                [k[2] for k, _ in removed],
                [at for _, at in removed],
            )
        if segments:
            await self.conn.execute(
                """INSERT INTO history
                       (chain, store_id, sku, starts_at, ends_at, price_cents, was_price_cents)
                   SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                                        $5::timestamptz[], $6::int[], $7::int[])
                   ON CONFLICT (chain, store_id, sku, starts_at) DO UPDATE SET ends_at = EXCLUDED.ends_at,
                       price_cents = EXCLUDED.price_cents, was_price_cents = EXCLUDED.was_price_cents""",
                [k[0] for k, _ in segments],
                [k[1] for k, _ in segments],
                [k[2] for k, _ in segments],
                [s.starts_at for _, s in segments],
                [s.ends_at for _, s in segments],
                [s.price_cents for _, s in segments],
                [s.was_price_cents for _, s in segments],
            )

    async def anchors_of(self, stores: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Return the anchor of each of these stores that is a member of a group (others omitted)."""
        rows = await self.conn.fetch(
            """SELECT pl.chain, pl.store_id, pl.anchor_store_id
               FROM unnest($1::text[], $2::text[]) AS s(chain, store_id)
               JOIN placements pl ON pl.chain = s.chain AND pl.store_id = s.store_id
               WHERE pl.anchor_store_id <> pl.store_id""",
            [chain for chain, _ in stores],
            [store_id for _, store_id in stores],
        )
        return {(r["chain"], r["store_id"]): r["anchor_store_id"] for r in rows}

    async def current_shelves(
        self, *, chain: str, store_ids: Sequence[str], skus: Sequence[str] | None = None
    ) -> dict[tuple[str, str], Shelf]:
        """Return what stores of a chain currently show, by store and sku, of some skus or of all."""
        # Stores by skus, a range of the key per store: a batch asks for a few anchors' and
        # members' same products, and a probe per pair would cost a cache miss each. Per store,
        # not by product: once members are placed, the product index holds their dropped prices
        # until a vacuum, and a scan of it walked them all (90 ms a batch, 2,400 stores). A row's
        # slice is a tuple already: no object per row (a batch reads about one per member's price).
        # A sweep may hold a price's last sighting: the stores' sweeps are read apart and applied
        # here (as bargains does).
        query = f"SELECT store_id, sku, observed_at, {_SHELF_COLUMNS}, sweep FROM prices WHERE chain = $1"
        if skus is None:
            rows = await self.conn.fetch(query + " AND store_id = ANY($2::text[])", chain, list(store_ids))
        else:
            query = f"""SELECT p.* FROM unnest($2::text[]) AS s(store_id), LATERAL ({query}
                            AND store_id = s.store_id AND sku = ANY($3::text[]) ORDER BY sku) AS p"""
            rows = await self.conn.fetch(query, chain, list(store_ids), list(skus))
        held = sorted({r[0] for r in rows if r[-1] is not None})
        if not held:
            return {(r[0], r[1]): (r[3:-1], r[2]) for r in rows}
        swept = {
            (s[0], s[1]): s[2]
            for s in await self.conn.fetch(
                "SELECT store_id, page, seen_at FROM sweeps WHERE chain = $1 AND store_id = ANY($2::text[])",
                chain,
                held,
            )
        }
        return {
            (r[0], r[1]): (r[3:-1], r[2] if r[-1] is None else max(r[2], swept.get((r[0], r[-1]), r[2])))
            for r in rows
        }

    async def drop_prices(self, keys: Sequence[Key], *, stores: Sequence[tuple[str, str]] = ()) -> None:
        """Delete current prices whose runs repeat another store's (an anchor's), and whole stores' ones."""
        await self._mark_changed([*stores, *(key[:2] for key in keys)])
        if stores:
            # A range of the key each: a tenth of the cost of the same rows as keys. Their sweeps
            # hold nothing any more.
            await self.conn.execute(
                """WITH dropped AS (
                       DELETE FROM prices p USING unnest($1::text[], $2::text[]) AS s(chain, store_id)
                       WHERE p.chain = s.chain AND p.store_id = s.store_id)
                   DELETE FROM sweeps w USING unnest($1::text[], $2::text[]) AS s(chain, store_id)
                   WHERE w.chain = s.chain AND w.store_id = s.store_id""",
                [chain for chain, _ in stores],
                [store_id for _, store_id in stores],
            )
        if not keys:
            return
        await self.conn.execute(
            f"""WITH dropped AS (
                    DELETE FROM prices p
                    USING unnest($1::text[], $2::text[], $3::text[]) AS k(chain, store_id, sku)
                    WHERE p.chain = k.chain AND p.store_id = k.store_id AND p.sku = k.sku
                    RETURNING p.chain, p.store_id, p.sweep)
                {_LET_GO.format(rows="dropped")}""",
            *(list(column) for column in zip(*keys, strict=True)),
        )

    async def end_prices(self, keys: Sequence[Key]) -> None:
        """Remove current prices, their runs kept as ended runs in history."""
        if not keys:
            return
        await self._mark_changed([key[:2] for key in keys])
        # An ended run was last seen when its sweep was, if later.
        await self.conn.execute(
            f"""WITH ended AS (
                    DELETE FROM prices p
                    USING unnest($1::text[], $2::text[], $3::text[]) AS k(chain, store_id, sku)
                    WHERE p.chain = k.chain AND p.store_id = k.store_id AND p.sku = k.sku
                    RETURNING p.chain, p.store_id, p.sku, p.run_starts_at, p.observed_at, p.price_cents,
                              p.was_price_cents, p.sweep),
                kept AS (
                    INSERT INTO history
                        (chain, store_id, sku, starts_at, ends_at, price_cents, was_price_cents)
                    SELECT e.chain, e.store_id, e.sku, e.run_starts_at, GREATEST(e.observed_at, s.seen_at),
                           e.price_cents, e.was_price_cents
                    FROM ended e
                    LEFT JOIN sweeps s ON s.chain = e.chain AND s.store_id = e.store_id AND s.page = e.sweep
                    ON CONFLICT (chain, store_id, sku, starts_at) DO UPDATE SET ends_at = EXCLUDED.ends_at,
                        price_cents = EXCLUDED.price_cents, was_price_cents = EXCLUDED.was_price_cents)
                {_LET_GO.format(rows="ended")}""",
            *(list(column) for column in zip(*keys, strict=True)),
        )

    async def price_marks(self, *, chain: str, store_ids: Sequence[str]) -> dict[str, int]:
        """Return the mark of placed stores' current prices: a new one whenever any of them changes."""
        rows = await self.conn.fetch(
            "SELECT store_id, price_mark FROM placements WHERE chain = $1 AND store_id = ANY($2::text[])",
            chain,
            list(store_ids),
        )
        return {r[0]: r[1] for r in rows}

    async def _mark_changed(self, stores: Iterable[tuple[str, str]]) -> None:
        """Draw new marks for placed stores whose current prices this transaction changes."""
        changed = sorted(set(stores))
        if not changed:
            return
        await self.conn.execute(
            """UPDATE placements p SET price_mark = nextval('price_marks')
               FROM unnest($1::text[], $2::text[]) AS s(chain, store_id)
               WHERE p.chain = s.chain AND p.store_id = s.store_id""",
            [chain for chain, _ in changed],
            [store_id for _, store_id in changed],
        )

    async def apply_group(self, group: StoreGroupChangedPayload) -> bool:
        """Place a group's stores under its anchor unless a newer version is known; return if applied."""
        applied = await self.conn.fetchval(
            """INSERT INTO store_groups (chain, group_id, group_version) VALUES ($1, $2, $3)
               ON CONFLICT (chain, group_id) DO UPDATE SET group_version = EXCLUDED.group_version
               WHERE store_groups.group_version < EXCLUDED.group_version
               RETURNING 1""",
            group.chain,
            group.group_id,
            group.group_version,
        )
        if not applied:
            return False
        stores = [] if group.reason == "dissolved" else [group.anchor_store_id, *group.member_store_ids]
        # Stores that left the group are no longer answered by its anchor; stores that moved on
        # to another group already sit there, under that group's id, and are left alone.
        await self.conn.execute(
            "DELETE FROM placements WHERE chain = $1 AND group_id = $2 AND NOT (store_id = ANY($3::text[]))",
            group.chain,
            group.group_id,
            stores,
        )
        await self.conn.execute(
            """INSERT INTO placements (chain, store_id, group_id, anchor_store_id)
               SELECT $1, unnest($2::text[]), $3, $4
               ON CONFLICT (chain, store_id) DO UPDATE
               SET group_id = EXCLUDED.group_id, anchor_store_id = EXCLUDED.anchor_store_id""",
            group.chain,
            stores,
            group.group_id,
            group.anchor_store_id,
        )
        return True

    async def replace_substitutes(
        self, *, chain: str, sku: str, occurred_at: datetime, substitutes: Sequence[Substitute]
    ) -> bool:
        """Replace a product's substitutes unless a newer set is known; return if applied."""
        applied = await self.conn.fetchval(
            """INSERT INTO substitute_sets (chain, sku, occurred_at) VALUES ($1, $2, $3)
               ON CONFLICT (chain, sku) DO UPDATE SET occurred_at = EXCLUDED.occurred_at
               WHERE substitute_sets.occurred_at < EXCLUDED.occurred_at
               RETURNING 1""",
            chain,
            sku,
            occurred_at,
        )
        if not applied:
            return False
        await self.conn.execute("DELETE FROM substitutes WHERE chain = $1 AND sku = $2", chain, sku)
        await self.conn.executemany(
            """INSERT INTO substitutes (chain, sku, level, other_chain, other_sku, score, reason)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
            [(chain, sku, s.level, s.chain, s.sku, s.score, s.reason) for s in substitutes],
        )
        return True

    async def save_bargains(self, bargains: Sequence[tuple[Bargain, bool]]) -> None:
        """Record bargains with whether they expired; an older sighting changes nothing."""
        if not bargains:
            return
        await self.conn.executemany(
            """INSERT INTO bargains (bargain_id, chain, store_id, sku, kind, price_cents, reference_cents,
                                     score, reason, observed_at, expired)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
               ON CONFLICT (bargain_id) DO UPDATE SET
                   price_cents = EXCLUDED.price_cents, reference_cents = EXCLUDED.reference_cents,
                   score = EXCLUDED.score, reason = EXCLUDED.reason, observed_at = EXCLUDED.observed_at,
                   expired = EXCLUDED.expired
               WHERE bargains.observed_at < EXCLUDED.observed_at
                  OR (bargains.observed_at = EXCLUDED.observed_at AND EXCLUDED.expired)""",
            [
                (
                    b.bargain_id,
                    b.chain,
                    b.store_id,
                    b.sku,
                    b.kind,
                    b.price_cents,
                    b.reference_cents,
                    b.score,
                    b.reason,
                    b.observed_at,
                    expired,
                )
                for b, expired in bargains
            ],
        )


def _keys_of(pages: Sequence[tuple[str, SeenPage]]) -> tuple[list[str], list[str], list[str], list[int]]:
    """Return the pages' keys and the page of each, as columns (repeated in C, no step per price)."""
    counts = [len(page.skus) for _, page in pages]
    return (
        [*itertools.chain.from_iterable(map(itertools.repeat, (chain for chain, _ in pages), counts))],
        [*itertools.chain.from_iterable(map(itertools.repeat, (page.store_id for _, page in pages), counts))],
        [*itertools.chain.from_iterable(page.skus for _, page in pages)],
        [*itertools.chain.from_iterable(map(itertools.repeat, (page.page for _, page in pages), counts))],
    )


def _any_of(keys: set[Key], chain: str, page: SeenPage) -> bool:
    """Return whether any of a page's keys is among `keys`."""
    return not keys.isdisjoint(zip(itertools.repeat(chain), itertools.repeat(page.store_id), page.skus))
