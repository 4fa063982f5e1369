"""The substitutions service's write side: products, cached embeddings, substitute lists."""

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from servicekit.db import Connection
from substitutions.domain.catalogue import Description, ProductKey, SubstituteRow
from substitutions.embeddings import Vectors


class SubstitutionsRepository(Protocol):
    """What the service layer stores and loads, inside its unit of work."""

    async def upsert_product(self, *, description: Description, observed_at: datetime) -> bool:
        """Store a product's description unless a newer one is held; return whether it changed."""
        ...

    async def products(self) -> list[Description]:
        """Return every product held, in a stable order (by chain, then sku)."""
        ...

    async def cached_vectors(self, *, model: str, texts: Sequence[str]) -> dict[str, Vectors]:
        """Return the cached embeddings of those texts that have one."""
        ...

    async def store_vectors(self, *, model: str, vectors: Mapping[str, Vectors]) -> None:
        """Cache new embeddings; a text cached meanwhile by another writer is kept as it is."""
        ...

    async def lists(self) -> dict[ProductKey, list[SubstituteRow]]:
        """Return every product's stored list."""
        ...

    async def save_lists(
        self, *, lists: Mapping[ProductKey, list[SubstituteRow]], computed_at: datetime
    ) -> None:
        """Store the current lists of products."""
        ...


class PostgresSubstitutionsRepository:
    """Raw SQL over one connection; the unit of work owns the transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def upsert_product(self, *, description: Description, observed_at: datetime) -> bool:
        """Store a product's description unless a newer one is held; return whether it changed."""
        changed = await self.conn.fetchval(
            """INSERT INTO products AS p (chain, sku, name, brand, size, category, barcode, observed_at,
                                          shared_category)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (chain, sku) DO UPDATE SET
                   name = EXCLUDED.name, brand = EXCLUDED.brand, size = EXCLUDED.size,
                   category = EXCLUDED.category, barcode = EXCLUDED.barcode,
                   observed_at = EXCLUDED.observed_at, shared_category = EXCLUDED.shared_category
               WHERE p.observed_at < EXCLUDED.observed_at
                 AND (p.name, p.brand, p.size, p.category, p.barcode, p.shared_category) IS DISTINCT FROM
                     (EXCLUDED.name, EXCLUDED.brand, EXCLUDED.size, EXCLUDED.category, EXCLUDED.barcode,
                      EXCLUDED.shared_category)
               RETURNING true""",
            description.chain,
            description.sku,
            description.name,
            description.brand,
            description.size,
            description.category,
            description.barcode,
            observed_at,
            description.shared_category,
        )
        return bool(changed)

    async def products(self) -> list[Description]:
        """Return every product held, in a stable order (by chain, then sku)."""
        rows = await self.conn.fetch(
            """SELECT chain, sku, name, brand, size, category, barcode, shared_category
               FROM products ORDER BY chain, sku"""
        )
        return [
            Description(
                chain=row["chain"],
                sku=row["sku"],
                name=row["name"],
                brand=row["brand"],
                size=row["size"],
                category=row["category"],
                barcode=row["barcode"],
                shared_category=row["shared_category"],
            )
            for row in rows
        ]

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

    async def lists(self) -> dict[ProductKey, list[SubstituteRow]]:
        """Return every product's stored list."""
        rows = await self.conn.fetch("SELECT chain, sku, substitutes FROM substitutes")
        return {(row["chain"], row["sku"]): substitute_rows(row["substitutes"]) for row in rows}

    async def save_lists(
        self, *, lists: Mapping[ProductKey, list[SubstituteRow]], computed_at: datetime
    ) -> None:
        """Store the current lists of products."""
        if not lists:
            return
        keys = list(lists)
        await self.conn.execute(
            """INSERT INTO substitutes (chain, sku, substitutes, computed_at)
               SELECT chain, sku, substitutes, $4
               FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS l(chain, sku, substitutes)
               ON CONFLICT (chain, sku)
               DO UPDATE SET substitutes = EXCLUDED.substitutes, computed_at = EXCLUDED.computed_at""",
            [chain for chain, _ in keys],
            [sku for _, sku in keys],
            [stored_list(lists[key]) for key in keys],
            computed_at,
        )


def stored_list(rows: Sequence[SubstituteRow]) -> str:
    """Write a list as the substitutes column stores it (a JSON array of Substitute fields)."""
    return json.dumps(
        [
            {"level": row.level, "chain": row.chain, "sku": row.sku, "score": row.score, "reason": row.reason}
            for row in rows
        ]
    )


def substitute_rows(stored: str) -> list[SubstituteRow]:
    """Read a list as the substitutes column stores it (a JSON array of Substitute fields)."""
    items: list[dict[str, Any]] = json.loads(stored)
    return [
        SubstituteRow(
            level=item["level"],
            chain=item["chain"],
            sku=item["sku"],
            score=item["score"],
            reason=item["reason"],
        )
        for item in items
    ]
