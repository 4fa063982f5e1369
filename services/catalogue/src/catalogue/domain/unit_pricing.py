"""Read pack sizes and compute unit prices as Australia's Grocery Unit Pricing Code sets them.

Public functions (pure, no IO, no clock):
- `parse_pack_size(size, name=None) -> PackSize | None`: read "2L", "6 x 375mL", "150g x 4",
  "24pk", "12 pack", "each", "per kg", "Approx. 1.2kg" from the size text, else from the name.
- `size_problem(size, name=None) -> str | None`: why no pack size can be read ("has no unit").
- `sold_per_kg(shared_category) -> bool`: whether a shared category is unit priced per kilogram.
- `unit_basis(pack, *, sold_by="each", shared_category=None) -> Basis`: the Code's unit of measure.
- `unit_price(price_cents, pack, *, sold_by="each", shared_category=None) -> UnitPrice`: the price
  on the Code's basis, rounded to the whole cent as the Code requires it to be shown.
- `price_on(price_cents, pack, basis, *, sold_by="each") -> UnitPrice | None`: the price on any
  basis of the pack's dimension (None when the dimensions differ: per litre of a count).
- `alternative_views(price_cents, pack, *, sold_by="each") -> tuple[UnitPrice, ...]`: per kg
  for weights, per litre for volumes.
- `check_stated(price_cents, pack, stated, *, sold_by="each") -> StatedCheck`: compare with the
  shop's own unit price (contracts' `StatedUnitPrice`) and say whether it matches.

The rule implemented, from the ACCC's summary of the Unit Pricing Code
(https://www.accc.gov.au/business/industry-codes/unit-pricing-code; the Code is the Competition
and Consumer (Industry Codes—Unit Pricing) Regulation, its clause 10 the general rule and
clause 11 the alternatives):
- sold by volume: per 100 millilitres; sold by weight: per 100 grams; by length: per metre;
- sold by number: per item for packs of 40 or fewer items, per 100 items for 41 or more;
- the Code's alternative units: fresh fruit and vegetables, meat, poultry and seafood, and
  cheese and meats sold by weight at the deli are unit priced per kilogram; so is anything
  sold loose by weight (`sold_by` kg: the shelf price is already per kilogram).
Per kilogram and per litre are offered beside it as alternative views, since the shops show
litres for drinks and kilograms for bulk packs. The Code shows dollars and whole cents, so
`UnitPrice.cents` is rounded half up; `exact` keeps the unrounded value for comparisons.

A multipack's unit price is over its whole contents (6 x 375mL is 2,250 mL). An "approx."
size is kept but marked: the shop prices the actual weight, so it is not judged exactly.
"""

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, Protocol

Dimension = Literal["mass", "volume", "count", "length"]
Unit = Literal["g", "kg", "ml", "l", "ea", "m"]
SoldBy = Literal["each", "kg"]
Verdict = Literal["match", "mismatch", "not_comparable"]

# Packs of more items than this are unit priced per 100 items (the Code: 41 or more).
MAX_ITEMS_PRICED_EACH = 40
# Shared categories (top level of the shared tree) priced per kilogram by the Code's alternatives.
PER_KG_CATEGORIES: frozenset[str] = frozenset({"produce", "meat", "deli"})

# Unit words as shops write them: dimension and how many base units (g, mL, items, m) one is.
_UNITS: dict[str, tuple[Dimension, Fraction]] = {
    "mg": ("mass", Fraction(1, 1000)),
    "g": ("mass", Fraction(1)),
    "gm": ("mass", Fraction(1)),
    "gms": ("mass", Fraction(1)),
    "gram": ("mass", Fraction(1)),
    "grams": ("mass", Fraction(1)),
    "kg": ("mass", Fraction(1000)),
    "kgs": ("mass", Fraction(1000)),
    "kilo": ("mass", Fraction(1000)),
    "kilogram": ("mass", Fraction(1000)),
    "kilograms": ("mass", Fraction(1000)),
    "ml": ("volume", Fraction(1)),
    "millilitre": ("volume", Fraction(1)),
    "millilitres": ("volume", Fraction(1)),
    "cl": ("volume", Fraction(10)),
    "l": ("volume", Fraction(1000)),
    "lt": ("volume", Fraction(1000)),
    "ltr": ("volume", Fraction(1000)),
    "litre": ("volume", Fraction(1000)),
    "litres": ("volume", Fraction(1000)),
    "liter": ("volume", Fraction(1000)),
    "liters": ("volume", Fraction(1000)),
    "m": ("length", Fraction(1)),
    "metre": ("length", Fraction(1)),
    "metres": ("length", Fraction(1)),
    "cm": ("length", Fraction(1, 100)),
}
_COUNTS = (
    r"pk|pack|packs|pce|pces|pc|pcs|piece|pieces|ea|each|ct|count|sheets|sheet|tablets|tabs|capsules"
    r"|rolls|bags|sachets|pods|serves|items|eggs|slices"
)
_NUMBER = r"(\d+(?:[.,]\d+)?)"
_UNIT = "|".join(sorted(_UNITS, key=len, reverse=True))
_AMOUNT = rf"{_NUMBER}\s*({_UNIT})\b"
_APPROX = re.compile(r"\b(?:approx|approximately|avg|average|min|minimum|ca)\b\.?", re.IGNORECASE)
# Sold by weight: the price is per kilogram.
_PER_KG = re.compile(r"(?:\bper\s*|/\s*)kg\b|\bkg\s+price\b|\bsold\s+by\s+weight\b", re.IGNORECASE)
_EACH = re.compile(r"^\s*(?:1\s*)?(?:each|ea|per\s+each|single)\s*$", re.IGNORECASE)
# 6 x 375mL, 6x375ml, 4 pack x 150g.
_COUNT_FIRST = re.compile(rf"\b(\d+)\s*(?:{_COUNTS})?\s*[x\u00d7*]\s*{_AMOUNT}", re.IGNORECASE)
# 150g x 4, 375mL x 6 pack.
_AMOUNT_FIRST = re.compile(rf"{_AMOUNT}\s*[x\u00d7*]\s*(\d+)\b", re.IGNORECASE)
_SINGLE = re.compile(rf"(?<![\w.]){_AMOUNT}", re.IGNORECASE)
_COUNT = re.compile(rf"(?<![\w.])(\d+)\s*(?:{_COUNTS})\b", re.IGNORECASE)
_PACKS = re.compile(r"(?<![\w.])(\d+)\s*(?:pk|pack|packs)\b", re.IGNORECASE)
_TRAILING_COUNT = re.compile(r"\b(\d+)\s*[x\u00d7]\s*$", re.IGNORECASE)
_BARE = re.compile(rf"^\s*{_NUMBER}\s*$")
_PACK_OF = re.compile(r"\bpack\s+of\s+(\d+)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PackSize:
    """What one purchase holds: an amount in base units (g, mL, items, m), over `pack` units."""

    dimension: Dimension
    amount: Fraction
    pack: int = 1
    approximate: bool = False
    by_weight: bool = False
    """Sold by weight ("per kg"): the price is per kilogram and `amount` is one kilogram."""

    def describe(self) -> str:
        """Write the size back in a short readable form: 6 x 375mL, 1.5kg, 24 items."""
        if self.by_weight:
            return "per kg"
        if self.dimension == "count":
            return f"{_number(self.amount)} item" + ("" if self.amount == 1 else "s")
        each = self.amount / self.pack
        unit = {"mass": "g", "volume": "mL", "length": "m"}[self.dimension]
        if self.dimension in ("mass", "volume") and each >= 1000:
            each, unit = each / 1000, {"g": "kg", "mL": "L"}[unit]
        text = f"{_number(each)}{unit}"
        prefix = "approx. " if self.approximate else ""
        return f"{prefix}{self.pack} x {text}" if self.pack > 1 else f"{prefix}{text}"


@dataclass(frozen=True, slots=True)
class Basis:
    """A unit of measure prices are stated on: 100 g, 1 kg, 1 item, 100 items."""

    quantity: int
    unit: Unit

    @property
    def label(self) -> str:
        """Write the basis as a shelf label does: 100g, 1kg, 1L, item, 100 items."""
        if self.unit == "ea":
            return "item" if self.quantity == 1 else f"{self.quantity} items"
        unit = {"g": "g", "kg": "kg", "ml": "mL", "l": "L", "m": "m"}[self.unit]
        return f"{self.quantity}{unit}"


@dataclass(frozen=True, slots=True)
class UnitPrice:
    """A price on a basis: `cents` rounded to the whole cent, `exact` before rounding."""

    cents: int
    exact: float
    basis: Basis

    @property
    def text(self) -> str:
        """Write the unit price as a shelf label does: $1.50 per 100g."""
        return f"${self.cents // 100}.{self.cents % 100:02d} per {self.basis.label}"


class StatedPrice(Protocol):
    """A unit price as the shop states it (contracts' StatedUnitPrice has these fields)."""

    @property
    def cents(self) -> int: ...

    @property
    def quantity(self) -> int: ...

    @property
    def unit(self) -> str: ...


@dataclass(frozen=True, slots=True)
class StatedCheck:
    """The shop's stated unit price against pricestream's on the same basis.

    `ours` is None when it cannot be put on the shop's basis (a count against a weight).
    """

    verdict: Verdict
    stated_cents: int
    basis: Basis
    ours: UnitPrice | None
    reason: str


def parse_pack_size(size: str | None, name: str | None = None) -> PackSize | None:
    """Read a pack size from the size text, else from the product's name; None when neither says."""
    if size and name and (count := _TRAILING_COUNT.search(name)):
        # Names cut before their size ("Yogurt Classics 6 x" with size "150g") keep the count.
        size = f"{count.group(1)} x {size}"
    for text in (size, name):
        if text and (pack := _parse(text)) is not None:
            return pack
    return None


def size_problem(size: str | None, name: str | None = None) -> str | None:
    """Say why no pack size can be read (None when one can), for a product's unit price to explain."""
    if parse_pack_size(size, name) is not None:
        return None
    if not size or not size.strip():
        return "no size given, and the name states none"
    if _BARE.match(size):
        # A number alone may be kilograms, litres or items: guessing would mislead.
        return f"the size {size.strip()!r} has no unit"
    return f"the size {size.strip()!r} is not a quantity pricestream reads"


def sold_per_kg(shared_category: str | None) -> bool:
    """Tell whether products of a shared category are unit priced per kilogram (the Code's clause 11)."""
    if not shared_category:
        return False
    return shared_category.split("/", 1)[0] in PER_KG_CATEGORIES


def unit_basis(pack: PackSize, *, sold_by: SoldBy = "each", shared_category: str | None = None) -> Basis:
    """Return the Code's unit of measure for a pack: per 100 g / 100 mL / item / 100 items / m / kg."""
    if sold_by == "kg" or pack.by_weight:
        return Basis(1, "kg")
    if pack.dimension == "mass":
        return Basis(1, "kg") if sold_per_kg(shared_category) else Basis(100, "g")
    if pack.dimension == "volume":
        return Basis(100, "ml")
    if pack.dimension == "length":
        return Basis(1, "m")
    return Basis(1, "ea") if pack.amount <= MAX_ITEMS_PRICED_EACH else Basis(100, "ea")


def unit_price(
    price_cents: int, pack: PackSize, *, sold_by: SoldBy = "each", shared_category: str | None = None
) -> UnitPrice:
    """Return the price on the Code's basis for this pack."""
    basis = unit_basis(pack, sold_by=sold_by, shared_category=shared_category)
    priced = price_on(price_cents, pack, basis, sold_by=sold_by)
    # unit_basis picks a basis of the pack's own dimension, so it always applies.
    assert priced is not None
    return priced


def price_on(price_cents: int, pack: PackSize, basis: Basis, *, sold_by: SoldBy = "each") -> UnitPrice | None:
    """Return the price on a basis of the pack's dimension, or None when the basis measures another."""
    dimension, factor = _basis_measure(basis)
    if sold_by == "kg" or pack.by_weight:
        # The shelf price is per kilogram, whatever the pack says.
        if dimension != "mass":
            return None
        exact = Fraction(price_cents) * basis.quantity * factor / 1000
    else:
        if dimension != pack.dimension or pack.amount <= 0:
            return None
        exact = Fraction(price_cents) * basis.quantity * factor / pack.amount
    return UnitPrice(cents=_round_half_up(exact), exact=float(exact), basis=basis)


def alternative_views(price_cents: int, pack: PackSize, *, sold_by: SoldBy = "each") -> tuple[UnitPrice, ...]:
    """Return per kg for weights and per litre for volumes; nothing for counts and lengths."""
    measured: Dimension = "mass" if sold_by == "kg" or pack.by_weight else pack.dimension
    basis = {"mass": Basis(1, "kg"), "volume": Basis(1, "l")}.get(measured)
    if basis is None:
        return ()
    priced = price_on(price_cents, pack, basis, sold_by=sold_by)
    return (priced,) if priced is not None else ()


def check_stated(
    price_cents: int, pack: PackSize | None, stated: StatedPrice, *, sold_by: SoldBy = "each"
) -> StatedCheck:
    """Compare the shop's unit price with ours on the shop's own basis.

    The shop shows whole cents on its basis, rounding or cutting the exact value, so a stated
    price within one cent of ours (exclusive) is consistent with either; one a cent or more away
    cannot come from this price and size, and is a mismatch. An approximate size is not judged:
    the shop prices the pack's actual weight.
    """
    basis = Basis(stated.quantity, _stated_unit(stated.unit))
    if pack is None and sold_by != "kg":
        return StatedCheck("not_comparable", stated.cents, basis, None, "the pack size is unknown")
    measured = pack if pack is not None else PackSize("mass", Fraction(1000), by_weight=True)
    ours = price_on(price_cents, measured, basis, sold_by=sold_by)
    if ours is None:
        reason = f"the shop states a price per {basis.label}, the pack is measured by {measured.dimension}"
        return StatedCheck("not_comparable", stated.cents, basis, None, reason)
    if measured.approximate and sold_by != "kg":
        return StatedCheck("not_comparable", stated.cents, basis, ours, "the pack size is approximate")
    gap = abs(Fraction(ours.exact) - stated.cents)
    if gap < 1:
        return StatedCheck("match", stated.cents, basis, ours, "within the shop's rounding to the cent")
    reason = f"the shop states {stated.cents}c per {basis.label}, price and size give {ours.exact:.2f}c"
    return StatedCheck("mismatch", stated.cents, basis, ours, reason)


def _parse(text: str) -> PackSize | None:
    """Read one text's pack size, or None."""
    approximate = bool(_APPROX.search(text))
    cleaned = _APPROX.sub(" ", text)
    if _PER_KG.search(cleaned):
        return PackSize("mass", Fraction(1000), by_weight=True)
    if _EACH.match(cleaned):
        return PackSize("count", Fraction(1))
    if multi := _COUNT_FIRST.search(cleaned):
        return _multipack(int(multi.group(1)), multi.group(2), multi.group(3), approximate)
    if multi := _AMOUNT_FIRST.search(cleaned):
        return _multipack(int(multi.group(3)), multi.group(1), multi.group(2), approximate)
    if single := _SINGLE.search(cleaned):
        dimension, factor = _UNITS[single.group(2).lower()]
        amount = _decimal(single.group(1)) * factor
        if amount <= 0:
            return None
        # "375mL 10 pack" is ten cans; "450g 6 pack" of rolls weighs 450 g in all, so only
        # a volume is multiplied by a pack count written after it.
        count = _PACKS.search(cleaned, single.end()) if dimension == "volume" else None
        pack = int(count.group(1)) if count and int(count.group(1)) > 1 else 1
        return PackSize(dimension, amount * pack, pack, approximate)
    if count := _COUNT.search(cleaned) or _PACK_OF.search(cleaned):
        items = int(count.group(1))
        return PackSize("count", Fraction(items)) if items > 0 else None
    return None


def _multipack(count: int, number: str, unit: str, approximate: bool) -> PackSize | None:
    """Return a pack of `count` units of `number` `unit` each."""
    dimension, factor = _UNITS[unit.lower()]
    each = _decimal(number) * factor
    if count <= 0 or each <= 0:
        return None
    return PackSize(dimension, each * count, count, approximate)


def _decimal(text: str) -> Fraction:
    """Read a number with a decimal point or comma exactly."""
    return Fraction(text.replace(",", "."))


def _basis_measure(basis: Basis) -> tuple[Dimension, Fraction]:
    """Return a basis's dimension and how many base units one of its units is."""
    if basis.unit == "ea":
        return "count", Fraction(1)
    return _UNITS[basis.unit]


def _stated_unit(unit: str) -> Unit:
    """Return a shop's unit as one of ours (the contract allows g, kg, ml, l and ea)."""
    known: dict[str, Unit] = {"g": "g", "kg": "kg", "ml": "ml", "l": "l", "ea": "ea", "m": "m"}
    if unit.lower() not in known:
        raise ValueError(f"unknown unit {unit!r}; expected one of {', '.join(known)}")
    return known[unit.lower()]


def _round_half_up(value: Fraction) -> int:
    """Round to the nearest whole cent, halves up (Python's round would round them to even)."""
    return int((value * 2 + 1) // 2)


def _number(value: Fraction) -> str:
    """Write a number without a pointless `.0`."""
    return f"{float(value):g}"
