"""The grouping service's write side: latest prices, stores, groups and pruning, as the cycle needs them."""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import itemgetter
from typing import NamedTuple, Protocol
from uuid import UUID

import asyncpg
import numpy as np
import numpy.typing as npt

from contracts.events.v1 import PriceColumns, PricesScrapedPayload
from servicekit import columns
from servicekit.copying import Kind, copy_rows
from servicekit.db import Connection
from servicekit.pages import judgeable, unanswered
from servicekit.sweeps import SeenPage, apart, seen_pages


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A group as stored."""

    group_id: str
    chain: str
    anchor_store_id: str
    version: int
    members: tuple[str, ...]
    rescrape_requested_at: datetime | None


@dataclass(frozen=True, slots=True)
class DueCheck:
    """A member whose new prices wait to be compared with its anchor."""

    chain: str
    store_id: str
    group_id: str
    anchor_store_id: str
    anchor_last_observed_at: datetime | None
    last_observed_at: datetime
    answered: int = 0
    """Its new prices its anchor charged too: answered by the anchor, not stored, equal by definition."""


@dataclass(frozen=True, slots=True)
class AnchorChange:
    """How many of an anchor's stored prices its scrapes since the last look compared and changed."""

    chain: str
    store_id: str
    group_id: str | None
    compared: int
    changed: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """Products a member and its anchor both hold fresh prices for, and how many of those are equal."""

    common: int
    equal: int


@dataclass(frozen=True, slots=True)
class PriceMatrix:
    """The fresh prices of some stores of one chain: rows stores, columns products, 0 = none."""

    store_ids: list[str]
    prices: npt.NDArray[np.int32]
    freshness: list[float]


class GroupingRepository(Protocol):
    """What the grouping service layer reads and writes, inside one transaction."""

    async def upsert_prices(
        self, *, batches: Sequence[PricesScrapedPayload], fresh_since: datetime, anchor_lag: timedelta
    ) -> int:
        """Keep each product's latest price, but a member's its anchor answers; return rows written.

        Changes of anchors with members are counted first. A member's price equal to its anchor's
        (fresh since `fresh_since`, not `anchor_lag` older than it) is counted on the member, not
        written.
        """
        ...

    async def note_store_prices(
        self,
        *,
        batches: Sequence[PricesScrapedPayload],
        received_at: datetime,
        correlation_id: UUID | None = None,
    ) -> None:
        """Record stores' prices arrived: members become due for a check, anchors' re-scrapes answered."""
        ...

    async def chain_correlations(self) -> dict[str, UUID]:
        """Return each chain's correlation id of its latest prices received (what a cycle acts on)."""
        ...

    async def anchor_changes(self, *, quiet_before: datetime) -> list[AnchorChange]:
        """Return and reset the change counts of anchors whose scrape has gone quiet."""
        ...

    async def latest_by_chain(self) -> dict[str, datetime]:
        """Return each chain's newest price arrival."""
        ...

    async def due_checks(self, *, quiet_before: datetime) -> list[DueCheck]:
        """Return members with new prices whose scrape has gone quiet."""
        ...

    async def compare(self, *, chain: str, store_id: str, anchor: str, since: datetime) -> Comparison:
        """Count the products both stores hold fresh prices for, and the equal prices among them."""
        ...

    async def mark_checked(self, *, chain: str, store_ids: Sequence[str], at: datetime) -> None:
        """Record a health check (passed or not) of members."""
        ...

    async def clear_check_due(self, *, chain: str, store_id: str) -> None:
        """Stop waiting to check a member whose new prices were too few to judge."""
        ...

    async def price_matrix(self, *, chain: str, store_ids: Sequence[str], since: datetime) -> PriceMatrix:
        """Load the fresh prices of stores into a matrix."""
        ...

    async def unplaced(self, *, chain: str, quiet_before: datetime) -> list[str]:
        """Return a chain's stores without a group whose scrape has gone quiet, by id."""
        ...

    async def groups(self, *, chain: str) -> dict[str, GroupRow]:
        """Return a chain's groups with their members, by group id."""
        ...

    async def group(self, *, group_id: str) -> GroupRow | None:
        """Return one group with its members."""
        ...

    async def create_group(self, *, group_id: str, chain: str, anchor: str, members: Sequence[str]) -> None:
        """Create a group (version 1) and place its stores in it."""
        ...

    async def place(self, *, chain: str, group_id: str | None, store_ids: Sequence[str]) -> None:
        """Put stores in a group (None: take them out of any); they are no longer due for a check."""
        ...

    async def move_members(self, *, from_group: str, to_group: str) -> None:
        """Move every store of a group into another (a merge)."""
        ...

    async def delete_group(self, *, group_id: str) -> None:
        """Remove a group that was merged away."""
        ...

    async def bump(self, *, group_id: str) -> int:
        """Increase a group's version; return the new one."""
        ...

    async def note_rescrape_requested(self, *, group_id: str, at: datetime) -> None:
        """Remember that a re-scrape of the group's anchor was asked for."""
        ...

    async def prune(self, *, chain: str, anchor: str, members: Sequence[str]) -> int:
        """Delete members' prices equal to the anchor's (price, was price, availability); return rows."""
        ...

    async def keep_answered(self, *, chain: str, store_id: str, anchor: str) -> int:
        """Copy to a member leaving its group the anchor's prices it holds none of; return rows."""
        ...


_GROUPS = """
    SELECT g.group_id, g.chain, g.anchor_store_id, g.version, g.rescrape_requested_at,
           coalesce(array_agg(s.store_id ORDER BY s.store_id)
                    FILTER (WHERE s.store_id <> g.anchor_store_id), '{{}}') AS members
    FROM groups g LEFT JOIN stores s ON s.group_id = g.group_id
    WHERE {where} GROUP BY g.group_id"""


def _group_row(r: asyncpg.Record) -> GroupRow:
    return GroupRow(
        group_id=r["group_id"],
        chain=r["chain"],
        anchor_store_id=r["anchor_store_id"],
        version=r["version"],
        members=tuple(r["members"]),
        rescrape_requested_at=r["rescrape_requested_at"],
    )


def _rows_affected(status: str) -> int:
    """Read the row count of a command status such as 'DELETE 12'."""
    return int(status.rsplit(" ", 1)[-1])


class StagedRow(NamedTuple):
    """A row of incoming_prices, in its columns' order (COPY takes it as it is)."""

    chain: str
    store_id: str
    sku: str
    price_cents: int
    was_price_cents: int | None
    available: bool
    observed_at: datetime
    sweep: int | None = None
    """The page whose sweep holds the row once written (servicekit.sweeps), if any."""


_STAGED_COLUMNS = (
    "chain", "store_id", "sku", "price_cents", "was_price_cents", "available", "observed_at", "sweep"
)  # fmt: skip
_STAGED_KINDS: tuple[Kind, ...] = ("text", "text", "text", "int4", "int4", "bool", "timestamptz", "int8")

# Empties the staging table as it merges (one scan of it), so no other transaction ever sees a
# row of it. One statement may not touch a row twice: the staged rows are one per product already.
# A row is replaced only by a newer sighting than its last, which its sweep may hold.
_MERGE_STAGED = """
    WITH staged AS (DELETE FROM incoming_prices RETURNING *)
    INSERT INTO latest_prices AS p
        (chain, store_id, sku, price_cents, was_price_cents, available, observed_at, sweep)
    SELECT chain, store_id, sku, price_cents, was_price_cents, available, observed_at, sweep FROM staged
    ON CONFLICT (chain, store_id, sku) DO UPDATE
    SET price_cents = EXCLUDED.price_cents, was_price_cents = EXCLUDED.was_price_cents,
        available = EXCLUDED.available, observed_at = EXCLUDED.observed_at, sweep = EXCLUDED.sweep
    WHERE EXCLUDED.observed_at > p.observed_at
      AND (p.sweep IS NULL
           OR EXCLUDED.observed_at > (SELECT s.seen_at FROM sweeps s WHERE s.chain = p.chain
                                      AND s.store_id = p.store_id AND s.page = p.sweep))"""


class Shelf(NamedTuple):
    """What a label shows (what pruning compares) and when it was seen."""

    price_cents: int
    was_price_cents: int | None
    available: bool
    observed_at: datetime


def answered_by_anchors(
    rows: Sequence[StagedRow],
    *,
    anchor_of: Mapping[tuple[str, str], str],
    stored: Mapping[tuple[str, str, str], Shelf],
    fresh_since: datetime,
    anchor_lag: timedelta,
) -> list[StagedRow]:
    """Return the members' rows their anchor answers: the anchor's newest shelf is the same.

    Such a price is not written: it used to be inserted only to be pruned at the member's
    health check, which now counts it as common and equal instead. The anchor's newest is its
    row in `rows` or in `stored` (the stored prices of the anchors and members concerned),
    whichever was seen later; it must be fresh and not lag the member's sighting by more than
    `anchor_lag` (what a health check asks of an anchor). A sighting older than the member's
    own stored row is never answered: the merge ignores it.
    """
    # Rows and shelves are tuples: chain, store and sku lead a row; price, was-price and
    # availability lead a shelf and follow them in a row (slices are built in C).
    anchor_stores = {(chain, anchor) for (chain, _), anchor in anchor_of.items()}
    staged = {row[:3]: Shelf(*row[3:7]) for row in rows if row[:2] in anchor_stores}
    answered = []
    for row in rows:
        anchor = anchor_of.get(row[:2])
        if anchor is None or row.observed_at < fresh_since:
            continue
        key = row[:3]
        own = stored.get(key)
        if own is not None and own.observed_at >= row.observed_at:
            continue
        theirs_key = (key[0], anchor, key[2])
        theirs = stored.get(theirs_key)
        newer = staged.get(theirs_key)
        if newer is not None and (theirs is None or newer.observed_at > theirs.observed_at):
            theirs = newer
        if (
            theirs is not None
            and theirs[:3] == row[3:6]
            and theirs.observed_at >= fresh_since
            and theirs.observed_at >= row.observed_at - anchor_lag
        ):
            answered.append(row)
    return answered


_SHELF = itemgetter(0, 1, 2)
_SEEN = itemgetter(3)


def unanswered_prices(
    prices: PriceColumns,
    *,
    theirs: Mapping[str, Shelf] | None,
    mine: Mapping[str, Shelf] | None,
    fresh_since: datetime,
    anchor_lag: timedelta,
) -> list[int] | None:
    """Return the positions of a member's page that its anchor may not answer; None to judge it all.

    answered_by_anchors' rule, judged a column at a time (servicekit.pages): a price is answered
    when it is the anchor's stored shelf (`theirs`, by sku), fresh and lagging the page by at
    most `anchor_lag`, and the member holds none of its own (`mine`).
    """
    if not theirs:
        return None
    count = len(prices.sku)
    return unanswered(
        prices,
        theirs=theirs,
        mine=mine or (),
        shown=_SHELF,
        seen=_SEEN,
        shelves=zip(
            prices.price_cents,
            prices.was_price_cents or repeat(None, count),
            prices.available or repeat(True, count),
            strict=True,
        ),
        lag=anchor_lag,
        fresh_since=fresh_since,
    )


def newest_rows(batches: Sequence[PricesScrapedPayload]) -> list[StagedRow]:
    """Return each store's newest observation per product in the batches, as staging rows."""
    newest: dict[tuple[str, str, str], StagedRow] = {}
    for batch in batches:
        chain, store_id = batch.chain, batch.store_id
        for o in batch.sightings():
            key = (chain, store_id, o.sku)
            held = newest.get(key)
            if held is None or o.observed_at > held.observed_at:
                newest[key] = StagedRow(
                    chain, store_id, o.sku, o.price_cents, o.was_price_cents, o.available, o.observed_at
                )
    return list(newest.values())


class PostgresGroupingRepository:
    """Raw SQL over one connection; the caller owns the transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- prices -------------------------------------------------------------------------

    async def upsert_prices(
        self, *, batches: Sequence[PricesScrapedPayload], fresh_since: datetime, anchor_lag: timedelta
    ) -> int:
        """Keep each product's latest price; an older observation never replaces a newer one.

        A page seen whole again unchanged moves its sweep, not its rows (servicekit.sweeps); one
        newer than anything its store showed is written held by its sweep, a column at a time.
        Members' prices their anchor answers are mostly judged a page at a time and only counted
        (`unanswered_prices`). Of the rest, the prices of anchors with members are compared with
        the ones they replace (`anchor_changes`); then members' prices their anchor answers are left out
        (`_leave_out_answered`). The rest of a store holding no price yet is copied straight
        into `latest_prices`; the others' into `incoming_prices`, and merged with one statement.
        """
        stores = sorted({(batch.chain, batch.store_id) for batch in batches})
        found = await self.conn.fetch(
            """SELECT s.chain, s.store_id, g.anchor_store_id,
                      EXISTS (SELECT FROM stores m
                              WHERE m.group_id = g.group_id AND m.store_id <> g.anchor_store_id) AS leads
               FROM unnest($1::text[], $2::text[]) AS b(chain, store_id)
               JOIN stores s ON s.chain = b.chain AND s.store_id = b.store_id
               JOIN groups g ON g.group_id = s.group_id""",
            [chain for chain, _ in stores],
            [store_id for _, store_id in stores],
        )
        # An anchor's changes are counted to re-check its members: a store alone has none.
        anchors = {
            (r["chain"], r["store_id"]) for r in found if r["store_id"] == r["anchor_store_id"] and r["leads"]
        }
        anchor_of = {
            (r["chain"], r["store_id"]): r["anchor_store_id"]
            for r in found
            if r["store_id"] != r["anchor_store_id"]
        }
        shelves = await self._members_shelves(batches, anchor_of) if anchor_of else {}
        # Members' pages are judged a column at a time: only the prices their anchor may not
        # answer become rows.
        judged = judgeable(batches, lambda chain, store_id: anchor_of.get((chain, store_id)))
        # A page seen whole of a store that is no member moves only its sweep when seen again
        # unchanged; seen newer than anything its store showed, its rows are held by its sweep.
        pages = _whole_pages(batches, anchor_of)
        again, newer = await self._pages_seen_again(batches, pages)
        # An anchor whose members' prices are judged here shows them its newest rows as staged.
        anchoring = {(chain, anchor) for (chain, _), anchor in anchor_of.items()}
        again = {i for i in again if (batches[i].chain, batches[i].store_id) not in anchoring}
        holding = newer - again
        answered: Counter[tuple[str, str]] = Counter()
        rest: list[PricesScrapedPayload] = []
        left: list[StagedRow] = []
        for i, batch in enumerate(batches):
            store = (batch.chain, batch.store_id)
            positions = None
            if i in again:
                continue
            if i in holding:
                left += _page_rows(batch, pages[i].page)
                continue
            if i in judged:
                anchor, prices = judged[i]
                positions = unanswered_prices(
                    prices,
                    theirs=shelves.get((batch.chain, anchor)),
                    mine=shelves.get(store),
                    fresh_since=fresh_since,
                    anchor_lag=anchor_lag,
                )
            if positions is None:
                rest.append(batch)
                continue
            answered[store] += batch.count() - len(positions)
            left += _rows_at(batch, positions)
        rows = newest_rows(rest) + left
        await self._count_anchor_changes(rows, anchors)
        await self._move_sweeps(batches, {i: pages[i] for i in again}, anchors)
        if anchor_of:
            rows = await self._leave_out_answered(
                rows,
                anchor_of=anchor_of,
                shelves=shelves,
                answered=answered,
                fresh_since=fresh_since,
                anchor_lag=anchor_lag,
            )
        if not rows:
            return 0  # every price answered by an anchor: nothing to stage
        # A store holding no price yet (a chain's first scrape, a new store, the projection rebuilt
        # from the topic) has nothing to merge with: its rows, one per product, are copied
        # straight in, for half the merge's cost (2.5 against 5.5 us a row).
        empty = await self._stores_without_prices({(row.chain, row.store_id) for row in rows})
        first = [row for row in rows if (row.chain, row.store_id) in empty]
        rows = [row for row in rows if (row.chain, row.store_id) not in empty]
        written = 0
        if first:
            await copy_rows(
                self.conn, "latest_prices", columns=_STAGED_COLUMNS, kinds=_STAGED_KINDS, records=first
            )
            written = len(first)
        if rows:
            await copy_rows(
                self.conn, "incoming_prices", columns=_STAGED_COLUMNS, kinds=_STAGED_KINDS, records=rows
            )
            written += _rows_affected(await self.conn.execute(_MERGE_STAGED))
        await self._store_sweeps(batches, {i: pages[i] for i in holding})
        return written

    async def _pages_seen_again(
        self, batches: Sequence[PricesScrapedPayload], pages: Mapping[int, SeenPage]
    ) -> tuple[set[int], set[int]]:
        """Return which pages were seen again unchanged and which are newer than their store, by batch index.

        Seen again unchanged: its sweep showed the same shelves, earlier, and still holds a row
        of each of its products (a row written any other way has left it). Newer than anything
        its store showed: every one of its rows is written at its moment, so its sweep may hold them.
        """
        if not pages:
            return set(), set()
        found = await self.conn.fetch(
            """SELECT k.i,
                      CASE WHEN s.shelves = k.shelves AND s.seen_at < k.seen_at
                           THEN (SELECT count(*) FROM latest_prices p WHERE p.chain = k.chain
                                 AND p.store_id = k.store_id AND p.sweep = k.page) = k.n
                           ELSE false END AS again,
                      st.last_observed_at IS NULL OR st.last_observed_at < k.seen_at AS newer
               FROM unnest($1::integer[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                           $6::timestamptz[], $7::integer[])
                    AS k(i, chain, store_id, page, shelves, seen_at, n)
               LEFT JOIN sweeps s ON s.chain = k.chain AND s.store_id = k.store_id AND s.page = k.page
               LEFT JOIN stores st ON st.chain = k.chain AND st.store_id = k.store_id""",
            list(pages),
            [batches[i].chain for i in pages],
            [page.store_id for page in pages.values()],
            [page.page for page in pages.values()],
            [page.shelves for page in pages.values()],
            [page.seen_at for page in pages.values()],
            [len(page.skus) for page in pages.values()],
        )
        return {r["i"] for r in found if r["again"]}, {r["i"] for r in found if r["newer"]}

    async def _move_sweeps(
        self,
        batches: Sequence[PricesScrapedPayload],
        pages: Mapping[int, SeenPage],
        anchors: set[tuple[str, str]],
    ) -> None:
        """Move the sweeps of pages seen again unchanged; count an anchor's prices compared, none changed."""
        if not pages:
            return
        await self.conn.execute(
            """UPDATE sweeps s SET seen_at = k.seen_at
               FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[])
                    AS k(chain, store_id, page, seen_at)
               WHERE s.chain = k.chain AND s.store_id = k.store_id AND s.page = k.page""",
            [batches[i].chain for i in pages],
            [page.store_id for page in pages.values()],
            [page.page for page in pages.values()],
            [page.seen_at for page in pages.values()],
        )
        compared: Counter[tuple[str, str]] = Counter()
        for i, page in pages.items():
            if (batches[i].chain, page.store_id) in anchors:
                compared[batches[i].chain, page.store_id] += len(page.skus)
        if compared:
            await self.conn.execute(
                """UPDATE stores s SET compared_since_check = s.compared_since_check + c.n
                   FROM unnest($1::text[], $2::text[], $3::integer[]) AS c(chain, store_id, n)
                   WHERE s.chain = c.chain AND s.store_id = c.store_id""",
                [chain for chain, _ in compared],
                [store_id for _, store_id in compared],
                list(compared.values()),
            )

    async def _store_sweeps(
        self, batches: Sequence[PricesScrapedPayload], pages: Mapping[int, SeenPage]
    ) -> None:
        """Store the sweeps of pages whose rows were all written at their moment, with what they showed."""
        if not pages:
            return
        await self.conn.execute(
            """INSERT INTO sweeps (chain, store_id, page, seen_at, shelves)
               SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::bigint[])
               ORDER BY 1, 2, 3
               ON CONFLICT (chain, store_id, page) DO UPDATE
               SET seen_at = EXCLUDED.seen_at, shelves = EXCLUDED.shelves""",
            [batches[i].chain for i in pages],
            [page.store_id for page in pages.values()],
            [page.page for page in pages.values()],
            [page.seen_at for page in pages.values()],
            [page.shelves for page in pages.values()],
        )

    async def _members_shelves(
        self, batches: Sequence[PricesScrapedPayload], anchor_of: Mapping[tuple[str, str], str]
    ) -> dict[tuple[str, str], dict[str, Shelf]]:
        """Return, by store, the members' stored prices and their anchors' of the members' products.

        Read by store, each store's rows as arrays: no statement probes the index once per
        price, and no row is decoded one by one.
        """
        shelves: dict[tuple[str, str], dict[str, Shelf]] = {}
        for chain in sorted({chain for chain, _ in anchor_of}):
            members = sorted(store for c, store in anchor_of if c == chain)
            anchors = sorted({anchor for (c, _), anchor in anchor_of.items() if c == chain})
            skus: set[str] = set()
            for batch in batches:
                if batch.chain == chain and (chain, batch.store_id) in anchor_of:
                    skus.update(_skus(batch))
            found = await self.conn.fetch(
                """SELECT store_id, array_agg(sku), array_agg(price_cents), array_agg(was_price_cents),
                          array_agg(available), array_agg(observed_at)
                   FROM seen_prices
                   WHERE chain = $1 AND (store_id = ANY($2::text[])
                                         OR store_id = ANY($3::text[]) AND sku = ANY($4::text[]))
                   GROUP BY store_id""",
                chain,
                members,
                anchors,
                sorted(skus),
            )
            for store_id, sku, *shelf in found:
                shelves[chain, store_id] = dict(
                    zip(sku, map(Shelf._make, zip(*shelf, strict=True)), strict=True)
                )
        return shelves

    async def _stores_without_prices(self, stores: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Return the stores of a batch that hold no latest price (one probe of the key each)."""
        listed = sorted(stores)
        rows = await self.conn.fetch(
            """SELECT b.chain, b.store_id FROM unnest($1::text[], $2::text[]) AS b(chain, store_id)
               WHERE NOT EXISTS (SELECT FROM latest_prices p
                                 WHERE p.chain = b.chain AND p.store_id = b.store_id)""",
            [chain for chain, _ in listed],
            [store_id for _, store_id in listed],
        )
        return {(r["chain"], r["store_id"]) for r in rows}

    async def _leave_out_answered(
        self,
        rows: list[StagedRow],
        *,
        anchor_of: dict[tuple[str, str], str],
        shelves: Mapping[tuple[str, str], Mapping[str, Shelf]],
        answered: Counter[tuple[str, str]],
        fresh_since: datetime,
        anchor_lag: timedelta,
    ) -> list[StagedRow]:
        """Count members' prices their anchor answers (besides those `answered` by page), drop
        their own older rows; return the rest."""
        members = {row[:2] for row in rows if row[:2] in anchor_of}
        concerned = members | {(chain, anchor_of[chain, store]) for chain, store in members}
        stored = {
            (chain, store, sku): shelf
            for chain, store in concerned
            for sku, shelf in shelves.get((chain, store), {}).items()
        }
        each = answered_by_anchors(
            rows, anchor_of=anchor_of, stored=stored, fresh_since=fresh_since, anchor_lag=anchor_lag
        )
        # Their own rows (an exception of theirs that no longer holds): the anchor answers now.
        dropped = [row for row in each if (row.chain, row.store_id, row.sku) in stored]
        if dropped:
            await self.conn.execute(
                """DELETE FROM latest_prices p
                   USING unnest($1::text[], $2::text[], $3::text[]) AS d(chain, store_id, sku)
                   WHERE p.chain = d.chain AND p.store_id = d.store_id AND p.sku = d.sku""",
                [row.chain for row in dropped],
                [row.store_id for row in dropped],
                [row.sku for row in dropped],
            )
        counts = answered + Counter((row.chain, row.store_id) for row in each)
        if counts:
            await self.conn.execute(
                """UPDATE stores s SET answered_since_check = s.answered_since_check + c.n
                   FROM unnest($1::text[], $2::text[], $3::integer[]) AS c(chain, store_id, n)
                   WHERE s.chain = c.chain AND s.store_id = c.store_id""",
                [chain for chain, _ in counts],
                [store for _, store in counts],
                list(counts.values()),
            )
        if not each:
            return rows
        left_out = {(row.chain, row.store_id, row.sku) for row in each}
        return [row for row in rows if (row.chain, row.store_id, row.sku) not in left_out]

    async def _count_anchor_changes(self, rows: Sequence[StagedRow], anchors: set[tuple[str, str]]) -> None:
        """Count, for each anchor priced here, how many stored prices newer ones compare with and change."""
        # Few stores of a batch anchor a group: only their prices are compared, passed as arrays
        # (the staging table has no statistics a join of all of it could be planned on).
        priced = [row for row in rows if (row.chain, row.store_id) in anchors]
        if not priced:
            return
        await self.conn.execute(
            """UPDATE stores s SET compared_since_check = s.compared_since_check + c.compared,
                                  changed_since_check = s.changed_since_check + c.changed
               FROM (SELECT i.chain, i.store_id, count(*) AS compared,
                            count(*) FILTER (WHERE p.price_cents <> i.price_cents) AS changed
                     FROM unnest($1::text::text[], $2::text::text[], $3::text::text[], $4::text::integer[],
                                 $5::text::timestamptz[]) AS i(chain, store_id, sku, price_cents, observed_at)
                     JOIN seen_prices p ON p.chain = i.chain AND p.store_id = i.store_id AND p.sku = i.sku
                     WHERE i.observed_at > p.observed_at
                     GROUP BY i.chain, i.store_id) AS c
               WHERE s.chain = c.chain AND s.store_id = c.store_id""",
            columns.texts([row.chain for row in priced]),
            columns.texts([row.store_id for row in priced]),
            columns.texts([row.sku for row in priced]),
            columns.ints([row.price_cents for row in priced]),
            columns.instants([row.observed_at for row in priced]),
        )

    async def note_store_prices(
        self,
        *,
        batches: Sequence[PricesScrapedPayload],
        received_at: datetime,
        correlation_id: UUID | None = None,
    ) -> None:
        """Record that stores' prices arrived: a member becomes due for a health check,
        and an anchor's prices answer any re-scrape asked for it."""
        arrived: dict[tuple[str, str], tuple[int, datetime]] = {}
        for batch in batches:
            key = (batch.chain, batch.store_id)
            newest = batch.newest()
            observed, latest = arrived.get(key, (0, newest))
            arrived[key] = (observed + batch.count(), max(latest, newest))
        chains = [chain for chain, _ in arrived]
        store_ids = [store_id for _, store_id in arrived]
        await self.conn.execute(
            """INSERT INTO stores AS s
                   (chain, store_id, observed, last_observed_at, last_received_at, last_correlation_id)
               SELECT a.*, $5::timestamptz, $6::uuid
               FROM unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[]) AS a
               ORDER BY 1, 2
               ON CONFLICT (chain, store_id) DO UPDATE
               SET observed = s.observed + EXCLUDED.observed,
                   last_observed_at = greatest(s.last_observed_at, EXCLUDED.last_observed_at),
                   last_received_at = EXCLUDED.last_received_at,
                   last_correlation_id = coalesce(EXCLUDED.last_correlation_id, s.last_correlation_id),
                   check_due = s.check_due OR EXISTS (SELECT 1 FROM groups g
                       WHERE g.group_id = s.group_id AND g.anchor_store_id <> s.store_id)""",
            chains,
            store_ids,
            [observed for observed, _ in arrived.values()],
            [latest for _, latest in arrived.values()],
            received_at,
            correlation_id,
        )
        await self.conn.execute(
            """UPDATE groups g SET rescrape_requested_at = NULL
               FROM unnest($1::text[], $2::text[]) AS a(chain, store_id)
               WHERE g.chain = a.chain AND g.anchor_store_id = a.store_id
                 AND g.rescrape_requested_at IS NOT NULL""",
            chains,
            store_ids,
        )

    # --- what the cycle looks at --------------------------------------------------------

    async def anchor_changes(self, *, quiet_before: datetime) -> list[AnchorChange]:
        """Return and reset the change counts of anchors whose scrape has gone quiet."""
        rows = await self.conn.fetch(
            """UPDATE stores s SET compared_since_check = 0, changed_since_check = 0
               FROM (SELECT chain, store_id, group_id, compared_since_check, changed_since_check
                     FROM stores WHERE compared_since_check > 0 AND last_received_at < $1
                     FOR UPDATE) AS q
               WHERE s.chain = q.chain AND s.store_id = q.store_id
               RETURNING q.chain, q.store_id, q.group_id, q.compared_since_check AS compared,
                         q.changed_since_check AS changed""",
            quiet_before,
        )
        return [
            AnchorChange(
                chain=r["chain"],
                store_id=r["store_id"],
                group_id=r["group_id"],
                compared=r["compared"],
                changed=r["changed"],
            )
            for r in rows
        ]

    async def chain_correlations(self) -> dict[str, UUID]:
        """Return each chain's correlation id of its latest prices received (what a cycle acts on)."""
        rows = await self.conn.fetch(
            """SELECT DISTINCT ON (chain) chain, last_correlation_id FROM stores
               WHERE last_correlation_id IS NOT NULL ORDER BY chain, last_received_at DESC"""
        )
        return {r["chain"]: r["last_correlation_id"] for r in rows}

    async def latest_by_chain(self) -> dict[str, datetime]:
        """Return each chain's newest price arrival, to know which chains changed."""
        rows = await self.conn.fetch(
            "SELECT chain, max(last_received_at) AS latest FROM stores GROUP BY chain"
        )
        return {r["chain"]: r["latest"] for r in rows}

    async def due_checks(self, *, quiet_before: datetime) -> list[DueCheck]:
        """Return members with new prices whose scrape has gone quiet."""
        rows = await self.conn.fetch(
            """SELECT s.chain, s.store_id, s.group_id, g.anchor_store_id, a.last_observed_at AS anchor_seen,
                      s.last_observed_at, s.answered_since_check
               FROM stores s
               JOIN groups g ON g.group_id = s.group_id
               LEFT JOIN stores a ON a.chain = s.chain AND a.store_id = g.anchor_store_id
               WHERE s.check_due AND s.last_received_at < $1
               ORDER BY s.chain, s.group_id, s.store_id""",
            quiet_before,
        )
        return [
            DueCheck(
                chain=r["chain"],
                store_id=r["store_id"],
                group_id=r["group_id"],
                anchor_store_id=r["anchor_store_id"],
                anchor_last_observed_at=r["anchor_seen"],
                last_observed_at=r["last_observed_at"],
                answered=r["answered_since_check"],
            )
            for r in rows
        ]

    async def compare(self, *, chain: str, store_id: str, anchor: str, since: datetime) -> Comparison:
        """Count the products both hold fresh prices for, and how many of those prices are equal."""
        row = await self.conn.fetchrow(
            """SELECT count(*) AS common,
                      count(*) FILTER (WHERE m.price_cents = a.price_cents) AS equal
               FROM seen_prices m
               JOIN seen_prices a ON a.chain = m.chain AND a.sku = m.sku AND a.store_id = $3
               WHERE m.chain = $1 AND m.store_id = $2 AND m.observed_at >= $4 AND a.observed_at >= $4""",
            chain,
            store_id,
            anchor,
            since,
        )
        assert row is not None
        return Comparison(common=int(row["common"]), equal=int(row["equal"]))

    async def mark_checked(self, *, chain: str, store_ids: Sequence[str], at: datetime) -> None:
        """Record a health check (passed or not) of members."""
        await self.conn.execute(
            """UPDATE stores SET check_due = false, checked_at = $3, answered_since_check = 0
               WHERE chain = $1 AND store_id = ANY($2::text[])""",
            chain,
            list(store_ids),
            at,
        )

    async def clear_check_due(self, *, chain: str, store_id: str) -> None:
        """Stop waiting to check a member whose new prices were too few to judge."""
        await self.conn.execute(
            """UPDATE stores SET check_due = false, answered_since_check = 0
               WHERE chain = $1 AND store_id = $2""",
            chain,
            store_id,
        )

    async def price_matrix(self, *, chain: str, store_ids: Sequence[str], since: datetime) -> PriceMatrix:
        """Load the fresh prices of stores into a matrix (one query, one pass)."""
        rows = await self.conn.fetch(
            """SELECT store_id, sku, price_cents FROM seen_prices
               WHERE chain = $1 AND store_id = ANY($2::text[]) AND observed_at >= $3""",
            chain,
            list(store_ids),
            since,
        )
        stores = sorted({r["store_id"] for r in rows})
        skus = sorted({r["sku"] for r in rows})
        row_of = {s: i for i, s in enumerate(stores)}
        col_of = {s: i for i, s in enumerate(skus)}
        prices = np.zeros((len(stores), len(skus)), dtype=np.int32)
        for r in rows:
            prices[row_of[r["store_id"]], col_of[r["sku"]]] = r["price_cents"]
        seen = await self.conn.fetch(
            "SELECT store_id, last_observed_at FROM stores WHERE chain = $1 AND store_id = ANY($2::text[])",
            chain,
            stores,
        )
        last = {r["store_id"]: r["last_observed_at"].timestamp() for r in seen}
        return PriceMatrix(stores, prices, [last.get(s, 0.0) for s in stores])

    async def unplaced(self, *, chain: str, quiet_before: datetime) -> list[str]:
        """Return a chain's stores without a group whose scrape has gone quiet."""
        rows = await self.conn.fetch(
            """SELECT store_id FROM stores
               WHERE chain = $1 AND group_id IS NULL AND last_received_at < $2 ORDER BY store_id""",
            chain,
            quiet_before,
        )
        return [r["store_id"] for r in rows]

    # --- groups -------------------------------------------------------------------------

    async def groups(self, *, chain: str) -> dict[str, GroupRow]:
        """Return a chain's groups with their members, by group id."""
        rows = await self.conn.fetch(_GROUPS.format(where="g.chain = $1"), chain)
        return {r["group_id"]: _group_row(r) for r in rows}

    async def group(self, *, group_id: str) -> GroupRow | None:
        """Return one group with its members."""
        row = await self.conn.fetchrow(_GROUPS.format(where="g.group_id = $1"), group_id)
        return None if row is None else _group_row(row)

    async def create_group(self, *, group_id: str, chain: str, anchor: str, members: Sequence[str]) -> None:
        """Create a group and place its stores in it."""
        await self.conn.execute(
            "INSERT INTO groups (group_id, chain, anchor_store_id) VALUES ($1, $2, $3)",
            group_id,
            chain,
            anchor,
        )
        await self.place(chain=chain, group_id=group_id, store_ids=[anchor, *members])

    async def place(self, *, chain: str, group_id: str | None, store_ids: Sequence[str]) -> None:
        """Put stores in a group (None: take them out of any)."""
        await self.conn.execute(
            """UPDATE stores SET group_id = $2, check_due = false, answered_since_check = 0
               WHERE chain = $1 AND store_id = ANY($3::text[])""",
            chain,
            group_id,
            list(store_ids),
        )

    async def move_members(self, *, from_group: str, to_group: str) -> None:
        """Move every store of a group into another (a merge)."""
        await self.conn.execute("UPDATE stores SET group_id = $2 WHERE group_id = $1", from_group, to_group)

    async def delete_group(self, *, group_id: str) -> None:
        """Remove a group that was merged away."""
        await self.conn.execute("DELETE FROM groups WHERE group_id = $1", group_id)

    async def bump(self, *, group_id: str) -> int:
        """Increase a group's version; return the new one."""
        version: int = await self.conn.fetchval(
            """UPDATE groups SET version = version + 1, updated_at = now()
               WHERE group_id = $1 RETURNING version""",
            group_id,
        )
        return version

    async def note_rescrape_requested(self, *, group_id: str, at: datetime) -> None:
        """Remember that a re-scrape of the group's anchor was asked for."""
        await self.conn.execute(
            "UPDATE groups SET rescrape_requested_at = $2 WHERE group_id = $1", group_id, at
        )

    async def prune(self, *, chain: str, anchor: str, members: Sequence[str]) -> int:
        """Delete members' prices equal to the anchor's, in one statement; return rows deleted.

        Prices that differ from the anchor's (a store's own exceptions) are kept, so every
        member price can still be answered: its own row, else the anchor's.
        """
        result: str = await self.conn.execute(
            """DELETE FROM latest_prices m USING latest_prices a
               WHERE m.chain = $1 AND m.store_id = ANY($3::text[])
                 AND a.chain = $1 AND a.store_id = $2 AND a.sku = m.sku
                 AND a.price_cents = m.price_cents
                 AND a.was_price_cents IS NOT DISTINCT FROM m.was_price_cents
                 AND a.available = m.available""",
            chain,
            anchor,
            list(members),
        )
        return _rows_affected(result)

    async def keep_answered(self, *, chain: str, store_id: str, anchor: str) -> int:
        """Copy to a member leaving its group the anchor's prices it holds none of; return rows.

        Its anchor answered those for it (pruned, or never written): as its own rows they keep
        answering the same until its next prices replace them or they go stale.
        """
        result: str = await self.conn.execute(
            """INSERT INTO latest_prices (chain, store_id, sku, price_cents, was_price_cents, available,
                                          observed_at)
               SELECT chain, $2, sku, price_cents, was_price_cents, available, observed_at
               FROM seen_prices WHERE chain = $1 AND store_id = $3
               ON CONFLICT (chain, store_id, sku) DO NOTHING""",
            chain,
            store_id,
            anchor,
        )
        return _rows_affected(result)


def _whole_pages(
    batches: Sequence[PricesScrapedPayload], anchor_of: Mapping[tuple[str, str], str]
) -> dict[int, SeenPage]:
    """Return, by batch index, the pages seen whole of stores that are no member, each page on its own.

    A store's pages of a batch (a scrape's category pages, keyed by store) count when each is
    seen whole, no two are the same page and no product is on two: their rows are then apart.
    """
    by_store: dict[tuple[str, str], list[tuple[int, SeenPage | None]]] = {}
    for i, page in enumerate(seen_pages(batches)):
        by_store.setdefault((batches[i].chain, batches[i].store_id), []).append((i, page))
    whole: dict[int, SeenPage] = {}
    for store, pages in by_store.items():
        seen = [page for _, page in pages if page is not None]
        if store in anchor_of or len(seen) < len(pages):
            continue
        if apart(seen):
            whole.update((i, page) for (i, _), page in zip(pages, seen, strict=True))
    return whole


def _page_rows(page: PricesScrapedPayload, sweep: int) -> list[StagedRow]:
    """Return the staging rows of a page seen whole, held by its sweep, a column at a time."""
    prices = page.prices
    assert prices is not None  # a page seen whole came as columns
    count = len(prices.sku)
    return list(
        map(
            StagedRow._make,
            zip(
                repeat(page.chain, count),
                repeat(page.store_id),
                prices.sku,
                prices.price_cents,
                prices.was_price_cents or repeat(None),
                prices.available or repeat(True),
                repeat(prices.observed_at.astimezone(UTC)),
                repeat(sweep),
            ),
        )
    )


def _skus(batch: PricesScrapedPayload) -> Iterable[str]:
    """Return a batch's products, without a tuple per price when they came as columns."""
    return batch.prices.sku if batch.prices is not None else (o.sku for o in batch.observations)


def _rows_at(page: PricesScrapedPayload, positions: Sequence[int]) -> list[StagedRow]:
    """Return the staging rows of some prices of a page that came as columns, seen at once."""
    prices = page.prices
    assert prices is not None  # unanswered_prices judges no other shape
    was, available = prices.was_price_cents, prices.available
    return [
        StagedRow(
            page.chain,
            page.store_id,
            prices.sku[i],
            prices.price_cents[i],
            None if was is None else was[i],
            True if available is None else available[i],
            prices.observed_at,
        )
        for i in positions
    ]
