"""In-memory stand-ins for the substitutions service: its repository and a hashing encoder."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from substitutions.domain.catalogue import Catalogue, Description, ProductKey, SubstituteRow
from substitutions.embeddings import Vectors


@dataclass(frozen=True, slots=True)
class StoredProduct:
    """A product's row: its latest description and when it was observed."""

    description: Description
    observed_at: datetime


class InMemorySubstitutionsRepository:
    """The write repository over dictionaries, with the SQL's rules.

    A description replaces the stored one only when it is newer and differs (an identical
    one keeps the older `observed_at`, as the upsert's WHERE does); a cached embedding is
    never overwritten; a saved list records when it was computed. `upserts` counts the
    descriptions offered.
    """

    def __init__(self) -> None:
        self.rows: dict[ProductKey, StoredProduct] = {}
        self.vectors: dict[tuple[str, str], Vectors] = {}
        self.stored_lists: dict[ProductKey, list[SubstituteRow]] = {}
        self.computed_at: dict[ProductKey, datetime] = {}
        self.upserts = 0

    async def upsert_product(self, *, description: Description, observed_at: datetime) -> bool:
        """Store a product's description unless a newer one is held; return whether it changed."""
        self.upserts += 1
        key = (description.chain, description.sku)
        held = self.rows.get(key)
        if held is not None and (held.observed_at >= observed_at or held.description == description):
            return False
        self.rows[key] = StoredProduct(description, observed_at)
        return True

    async def products(self) -> list[Description]:
        """Return every product held, by chain, then sku."""
        return [self.rows[key].description for key in sorted(self.rows)]

    async def cached_vectors(self, *, model: str, texts: Sequence[str]) -> dict[str, Vectors]:
        """Return the cached embeddings of those texts that have one."""
        return {text: self.vectors[(model, text)] for text in texts if (model, text) in self.vectors}

    async def store_vectors(self, *, model: str, vectors: Mapping[str, Vectors]) -> None:
        """Cache new embeddings as float32, keeping those cached already."""
        for text, vector in vectors.items():
            self.vectors.setdefault((model, text), np.array(vector, dtype="<f4"))

    async def lists(self) -> dict[ProductKey, list[SubstituteRow]]:
        """Return every product's stored list."""
        return {key: list(rows) for key, rows in self.stored_lists.items()}

    async def save_lists(
        self, *, lists: Mapping[ProductKey, list[SubstituteRow]], computed_at: datetime
    ) -> None:
        """Store the current lists of products."""
        for key, rows in lists.items():
            self.stored_lists[key] = list(rows)
            self.computed_at[key] = computed_at


class HashingEncoder:
    """A deterministic encoder: words and letter trigrams hashed into a unit vector.

    Names sharing words and trigrams come out alike, as with a real model, only cruder.
    `encoded` records every text it was asked to encode, in order.
    """

    model_name = "hashing-trigrams"

    def __init__(self, dimensions: int = 256) -> None:
        self.dimensions = dimensions
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed each text as its normalised bag of words and trigrams."""
        self.encoded += texts
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.split():
                padded = f" {word} "
                for feature in [word, *(padded[i : i + 3] for i in range(len(padded) - 2))]:
                    vectors[row, _stable_hash(feature) % self.dimensions] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def list_of(catalogue: Catalogue, chain: str, sku: str) -> list[SubstituteRow] | None:
    """Return a held product's current list, or None when the catalogue does not hold it."""
    at = catalogue.index.position(chain, sku)
    return None if at is None else catalogue.lists.get(at)


def _stable_hash(text: str) -> int:
    """Hash text the same way in every process (Python's own hash is salted)."""
    value = 2166136261
    for byte in text.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value
