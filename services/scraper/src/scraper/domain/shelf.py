"""Read what a shelf label states beside the price: the unit price and a multi-buy offer."""

import re
from decimal import Decimal
from typing import Literal

from contracts.events.v1 import MultiBuy, StatedUnitPrice

# "$1.50 per 100g" (Coles), "$1.67 / 100G" (Woolworths), "$0.38 per 1ea", "$12.00 per kg".
_UNIT_PRICE = re.compile(
    r"\$\s*(?P<dollars>[0-9]+(?:\.[0-9]{1,2})?)\s*(?:per|/)\s*(?P<quantity>[0-9]+)?\s*(?P<unit>[a-z]+)",
    re.IGNORECASE,
)
# "2 for $5", "Any 3 for $10", "Buy 2 for $7.50".
_MULTIBUY = re.compile(
    r"(?:buy\s+|any\s+)?(?P<quantity>[0-9]+)\s+for\s+\$\s*(?P<dollars>[0-9]+(?:\.[0-9]{1,2})?)",
    re.IGNORECASE,
)
_UNITS: dict[str, Literal["g", "kg", "ml", "l", "ea"]] = {
    "g": "g",
    "kg": "kg",
    "ml": "ml",
    "l": "l",
    "ea": "ea",
    "each": "ea",
}


def parse_unit_price(text: str) -> StatedUnitPrice:
    """Read a stated unit price such as `$1.50 per 100g`; ValueError when the label is not one."""
    match = _UNIT_PRICE.fullmatch(text.strip())
    unit = _UNITS.get(match.group("unit").lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"unrecognised unit price {text!r}")
    quantity = int(match.group("quantity") or 1)
    if quantity < 1:
        raise ValueError(f"unrecognised unit price {text!r}")
    return StatedUnitPrice(
        cents=_cents(match.group("dollars")), quantity=quantity, unit=unit, text=text.strip()
    )


def parse_multibuy(text: str) -> MultiBuy:
    """Read a multi-buy offer such as `2 for $5` or `Any 3 for $10`; ValueError when it is not one."""
    match = _MULTIBUY.fullmatch(text.strip())
    if match is None or int(match.group("quantity")) < 2:
        raise ValueError(f"unrecognised multi-buy {text!r}")
    return MultiBuy(quantity=int(match.group("quantity")), total_cents=_cents(match.group("dollars")))


def _cents(dollars: str) -> int:
    """Turn at most two decimals of dollars into whole cents."""
    return int(Decimal(dollars) * 100)
