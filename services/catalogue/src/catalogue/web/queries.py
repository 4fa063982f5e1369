"""The web page's own reads: stores to choose from, groups with members, a product's bargains."""

from dataclasses import dataclass
from datetime import datetime

from catalogue.queries import BARGAINS_NAMED, product_from
from catalogue.repository import PRODUCT_COLUMNS, ProductRow
from catalogue.views import BargainView
from servicekit.db import Connection


@dataclass(frozen=True, slots=True)
class StoreRow:
    """A store the catalogue knows (from prices or a group), and the anchor answering for it."""

    chain: str
    store_id: str
    group_id: str | None
    anchor_store_id: str | None


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A store group as the catalogue folded it: anchor first, then members."""

    chain: str
    group_id: str
    version: int
    anchor_store_id: str
    members: tuple[str, ...]
    anchor_prices: int

    @property
    def answered(self) -> int:
        """Return the store prices the anchor's prices answer: its own and each member's."""
        return self.anchor_prices * (1 + len(self.members))


class WebQueries:
    """Raw SQL reads over one connection for the pages the JSON API does not serve."""

    def __init__(self, conn: Connection, *, fresh_after: datetime) -> None:
        self.conn = conn
        self.fresh_after = fresh_after

    async def stores(self) -> list[StoreRow]:
        """Return every known store, by chain and id: placed ones with their group, else priced ones."""
        rows = await self.conn.fetch(
            """SELECT chain, store_id, group_id, anchor_store_id FROM placements
               UNION ALL
               SELECT DISTINCT p.chain, p.store_id, NULL, NULL FROM prices p
               WHERE NOT EXISTS (SELECT 1 FROM placements pl
                                 WHERE pl.chain = p.chain AND pl.store_id = p.store_id)
               ORDER BY chain, store_id"""
        )
        return [StoreRow(**dict(r)) for r in rows]

    async def chains(self) -> list[str]:
        """Return the chains with products in the catalogue."""
        return [
            r["chain"] for r in await self.conn.fetch("SELECT DISTINCT chain FROM products ORDER BY chain")
        ]

    async def groups(self) -> list[GroupRow]:
        """Return every group with its anchor, its other members and the anchor's fresh prices."""
        rows = await self.conn.fetch(
            """WITH groups AS (
                   SELECT pl.chain, pl.group_id, g.group_version AS version,
                          min(pl.anchor_store_id) AS anchor,
                          coalesce(array_agg(pl.store_id ORDER BY pl.store_id)
                                   FILTER (WHERE pl.store_id <> pl.anchor_store_id), '{}') AS members
                   FROM placements pl JOIN store_groups g USING (chain, group_id)
                   GROUP BY pl.chain, pl.group_id, g.group_version)
               SELECT g.*, (SELECT count(*) FROM current_prices p
                            WHERE (p.chain, p.store_id) = (g.chain, g.anchor) AND p.observed_at >= $1) AS held
               FROM groups g ORDER BY g.chain, g.group_id""",
            self.fresh_after,
        )
        return [
            GroupRow(r["chain"], r["group_id"], r["version"], r["anchor"], tuple(r["members"]), r["held"])
            for r in rows
        ]

    async def bargains_of(self, *, chain: str, sku: str) -> list[BargainView]:
        """Return a product's current bargains at any store, best first."""
        rows = await self.conn.fetch(
            BARGAINS_NAMED
            + """
               WHERE b.chain = $1 AND b.sku = $2 AND NOT b.expired AND b.observed_at >= $3
               ORDER BY b.score DESC, b.bargain_id""",
            chain,
            sku,
            self.fresh_after,
        )
        return [BargainView(**dict(r)) for r in rows]

    async def in_category(self, *, category: str, chain: str | None, limit: int) -> list[ProductRow]:
        """Return products of a shared category (or below it), or of a chain's category, by name."""
        rows = await self.conn.fetch(
            f"""SELECT {PRODUCT_COLUMNS} FROM products
                WHERE (shared_category = $1 OR shared_category LIKE $1 || '/%' OR category = $1)
                  AND ($2::text IS NULL OR chain = $2)
                ORDER BY name, chain, sku LIMIT $3""",
            category,
            chain,
            limit,
        )
        return [product_from(r) for r in rows]
