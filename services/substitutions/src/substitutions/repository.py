"""The substitutions service's SQL: products, cached embeddings, substitute lists."""

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from contracts.events.v1 import ProductObservedPayload
from servicekit.db import Connection
from substitutions.domain.catalogue import Description, SubstituteRow
from substitutions.embeddings import Vectors


def describe(payload: ProductObservedPayload) -> Description:
    """Take the description out of an observation."""
    return Description(
        chain=payload.chain,
        sku=payload.sku,
        name=payload.name,
        brand=payload.brand,
        size=payload.size,
        category=payload.category,
        barcode=payload.barcode,
    )


class SubstitutionsRepository:
    """Raw SQL over one connection; the caller owns the transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def upsert_product(self, *, description: Description, observed_at: datetime) -> bool:
        """Store a product's description unless a newer one is held; return whether it changed."""
        changed = await self.conn.fetchval(
            """INSERT INTO products AS p (chain, sku, name, brand, size, category, barcode, observed_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (chain, sku) DO UPDATE SET
                   name = EXCLUDED.name, brand = EXCLUDED.brand, size = EXCLUDED.size,
                   category = EXCLUDED.category, barcode = EXCLUDED.barcode,
                   observed_at = EXCLUDED.observed_at
               WHERE p.observed_at < EXCLUDED.observed_at
                 AND (p.name, p.brand, p.size, p.category, p.barcode) IS DISTINCT FROM
                     (EXCLUDED.name, EXCLUDED.brand, EXCLUDED.size, EXCLUDED.category, EXCLUDED.barcode)
               RETURNING true""",
            description.chain,
            description.sku,
            description.name,
            description.brand,
            description.size,
            description.category,
            description.barcode,
            observed_at,
        )
        return bool(changed)

    async def products(self) -> list[Description]:
        """Return every product held, in a stable order."""
        rows = await self.conn.fetch(
            "SELECT chain, sku, name, brand, size, category, barcode FROM products ORDER BY chain, sku"
        )
        return [Description(**dict(row)) for row in rows]

    async def cached_vectors(self, *, model: str, texts: Sequence[str]) -> dict[str, Vectors]:
        """Return the cached embeddings of those texts that have one."""
        rows = await self.conn.fetch(
            "SELECT text, vector FROM embeddings WHERE model = $1 AND text = ANY($2::text[])",
            model,
            list(texts),
        )
        return {row["text"]: np.frombuffer(row["vector"], dtype="<f4") for row in rows}

    async def store_vectors(self, *, model: str, vectors: Mapping[str, Vectors]) -> None:
        """Cache new embeddings; a text cached meanwhile by another writer is kept as it is."""
        if not vectors:
            return
        await self.conn.execute(
            """INSERT INTO embeddings (model, text, vector)
               SELECT $1, text, vector FROM unnest($2::text[], $3::bytea[]) AS v(text, vector)
               ON CONFLICT (model, text) DO NOTHING""",
            model,
            list(vectors),
            [np.asarray(vector, dtype="<f4").tobytes() for vector in vectors.values()],
        )

    async def substitutes(
        self, *, chain: str, sku: str, levels: Sequence[str] | None = None
    ) -> list[SubstituteRow] | None:
        """Return a product's substitutes, optionally of some levels only; None when it is unknown."""
        raw = await self.conn.fetchval(
            "SELECT substitutes FROM substitutes WHERE chain = $1 AND sku = $2", chain, sku
        )
        if raw is None:
            return None
        rows: list[SubstituteRow] = json.loads(raw)
        return [row for row in rows if levels is None or row["level"] in levels]

    async def names(self, *, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Return the names of products by chain and sku."""
        rows = await self.conn.fetch(
            """SELECT p.chain, p.sku, p.name FROM products p
               JOIN unnest($1::text[], $2::text[]) AS k(chain, sku) USING (chain, sku)""",
            [chain for chain, _ in keys],
            [sku for _, sku in keys],
        )
        return {(row["chain"], row["sku"]): row["name"] for row in rows}

    async def lists(self) -> dict[tuple[str, str], list[SubstituteRow]]:
        """Return every product's stored list."""
        rows = await self.conn.fetch("SELECT chain, sku, substitutes FROM substitutes")
        return {(row["chain"], row["sku"]): json.loads(row["substitutes"]) for row in rows}

    async def save_lists(self, *, lists: Mapping[tuple[str, str], list[SubstituteRow]]) -> None:
        """Store the current lists of products."""
        if not lists:
            return
        keys = list(lists)
        await self.conn.execute(
            """INSERT INTO substitutes (chain, sku, substitutes)
               SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])
               ON CONFLICT (chain, sku)
               DO UPDATE SET substitutes = EXCLUDED.substitutes, computed_at = now()""",
            [chain for chain, _ in keys],
            [sku for _, sku in keys],
            [json.dumps(lists[key]) for key in keys],
        )

    async def stats(self) -> dict[str, Any]:
        """Count products, cached embeddings and substitutes per level."""
        row = await self.conn.fetchrow(
            """SELECT (SELECT count(*) FROM products) AS products,
                      (SELECT count(*) FROM embeddings) AS embeddings,
                      (SELECT count(*) FROM substitutes) AS lists"""
        )
        levels = await self.conn.fetch(
            """SELECT s->>'level' AS level, count(*) AS n
               FROM substitutes, jsonb_array_elements(substitutes) AS s GROUP BY 1 ORDER BY 1"""
        )
        counts = dict(row) if row is not None else {}
        return {**counts, "substitutes": {r["level"]: r["n"] for r in levels}}
