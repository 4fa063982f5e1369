"""What a shopper chose, written in the URL and a cookie: stores per chain and the basket."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_CHAIN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
MAX_ITEMS = 100
MAX_QUANTITY = 99


class StateError(ValueError):
    """A stores or basket text that cannot be read; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Item:
    """A product in the basket and how many of it."""

    chain: str
    sku: str
    quantity: int


def _chain_and_id(part: str, what: str) -> tuple[str, str]:
    chain, sep, ident = part.partition(":")
    if not sep or not _CHAIN.fullmatch(chain) or not _ID.fullmatch(ident):
        raise StateError(f"{part!r} is not chain:{what} (e.g. coles:7724)")
    return chain, ident


def check_product(chain: str, sku: str) -> None:
    """Refuse a product that a basket in a URL could not hold."""
    _chain_and_id(f"{chain}:{sku}", "sku")


def parse_stores(text: str | None) -> dict[str, str]:
    """Read "coles:7724,woolworths:12" into one store per chain; a chain named twice is an error."""
    chosen: dict[str, str] = {}
    for part in filter(None, (text or "").split(",")):
        chain, store = _chain_and_id(part.strip(), "store")
        if chain in chosen:
            raise StateError(f"two stores of {chain}: choose one per chain")
        chosen[chain] = store
    return chosen


def format_stores(chosen: Mapping[str, str]) -> str:
    """Write stores as parse_stores reads them, chains in order."""
    return ",".join(f"{chain}:{chosen[chain]}" for chain in sorted(chosen))


def parse_basket(text: str | None) -> list[Item]:
    """Read "coles:123*2,woolworths:55" (quantity 1 when left out); the same product twice adds up."""
    quantities: dict[tuple[str, str], int] = {}
    for part in filter(None, (text or "").split(",")):
        product, star, count = part.strip().partition("*")
        key = _chain_and_id(product, "sku")
        if star and not (count.isdigit() and 1 <= int(count) <= MAX_QUANTITY):
            raise StateError(f"{part!r}: the quantity after * must be 1 to {MAX_QUANTITY}")
        quantities[key] = min(quantities.get(key, 0) + (int(count) if star else 1), MAX_QUANTITY)
    if len(quantities) > MAX_ITEMS:
        raise StateError(f"a basket holds at most {MAX_ITEMS} products")
    return [Item(chain, sku, quantity) for (chain, sku), quantity in quantities.items()]


def format_basket(items: Sequence[Item]) -> str:
    """Write a basket as parse_basket reads it."""
    return ",".join(f"{i.chain}:{i.sku}" + (f"*{i.quantity}" if i.quantity != 1 else "") for i in items)


def with_quantity(items: Sequence[Item], chain: str, sku: str, quantity: int) -> list[Item]:
    """Return the basket with a product's quantity set (added at the end if new, gone at 0)."""
    if not 0 <= quantity <= MAX_QUANTITY:
        raise StateError(f"quantity must be 0 to {MAX_QUANTITY}")
    kept = [i for i in items if (i.chain, i.sku) != (chain, sku)]
    at = next((n for n, i in enumerate(items) if (i.chain, i.sku) == (chain, sku)), len(kept))
    if quantity:
        kept.insert(at, Item(chain, sku, quantity))
    if len(kept) > MAX_ITEMS:
        raise StateError(f"a basket holds at most {MAX_ITEMS} products")
    return kept
