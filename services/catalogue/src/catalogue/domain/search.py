"""Fold product text and queries alike, so search forgives case, accents and hyphens."""

import re
import unicodedata

_NOT_WORD = re.compile(r"[^0-9a-z]+")
_HYPHENATED = re.compile(r"[0-9a-z]+(?:[-'.][0-9a-z]+)+")


def fold(text: str) -> str:
    """Return text in lower case without accents or punctuation, words single-spaced."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join(_NOT_WORD.split(plain)).strip()


def search_text(name: str, brand: str | None) -> str:
    """Return what a product is searched by: brand and name folded, joined words added.

    "Weet-Bix" is written both "weet bix" and "weetbix", so a shopper typing either finds it.
    """
    raw = f"{brand or ''} {name}"
    plain = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode().lower()
    joined = ["".join(_NOT_WORD.split(word)) for word in _HYPHENATED.findall(plain)]
    return " ".join(part for part in (fold(raw), *joined) if part)
