"""The grouping service's read side: groups, a store's group and prices, and counts for the API and gauges."""

from dataclasses import dataclass
from datetime import datetime

from servicekit.db import Database


@dataclass(frozen=True, slots=True)
class GroupListing:
    """A group as the API lists it."""

    group_id: str
    chain: str
    anchor_store_id: str
    version: int
    updated_at: datetime
    members: tuple[str, ...]
    # When grouping last checked a member against the anchor (None: no member checked yet).
    verified_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoreGroup:
    """A store's group (None when it has none), its anchor and its check times."""

    chain: str
    store_id: str
    group_id: str | None
    anchor_store_id: str | None
    version: int | None
    checked_at: datetime | None
    last_observed_at: datetime | None


@dataclass(frozen=True, slots=True)
class AnsweredPrice:
    """A store's latest price of a product, and the store whose row answers it (itself or its anchor)."""

    sku: str
    price_cents: int
    was_price_cents: int | None
    available: bool
    observed_at: datetime
    answered_by: str


@dataclass(frozen=True, slots=True)
class StorePrices:
    """A store's latest prices, a pruned member's answered from its anchor."""

    anchor_store_id: str | None
    prices: list[AnsweredPrice]


@dataclass(frozen=True, slots=True)
class Counts:
    """Stores (and those without a group), groups, observations, prices held and answerable.

    Answerable prices are what an unpruned table would hold: every store of a group answers
    its anchor's products, so held/answerable is the compression ratio.
    """

    stores: int
    stores_unplaced: int
    groups: int
    observations_received: int
    prices_held: int
    prices_answerable: int


class GroupingQueries:
    """Raw SQL reads over the service's pool, one connection per call."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_groups(self, *, chain: str | None, after: str | None, limit: int) -> list[GroupListing]:
        """Return groups ordered by id, after a cursor."""
        async with self.db.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT g.group_id, g.chain, g.anchor_store_id, g.version, g.updated_at,
                          coalesce(array_agg(s.store_id ORDER BY s.store_id)
                                   FILTER (WHERE s.store_id <> g.anchor_store_id), '{}') AS members,
                          max(s.checked_at) AS verified_at
                   FROM groups g LEFT JOIN stores s ON s.group_id = g.group_id
                   WHERE ($1::text IS NULL OR g.chain = $1) AND ($2::text IS NULL OR g.group_id > $2)
                   GROUP BY g.group_id ORDER BY g.group_id LIMIT $3""",
                chain,
                after,
                limit,
            )
        return [
            GroupListing(
                group_id=r["group_id"],
                chain=r["chain"],
                anchor_store_id=r["anchor_store_id"],
                version=r["version"],
                updated_at=r["updated_at"],
                members=tuple(r["members"]),
                verified_at=r["verified_at"],
            )
            for r in rows
        ]

    async def store_group(self, *, chain: str, store_id: str) -> StoreGroup | None:
        """Return a store's group, its anchor and its check times; None for a store never seen."""
        async with self.db.pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT s.group_id, g.anchor_store_id, g.version, s.checked_at, s.last_observed_at
                   FROM stores s LEFT JOIN groups g ON g.group_id = s.group_id
                   WHERE s.chain = $1 AND s.store_id = $2""",
                chain,
                store_id,
            )
        if row is None:
            return None
        return StoreGroup(
            chain=chain,
            store_id=store_id,
            group_id=row["group_id"],
            anchor_store_id=row["anchor_store_id"],
            version=row["version"],
            checked_at=row["checked_at"],
            last_observed_at=row["last_observed_at"],
        )

    async def store_prices(self, *, chain: str, store_id: str) -> StorePrices | None:
        """Answer a store's prices: its own rows first, the rest from its anchor (None: unknown store)."""
        group = await self.store_group(chain=chain, store_id=store_id)
        if group is None:
            return None
        anchor = group.anchor_store_id
        async with self.db.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT DISTINCT ON (sku) sku, price_cents, was_price_cents, available, observed_at,
                          store_id AS answered_by
                   FROM seen_prices
                   WHERE chain = $1 AND store_id IN ($2, coalesce($3, $2))
                   ORDER BY sku, (store_id = $2) DESC""",
                chain,
                store_id,
                anchor,
            )
        prices = [
            AnsweredPrice(
                sku=r["sku"],
                price_cents=r["price_cents"],
                was_price_cents=r["was_price_cents"],
                available=r["available"],
                observed_at=r["observed_at"],
                answered_by=r["answered_by"],
            )
            for r in rows
        ]
        return StorePrices(anchor_store_id=anchor, prices=prices)

    async def counts(self) -> Counts:
        """Count stores (and those without a group), groups, observations, prices held and answerable."""
        async with self.db.pool.acquire() as conn:
            row = await conn.fetchrow(
                """WITH held AS (SELECT chain, store_id, count(*) AS n FROM latest_prices GROUP BY 1, 2),
                        sizes AS (SELECT g.chain, g.anchor_store_id, count(*) AS size
                                  FROM groups g JOIN stores s ON s.group_id = g.group_id
                                  GROUP BY g.group_id, g.chain, g.anchor_store_id)
                   SELECT (SELECT count(*) FROM stores) AS stores,
                          (SELECT count(*) FROM stores WHERE group_id IS NULL) AS stores_unplaced,
                          (SELECT count(*) FROM groups) AS groups,
                          (SELECT coalesce(sum(observed), 0) FROM stores) AS observations_received,
                          (SELECT coalesce(sum(n), 0) FROM held) AS prices_held,
                          (SELECT coalesce(sum(z.size * h.n), 0) FROM sizes z
                           JOIN held h ON h.chain = z.chain AND h.store_id = z.anchor_store_id)
                          + (SELECT coalesce(sum(h.n), 0) FROM held h
                             JOIN stores s USING (chain, store_id)
                             WHERE s.group_id IS NULL) AS prices_answerable"""
            )
        assert row is not None
        return Counts(
            stores=int(row["stores"]),
            stores_unplaced=int(row["stores_unplaced"]),
            groups=int(row["groups"]),
            observations_received=int(row["observations_received"]),
            prices_held=int(row["prices_held"]),
            prices_answerable=int(row["prices_answerable"]),
        )
