"""The substitutions service's read side: what the HTTP API and the stats show."""

from collections.abc import Sequence
from dataclasses import dataclass

from servicekit.db import Connection
from substitutions.domain.matching import Level
from substitutions.repository import substitute_rows


@dataclass(frozen=True, slots=True)
class NamedSubstitute:
    """One substitute of a product, with the name its chain gives it."""

    level: Level
    chain: str
    sku: str
    score: float
    reason: str
    name: str | None


@dataclass(frozen=True, slots=True)
class ProductSubstitutes:
    """A product's name and its substitutes, best first within each level."""

    chain: str
    sku: str
    name: str | None
    substitutes: list[NamedSubstitute]


@dataclass(frozen=True, slots=True)
class StoredFigures:
    """How much the service holds: products, cached embeddings, lists and substitutes per level."""

    products: int
    embeddings: int
    lists: int
    substitutes: dict[str, int]


class SubstitutionsQueries:
    """Raw SQL reads over one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def substitutes(
        self, *, chain: str, sku: str, levels: Sequence[str] | None = None
    ) -> ProductSubstitutes | None:
        """Return a product's substitutes, optionally of some levels only; None when it has no list."""
        stored = await self.conn.fetchval(
            "SELECT substitutes FROM substitutes WHERE chain = $1 AND sku = $2", chain, sku
        )
        if stored is None:
            return None
        rows = [row for row in substitute_rows(stored) if levels is None or row.level in levels]
        names = await self._names([(chain, sku), *((row.chain, row.sku) for row in rows)])
        return ProductSubstitutes(
            chain=chain,
            sku=sku,
            name=names.get((chain, sku)),
            substitutes=[
                NamedSubstitute(
                    level=row.level,
                    chain=row.chain,
                    sku=row.sku,
                    score=row.score,
                    reason=row.reason,
                    name=names.get((row.chain, row.sku)),
                )
                for row in rows
            ],
        )

    async def figures(self) -> StoredFigures:
        """Count products, cached embeddings, lists and substitutes per level."""
        counts = await self.conn.fetchrow(
            """SELECT (SELECT count(*) FROM products) AS products,
                      (SELECT count(*) FROM embeddings) AS embeddings,
                      (SELECT count(*) FROM substitutes) AS lists"""
        )
        assert counts is not None  # a SELECT without FROM always gives one row
        levels = await self.conn.fetch(
            """SELECT s->>'level' AS level, count(*) AS n
               FROM substitutes, jsonb_array_elements(substitutes) AS s GROUP BY 1 ORDER BY 1"""
        )
        return StoredFigures(
            products=counts["products"],
            embeddings=counts["embeddings"],
            lists=counts["lists"],
            substitutes={row["level"]: row["n"] for row in levels},
        )

    async def _names(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Return the names of products by chain and sku."""
        rows = await self.conn.fetch(
            """SELECT p.chain, p.sku, p.name FROM products p
               JOIN unnest($1::text[], $2::text[]) AS k(chain, sku) USING (chain, sku)""",
            [chain for chain, _ in keys],
            [sku for _, sku in keys],
        )
        return {(row["chain"], row["sku"]): row["name"] for row in rows}
