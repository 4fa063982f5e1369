"""What a shelf label says beside the price: the unit price, worked out from the product's size."""

import re
from dataclasses import dataclass
from typing import Literal

UnitName = Literal["g", "kg", "ml", "l", "ea"]

_AMOUNT = re.compile(r"^(?:(\d+)\s*x\s*)?(\d+(?:\.\d+)?)\s*(g|kg|ml|l)$", re.IGNORECASE)
_COUNT = re.compile(r"^(\d+)\s*(?:pack|pk)$", re.IGNORECASE)
_TO_BASE = {"g": 1.0, "kg": 1000.0, "ml": 1.0, "l": 1000.0}


@dataclass(frozen=True, slots=True)
class UnitPrice:
    """A label's unit price: `cents` for `quantity` `unit` ($1.50 per 100g)."""

    cents: int
    quantity: int
    unit: UnitName

    @property
    def measure(self) -> str:
        """Return the measure as labels write it before shop styling: 100g, 1kg, 100ml, 1l, 1ea."""
        return f"{self.quantity}{self.unit}"


def unit_price(size: str, price_cents: int, *, by_weight: bool = False) -> UnitPrice | None:
    """Return the unit price a label shows for a pack of `size` at a price; None for sizes it cannot state.

    Packs under a kilogram or a litre are priced per 100g or 100ml, bigger ones per 1kg or 1l,
    counted packs per item; an item sold by weight is priced per kilogram already.
    """
    if by_weight:
        return UnitPrice(price_cents, 1, "kg")
    text = size.strip()
    if text.lower() == "each":
        return UnitPrice(price_cents, 1, "ea")
    if count := _COUNT.match(text):
        items = int(count.group(1))
        return UnitPrice(round(price_cents / items), 1, "ea") if items else None
    amount = _AMOUNT.match(text)
    if amount is None:
        return None
    packs, number, unit = amount.groups()
    base = float(number) * _TO_BASE[unit.lower()] * (int(packs) if packs else 1)
    if base <= 0:
        return None
    mass = unit.lower() in ("g", "kg")
    if base >= 1000:
        return UnitPrice(round(price_cents * 1000 / base), 1, "kg" if mass else "l")
    return UnitPrice(round(price_cents * 100 / base), 100, "g" if mass else "ml")


def dollars(cents: int) -> str:
    """Write cents as a label does: $1.50."""
    return f"${cents // 100}.{cents % 100:02d}"
