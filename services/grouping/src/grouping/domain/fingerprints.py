"""Fingerprint price vectors in bands, so that only stores sharing a band key are compared exactly.

A band is a handful of skus. A store's key on a band identifies its exact prices on those skus;
two stores of one pricing zone usually share it, two stores of different zones rarely do. A
store that misses a price of the band gets no key there, because a blank is not a price and
must not make two stores look alike. Stores that share a key on any band are candidates.

With `band_size` r, a pair of stores that agree on a share s of the band skus (both priced, same
price) shares a given band with probability about s**r, and at least one of b bands with
1 - (1 - s**r)**b: close to 1 for stores of one zone, close to 0 for stores of two zones.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Two stores of a zone, each missing 10% of prices (30% for a poor scrape), share a band of 3 skus
# with probability ~0.5 (~0.11): 48 bands miss such a pair about never (3 times in a thousand).
# Stores of different zones rarely share even 3 prices, and more bands only cost a little hashing.
DEFAULT_BANDS = 48
DEFAULT_BAND_SIZE = 3


@dataclass(frozen=True, slots=True, eq=False)
class Fingerprints:
    """Hold each store's key on each band, and the stores of each key sorted for look-up."""

    skus: npt.NDArray[np.intp]
    """Column indices of the skus of each band, shape (bands, band_size)."""
    keys: npt.NDArray[np.int64]
    """Each store's key on each band, shape (stores, bands); -1 where a band price is missing."""
    bucket_keys: npt.NDArray[np.int64]
    """Every key a store holds, sorted; a key is unique to its band."""
    bucket_stores: npt.NDArray[np.intp]
    """The store (row) holding each key of `bucket_keys`."""

    def candidates(self, store: int) -> npt.NDArray[np.intp]:
        """Return the other stores (rows, ascending) that share at least one band key with a store."""
        own = self.keys[store]
        own = own[own >= 0]
        if own.size == 0:
            return np.empty(0, dtype=np.intp)
        starts = np.searchsorted(self.bucket_keys, own, side="left")
        ends = np.searchsorted(self.bucket_keys, own, side="right")
        sharing = np.concatenate(
            [self.bucket_stores[start:end] for start, end in zip(starts, ends, strict=True)]
        )
        return np.setdiff1d(sharing, [store])


def fingerprint(
    prices: npt.NDArray[np.int32],
    *,
    bands: int = DEFAULT_BANDS,
    band_size: int = DEFAULT_BAND_SIZE,
    seed: int = 0,
) -> Fingerprints:
    """Key every store's prices on `bands` bands of `band_size` widely priced skus chosen by `seed`."""
    if prices.ndim != 2:
        raise ValueError(f"prices must be a (stores, skus) matrix, not {prices.ndim}-dimensional")
    if bands < 1 or band_size < 1:
        raise ValueError("bands and band_size must be at least 1")
    skus = _band_skus(prices, bands=bands, band_size=band_size, seed=seed)
    keys = np.full((prices.shape[0], len(skus)), -1, dtype=np.int64)
    next_key = 0
    for band, columns in enumerate(skus):
        block = prices[:, columns]
        complete = np.flatnonzero((block > 0).all(axis=1))
        if complete.size == 0:
            continue
        # Numbering the distinct rows of the band is an exact hash: equal keys mean equal prices.
        _, inverse = np.unique(block[complete], axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        keys[complete, band] = next_key + inverse
        next_key += int(inverse.max()) + 1
    stores, bands_held = np.nonzero(keys >= 0)
    held = keys[stores, bands_held]
    order = np.argsort(held, kind="stable")
    return Fingerprints(
        skus=skus, keys=keys, bucket_keys=held[order], bucket_stores=stores[order].astype(np.intp)
    )


def _band_skus(
    prices: npt.NDArray[np.int32], *, bands: int, band_size: int, seed: int
) -> npt.NDArray[np.intp]:
    """Pick the chain's most widely priced skus, shuffled by `seed`, as `bands` rows of `band_size`."""
    wanted = bands * band_size
    if prices.shape[1] == 0:
        return np.empty((0, band_size), dtype=np.intp)
    rng = np.random.default_rng(seed)
    priced = np.count_nonzero(prices > 0, axis=0)
    # Shuffling before a stable sort lets the seed break ties between equally widely priced skus.
    shuffled = rng.permutation(prices.shape[1])
    pool = shuffled[np.argsort(-priced[shuffled], kind="stable")][:wanted]
    # Bands are disjoint when the chain has enough skus; a small catalog reuses its skus across bands.
    rounds = -(-wanted // pool.size)
    chosen = np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:wanted]
    return chosen.reshape(bands, band_size).astype(np.intp)
