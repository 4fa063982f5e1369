"""The catalogue's reads: typed rows and views for the JSON API and the web page, no HTTP here."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from catalogue.domain.cursor import ExportKey
from catalogue.domain.search import fold
from catalogue.repository import PRICE_COLUMNS, PRODUCT_COLUMNS, PriceRow, ProductRow
from catalogue.tokens import token_digest
from catalogue.views import (
    BargainView,
    CategoryNode,
    SegmentView,
    UnmappedCategory,
)
from servicekit.db import Connection

Product = tuple[str, str]
"""A product: chain and sku."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A price answered for a store: its own, or its anchor's."""

    store_id: str
    price: PriceRow


@dataclass(frozen=True, slots=True)
class ExportChunk:
    """A page of the export: its prices as a JSON array of ExportPrice, their count, the last key, more."""

    prices_json: str
    count: int
    last: ExportKey | None
    more: bool


@dataclass(frozen=True, slots=True)
class SubstituteRow:
    """A product's substitute as the substitutions service announced it."""

    level: str
    chain: str
    sku: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class StoreCount:
    """Prices stored for a store, and prices answered for it (a member's through its anchor)."""

    chain: str
    store_id: str
    anchor_store_id: str
    held: int
    answered: int


def price_from(r: asyncpg.Record) -> PriceRow:
    """Build a price row from a row of PRICE_COLUMNS."""
    return PriceRow(**{c: r[c] for c in PRICE_COLUMNS.split(", ")})


def product_from(r: asyncpg.Record) -> ProductRow:
    """Build a product row from a row of PRODUCT_COLUMNS."""
    return ProductRow(**{c: r[c] for c in PRODUCT_COLUMNS.split(", ")})


_PRICES = ", ".join(f"p.{c}" for c in PRICE_COLUMNS.split(", "))

# A member's own sighting stands until its anchor's price changes after it: a price a member
# charges apart from its zone is answered as the member showed it, a zone's new price as the
# anchor shows it. (Newest-sighting-wins answered the anchor's unchanged price instead.)
# The anchor's current run is its newest, so its start is when the anchor's price last changed.
_OWN_STANDS = """(p.store_id = {store} AND p.observed_at >= coalesce(
    (SELECT anchors_run.run_starts_at FROM prices anchors_run
     WHERE anchors_run.chain = p.chain AND anchors_run.store_id = {anchor} AND anchors_run.sku = p.sku),
    '-infinity'))"""


BARGAINS_NAMED = """SELECT b.bargain_id, b.kind, b.chain, b.store_id, b.sku, p.name, p.brand, p.size,
       p.shared_category, b.price_cents, b.reference_cents, b.score, b.reason, b.observed_at
FROM bargains b LEFT JOIN products p ON p.chain = b.chain AND p.sku = b.sku"""
"""Bargains with their products' names, as BargainView's fields: filtered by whoever reads them."""


class CatalogueQueries:
    """Raw SQL reads over one connection; only prices observed since `fresh_after` are answered.

    A current price's last sighting is read from `current_prices`: a sweep may hold it.
    """

    def __init__(self, conn: Connection, *, fresh_after: datetime) -> None:
        self.conn = conn
        self.fresh_after = fresh_after

    async def anchor_of(self, *, chain: str, store_id: str) -> str:
        """Return the store that answers for this one: its anchor, or itself."""
        anchor: str | None = await self.conn.fetchval(
            "SELECT anchor_store_id FROM placements WHERE chain = $1 AND store_id = $2", chain, store_id
        )
        return anchor or store_id

    async def unknown_stores(self, stores: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """Return those of these stores (chain, store id) the catalogue never priced nor placed, in order."""
        if not stores:
            return []
        rows = await self.conn.fetch(
            """SELECT k.chain, k.store_id FROM unnest($1::text[], $2::text[]) AS k(chain, store_id)
               WHERE NOT EXISTS (SELECT FROM stores s WHERE s.chain = k.chain AND s.store_id = k.store_id)
                 AND NOT EXISTS (SELECT FROM placements p
                                 WHERE p.chain = k.chain AND p.store_id = k.store_id)""",
            [c for c, _ in stores],
            [s for _, s in stores],
        )
        unknown = {(r["chain"], r["store_id"]) for r in rows}
        return [store for store in stores if store in unknown]

    async def is_chain(self, chain: str) -> bool:
        """Tell whether the catalogue saw a product or priced a store of this chain."""
        known = await self.conn.fetchval(
            """SELECT EXISTS (SELECT FROM products WHERE chain = $1)
                      OR EXISTS (SELECT FROM stores WHERE chain = $1)""",
            chain,
        )
        return bool(known)

    async def chains(self) -> list[str]:
        """Return every chain the catalogue saw a product or priced a store of, in order."""
        rows = await self.conn.fetch(
            "SELECT chain FROM products UNION SELECT chain FROM stores ORDER BY chain"
        )
        return [r["chain"] for r in rows]

    async def store_ids(self, *, chain: str, limit: int) -> list[str]:
        """Return the first store ids of a chain the catalogue knows, in order (a hint for a wrong one)."""
        rows = await self.conn.fetch(
            """SELECT store_id FROM (SELECT store_id FROM stores WHERE chain = $1
                                     UNION SELECT store_id FROM placements WHERE chain = $1) s
               ORDER BY store_id LIMIT $2""",
            chain,
            limit,
        )
        return [r["store_id"] for r in rows]

    async def products(self, products: Sequence[Product]) -> dict[Product, ProductRow]:
        """Return the products known among these."""
        if not products:
            return {}
        rows = await self.conn.fetch(
            f"""SELECT {PRODUCT_COLUMNS} FROM products
                JOIN unnest($1::text[], $2::text[]) AS k(chain, sku) USING (chain, sku)""",
            [c for c, _ in products],
            [s for _, s in products],
        )
        return {(r["chain"], r["sku"]): product_from(r) for r in rows}

    async def search(
        self, *, query: str, chain: str | None, category: str | None, limit: int
    ) -> list[tuple[ProductRow, float]]:
        """Return products whose name or brand matches the query best, forgiving spelling."""
        rows = await self.conn.fetch(
            f"""SELECT {PRODUCT_COLUMNS},
                       1 - ($1 OPERATOR(extensions.<<->) search_text) AS score
                FROM products
                WHERE $1 OPERATOR(extensions.<%) search_text
                  AND ($2::text IS NULL OR chain = $2)
                  AND ($3::text IS NULL OR shared_category = $3 OR shared_category LIKE $3 || '/%'
                       OR category = $3)
                ORDER BY $1 OPERATOR(extensions.<<->) search_text, name, chain, sku
                LIMIT $4""",
            fold(query),
            chain,
            category,
            limit,
        )
        return [(product_from(r), float(r["score"])) for r in rows]

    async def answers(self, *, chain: str, store_ids: Sequence[str], skus: Sequence[str]) -> list[Answer]:
        """Return the fresh prices of skus at stores, a member's through its anchor (see _OWN_STANDS)."""
        if not store_ids or not skus:
            return []
        rows = await self.conn.fetch(
            f"""WITH asked AS (
                    SELECT s.store_id, coalesce(pl.anchor_store_id, s.store_id) AS anchor
                    FROM unnest($2::text[]) AS s(store_id)
                    LEFT JOIN placements pl ON pl.chain = $1 AND pl.store_id = s.store_id)
                SELECT DISTINCT ON (a.store_id, p.sku) a.store_id AS asked, {_PRICES}
                FROM asked a JOIN current_prices p
                  ON p.chain = $1 AND p.store_id IN (a.store_id, a.anchor) AND p.sku = ANY($3::text[])
                WHERE p.observed_at >= $4
                ORDER BY a.store_id, p.sku, {_OWN_STANDS.format(store="a.store_id", anchor="a.anchor")} DESC,
                         p.observed_at DESC""",
            chain,
            list(store_ids),
            list(skus),
            self.fresh_after,
        )
        return [Answer(r["asked"], price_from(r)) for r in rows]

    async def cheapest(self, products: Sequence[Product]) -> dict[Product, PriceRow]:
        """Return each product's cheapest fresh, available price at any store of its chain."""
        if not products:
            return {}
        rows = await self.conn.fetch(
            f"""SELECT DISTINCT ON (p.chain, p.sku) {_PRICES}
                FROM unnest($1::text[], $2::text[]) AS k(chain, sku)
                JOIN current_prices p ON p.chain = k.chain AND p.sku = k.sku
                WHERE p.observed_at >= $3 AND p.available
                ORDER BY p.chain, p.sku, p.price_cents, p.store_id""",
            [c for c, _ in products],
            [s for _, s in products],
            self.fresh_after,
        )
        return {(r["chain"], r["sku"]): price_from(r) for r in rows}

    async def history(self, *, chain: str, sku: str, store_ids: Sequence[str]) -> list[SegmentView]:
        """Return a product's change-only history at these stores, store by store, oldest first."""
        # The runs that ended, then each store's current run, kept with its current price.
        rows = await self.conn.fetch(
            """SELECT store_id, starts_at, ends_at, price_cents, was_price_cents FROM history
               WHERE chain = $1 AND sku = $2 AND store_id = ANY($3::text[])
               UNION ALL
               SELECT store_id, run_starts_at, observed_at, price_cents, was_price_cents FROM current_prices
               WHERE chain = $1 AND sku = $2 AND store_id = ANY($3::text[])
               ORDER BY store_id, starts_at""",
            chain,
            sku,
            list(store_ids),
        )
        return [SegmentView(**dict(r)) for r in rows]

    async def archived_before(self, chains: Sequence[str]) -> dict[str, datetime]:
        """Return, per chain, the end of the newest month of its history that lies in the archive."""
        rows = await self.conn.fetch(
            """SELECT chain, (max(month) + interval '1 month') AT TIME ZONE 'UTC' AS before
               FROM archived_months WHERE chain = ANY($1::text[]) GROUP BY chain""",
            list(chains),
        )
        return {r["chain"]: r["before"] for r in rows}

    async def substitutes(self, *, chain: str, sku: str) -> list[SubstituteRow]:
        """Return a product's substitutes, most alike first."""
        rows = await self.conn.fetch(
            """SELECT level, other_chain, other_sku, score, reason FROM substitutes
               WHERE chain = $1 AND sku = $2 ORDER BY level, score DESC, other_chain, other_sku""",
            chain,
            sku,
        )
        return [
            SubstituteRow(r["level"], r["other_chain"], r["other_sku"], r["score"], r["reason"]) for r in rows
        ]

    async def identical(self, products: Sequence[Product]) -> dict[Product, list[Product]]:
        """Return, per product, the identical products at other chains: L1/L2 either way, or the barcode."""
        if not products:
            return {}
        rows = await self.conn.fetch(
            """WITH k AS (SELECT * FROM unnest($1::text[], $2::text[]) AS k(chain, sku))
               SELECT k.chain, k.sku, s.other_chain AS o_chain, s.other_sku AS o_sku
                 FROM k JOIN substitutes s ON s.chain = k.chain AND s.sku = k.sku AND s.level IN ('L1', 'L2')
               UNION
               SELECT k.chain, k.sku, s.chain, s.sku
                 FROM k JOIN substitutes s ON s.other_chain = k.chain AND s.other_sku = k.sku
                  AND s.level IN ('L1', 'L2')
               UNION
               SELECT k.chain, k.sku, o.chain, o.sku
                 FROM k JOIN products p ON p.chain = k.chain AND p.sku = k.sku
                 JOIN products o ON o.barcode = p.barcode AND o.chain <> p.chain""",
            [c for c, _ in products],
            [s for _, s in products],
        )
        found: dict[Product, list[Product]] = {p: [] for p in products}
        for r in rows:
            if r["o_chain"] != r["chain"]:
                found[r["chain"], r["sku"]].append((r["o_chain"], r["o_sku"]))
        return {p: sorted(set(others)) for p, others in found.items()}

    async def export_page(
        self,
        *,
        chain: str | None,
        store_id: str | None,
        observed_since: datetime | None,
        after: ExportKey | None,
        limit: int,
    ) -> ExportChunk:
        """Return up to `limit` current prices after a key, in (chain, store, sku) order, as JSON.

        Every known store is answered, a member through its anchor: a store at a time, each a
        merge of its own and its anchor's index ranges, so a page costs what it returns.
        PostgreSQL writes the JSON (ExportPrice's fields): a page of 10,000 prices is not
        10,000 Python objects.
        """
        since = max(self.fresh_after, observed_since) if observed_since else self.fresh_after
        stores = await self.conn.fetch(
            """SELECT s.chain, s.store_id, coalesce(pl.anchor_store_id, s.store_id) AS anchor
               FROM (SELECT chain, store_id FROM stores UNION SELECT chain, store_id FROM placements) s
               LEFT JOIN placements pl USING (chain, store_id)
               WHERE ($1::text IS NULL OR s.chain = $1) AND ($2::text IS NULL OR s.store_id = $2)
                 AND ($3::text IS NULL OR (s.chain, s.store_id) >= ($3, $4))
               ORDER BY s.chain, s.store_id""",
            chain,
            store_id,
            after.chain if after else None,
            after.store_id if after else None,
        )
        parts: list[str] = []
        count, last = 0, None
        for store in stores:
            key = (store["chain"], store["store_id"])
            wanted = limit - count
            row = await self.conn.fetchrow(
                """SELECT count(*) FILTER (WHERE n <= $6) AS rows, bool_or(n > $6) AS more,
                          max(sku) FILTER (WHERE n <= $6) AS last_sku,
                          json_agg(json_build_object(
                              'chain', $1::text, 'store_id', $7::text, 'sku', sku, 'answered_by', store_id,
                              'price_cents', price_cents, 'was_price_cents', was_price_cents,
                              'member_price_cents', member_price_cents, 'available', available,
                              'sold_by', sold_by, 'observed_at', observed_at) ORDER BY sku)
                              FILTER (WHERE n <= $6) AS prices
                   FROM (SELECT *, row_number() OVER (ORDER BY sku) AS n FROM (
                         SELECT DISTINCT ON (sku) store_id, sku, price_cents, was_price_cents,
                                member_price_cents, available, sold_by, observed_at
                         FROM current_prices p
                         WHERE chain = $1 AND store_id IN ($2, $3) AND ($4::text IS NULL OR sku > $4)
                           AND observed_at >= $5
                         ORDER BY sku, """
                + _OWN_STANDS.format(store="$2", anchor="$3")
                + """ DESC, observed_at DESC
                         LIMIT $6 + 1) AS answered) AS numbered""",
                key[0],
                key[1],
                store["anchor"],
                after.sku if after and (after.chain, after.store_id) == key else None,
                since,
                wanted,
                key[1],
            )
            assert row is not None  # an aggregate always answers one row
            if row["rows"]:
                parts.append(row["prices"][1:-1])
                count += row["rows"]
                last = ExportKey(key[0], key[1], row["last_sku"])
            # A full page still asks the next store for one row: a cursor only when more follow.
            if row["more"]:
                return ExportChunk("[" + ",".join(parts) + "]", count, last, more=True)
        return ExportChunk("[" + ",".join(parts) + "]", count, last, more=False)

    async def bargains(
        self,
        *,
        chain: str | None,
        store_id: str | None,
        category: str | None,
        kind: str | None,
        limit: int,
    ) -> list[BargainView]:
        """Return current bargains with their products' names, best score first."""
        rows = await self.conn.fetch(
            BARGAINS_NAMED
            + """
               WHERE NOT b.expired AND b.observed_at >= $1
                 AND ($2::text IS NULL OR b.chain = $2) AND ($3::text IS NULL OR b.store_id = $3)
                 AND ($4::text IS NULL OR p.shared_category = $4 OR p.shared_category LIKE $4 || '/%'
                      OR p.category = $4)
                 AND ($5::text IS NULL OR b.kind = $5)
               ORDER BY b.score DESC, b.bargain_id
               LIMIT $6""",
            self.fresh_after,
            chain,
            store_id,
            category,
            kind,
            limit,
        )
        return [BargainView(**dict(r)) for r in rows]

    async def store_counts(self, *, chain: str | None = None) -> list[StoreCount]:
        """Return, per known store, the prices stored for it and the fresh prices answered for it."""
        rows = await self.conn.fetch(
            """WITH known AS (SELECT chain, store_id FROM stores
                              UNION SELECT chain, store_id FROM placements),
                    answering AS (SELECT k.chain, k.store_id,
                                         coalesce(pl.anchor_store_id, k.store_id) AS anchor
                                  FROM known k LEFT JOIN placements pl USING (chain, store_id)
                                  WHERE $2::text IS NULL OR k.chain = $2)
               SELECT a.chain, a.store_id, a.anchor,
                      (SELECT count(*) FROM prices p
                       WHERE p.chain = a.chain AND p.store_id = a.store_id) AS held,
                      (SELECT count(DISTINCT p.sku) FROM current_prices p
                       WHERE p.chain = a.chain AND p.store_id IN (a.store_id, a.anchor)
                         AND p.observed_at >= $1) AS answered
               FROM answering a ORDER BY a.chain, a.store_id""",
            self.fresh_after,
            chain,
        )
        return [
            StoreCount(r["chain"], r["store_id"], r["anchor"], int(r["held"]), int(r["answered"]))
            for r in rows
        ]

    async def category_counts(self) -> list[tuple[str, int, int]]:
        """Return each shared category with its products and current bargains (not counting below it)."""
        rows = await self.conn.fetch(
            """SELECT p.shared_category AS path, count(*) AS products,
                      count(*) FILTER (WHERE EXISTS (
                          SELECT 1 FROM bargains b WHERE b.chain = p.chain AND b.sku = p.sku
                            AND NOT b.expired AND b.observed_at >= $1)) AS bargains
               FROM products p WHERE p.shared_category IS NOT NULL
               GROUP BY p.shared_category ORDER BY p.shared_category""",
            self.fresh_after,
        )
        return [(r["path"], r["products"], r["bargains"]) for r in rows]

    async def unmapped(self) -> list[UnmappedCategory]:
        """Return the chains' categories with products not on the shared tree."""
        rows = await self.conn.fetch(
            """SELECT chain, category, count(*) AS products FROM products
               WHERE shared_category IS NULL GROUP BY chain, category ORDER BY chain, category NULLS FIRST"""
        )
        return [UnmappedCategory(**dict(r)) for r in rows]

    async def token_name(self, token: str) -> str | None:
        """Return the name of the client holding this token, or None for an unknown token."""
        name: str | None = await self.conn.fetchval(
            "SELECT name FROM api_tokens WHERE token_sha256 = $1", token_digest(token)
        )
        return name


def category_tree(counts: Sequence[tuple[str, int, int]]) -> list[CategoryNode]:
    """Build the shared tree from counts per path; a node counts what sits in it and below it."""
    totals: dict[str, list[int]] = {}
    for path, products, bargains in counts:
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            node = totals.setdefault("/".join(parts[:depth]), [0, 0])
            node[0] += products
            node[1] += bargains

    def children_of(parent: str | None) -> list[CategoryNode]:
        depth = 0 if parent is None else parent.count("/") + 1
        return [
            CategoryNode(
                path=path,
                name=path.rsplit("/", 1)[-1],
                products=totals[path][0],
                bargains=totals[path][1],
                children=children_of(path),
            )
            for path in sorted(totals)
            if path.count("/") == depth and (parent is None or path.startswith(parent + "/"))
        ]

    return children_of(None)
