"""The bargains service's read side: what its HTTP API serves."""

from dataclasses import dataclass
from datetime import datetime

from bargains.domain.listing import ListedBargain
from bargains.repository import BARGAIN_COLUMNS, bargain_from
from servicekit.db import Connection


@dataclass(frozen=True, slots=True)
class FlagRow:
    """A flagged price as served."""

    chain: str
    store_id: str
    sku: str
    kind: str
    reason: str
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One run of an unchanged price at a store, as served."""

    store_id: str
    price_cents: int
    was_price_cents: int | None
    starts_at: datetime
    ends_at: datetime


class BargainsQueries:
    """Raw SQL reads over one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def anchor_of(self, *, chain: str, store_id: str) -> str:
        """Return the store that answers for this one: its anchor, or itself."""
        anchor: str | None = await self.conn.fetchval(
            "SELECT anchor_store_id FROM placements WHERE chain = $1 AND store_id = $2", chain, store_id
        )
        return anchor or store_id

    async def list_bargains(
        self,
        *,
        chain: str | None,
        store_id: str | None,
        category: str | None,
        kind: str | None,
        min_discount: float | None,
        fresh_after: datetime,
        after: str | None,
        limit: int,
    ) -> list[ListedBargain]:
        """Return bargains in bargain-id order (unique, stable), after a cursor."""
        rows = await self.conn.fetch(
            f"""SELECT {BARGAIN_COLUMNS} FROM bargains
               WHERE ($1::text IS NULL OR chain = $1) AND ($2::text IS NULL OR store_id = $2)
                 AND ($3::text IS NULL OR category = $3) AND ($4::text IS NULL OR kind = $4)
                 AND ($5::float8 IS NULL OR (reference_cents > 0
                      AND (reference_cents - price_cents)::float8 / reference_cents >= $5))
                 AND observed_at >= $6 AND ($7::text IS NULL OR bargain_id > $7)
               ORDER BY bargain_id LIMIT $8""",
            chain,
            store_id,
            category,
            kind,
            min_discount,
            fresh_after,
            after,
            limit,
        )
        return [bargain_from(r) for r in rows]

    async def history(self, *, chain: str, sku: str, store_id: str | None) -> list[HistoryRow]:
        """Return a product's price history, store by store."""
        rows = await self.conn.fetch(
            # The history as read: a run a sweep holds ends when the sweep was last seen.
            """SELECT store_id, price_cents, was_price_cents, starts_at, ends_at FROM runs
               WHERE chain = $1 AND sku = $2 AND ($3::text IS NULL OR store_id = $3)
               ORDER BY store_id, starts_at""",
            chain,
            sku,
            store_id,
        )
        return [
            HistoryRow(
                store_id=r["store_id"],
                price_cents=r["price_cents"],
                was_price_cents=r["was_price_cents"],
                starts_at=r["starts_at"],
                ends_at=r["ends_at"],
            )
            for r in rows
        ]

    async def archived_before(self, chain: str) -> datetime | None:
        """Return the end of the newest month of a chain's history that lies in the archive, if any."""
        before: datetime | None = await self.conn.fetchval(
            """SELECT (max(month) + interval '1 month') AT TIME ZONE 'UTC' FROM archived_months
               WHERE chain = $1""",
            chain,
        )
        return before

    async def list_flags(self, *, chain: str | None, kind: str | None, limit: int) -> list[FlagRow]:
        """Return flagged prices (illusory discounts, suspicious outliers)."""
        rows = await self.conn.fetch(
            """SELECT chain, store_id, sku, kind, reason, observed_at FROM flags
               WHERE ($1::text IS NULL OR chain = $1) AND ($2::text IS NULL OR kind = $2)
               ORDER BY chain, store_id, sku, kind LIMIT $3""",
            chain,
            kind,
            limit,
        )
        return [
            FlagRow(
                chain=r["chain"],
                store_id=r["store_id"],
                sku=r["sku"],
                kind=r["kind"],
                reason=r["reason"],
                observed_at=r["observed_at"],
            )
            for r in rows
        ]
