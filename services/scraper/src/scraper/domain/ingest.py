"""Validate raw rows against the contracts: accept them as observations, or say briefly why not."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from contracts.events import PriceObservation
from contracts.events.v1 import MultiBuy, ProductObservedPayload, StatedUnitPrice
from contracts.types import MAX_PRICE_CENTS, Barcode, ChainId, Sku, StoreId
from scraper.domain.importers import RawRow
from scraper.domain.shelf import parse_multibuy, parse_unit_price
from scraper.domain.units import is_known_unit

# Clocks of scrapers and of this service disagree a little; a larger lead is a wrong timestamp.
FUTURE_TOLERANCE = timedelta(minutes=5)

_CHAIN: TypeAdapter[str] = TypeAdapter(ChainId)
_STORE: TypeAdapter[str] = TypeAdapter(StoreId)
_SKU: TypeAdapter[str] = TypeAdapter(Sku)
_BARCODE: TypeAdapter[str] = TypeAdapter(Barcode)

_DOLLARS = re.compile(r"(-?)\$?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_WHOLE = re.compile(r"-?[0-9]+")
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Binary floats such as 0.1 + 0.2 miss a whole cent by far less than this; a real third
# decimal (4.355) misses it by far more.
_CENT_NOISE = Decimal("0.000001")
_MAX_DOLLARS = f"${MAX_PRICE_CENTS // 100:,}"


@dataclass(frozen=True, slots=True)
class ProductInfo:
    """Describe a product as a row names it, already checked against ProductObserved's rules."""

    name: str
    brand: str | None
    size: str | None
    category: str | None
    barcode: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class Accepted:
    """Hold a row that passed: where it was seen, what was charged, and the product if named."""

    chain: str
    store_id: str
    observation: PriceObservation
    product: ProductInfo | None


@dataclass(frozen=True, slots=True)
class Rejected:
    """Hold a row that failed, with a short reason for the quarantine."""

    reason: str
    raw: RawRow


class _RowError(Exception):
    """Stop checking a row; the message is the reason it is rejected."""


def dollars_to_cents(value: object, *, what: str = "price") -> int:
    """Convert an amount in dollars (number or text like `$4.50`) to exact integer cents."""
    if isinstance(value, str):
        # No thousands separators: in much of Europe `4,50` is a decimal comma, so any
        # reading of a comma would be wrong for some files.
        match = _DOLLARS.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{what} is not a number: {_show(value)}")
        amount = Decimal(match.group(1) + match.group(2))
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        # str() gives the shortest text that reads back as the same float: 4.35, not 4.3499999….
        amount = Decimal(str(value))
    else:
        raise ValueError(f"{what} is not a number: {_show(value)}")
    if not amount.is_finite():
        raise ValueError(f"{what} is not a number: {_show(value)}")
    if amount < 0:
        raise ValueError(f"negative {what}")
    cents = amount * 100
    whole = cents.to_integral_value()
    if abs(cents - whole) > _CENT_NOISE:
        raise ValueError(f"{what} has more than 2 decimals: {_show(value)}")
    return int(whole)


def validate_row(
    raw: RawRow, *, default_chain: str | None, default_store: str | None, now: datetime
) -> Accepted | Rejected:
    """Check one raw row against the contracts; bad data gives Rejected, never an exception."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    try:
        return _accept(raw, default_chain, default_store, now)
    except _RowError as error:
        return Rejected(str(error), raw)


def _accept(raw: RawRow, default_chain: str | None, default_store: str | None, now: datetime) -> Accepted:
    """Build the accepted row, raising _RowError at the first rule it breaks."""
    error = raw.get("_error")
    if error is not None:
        raise _RowError(str(error))
    chain = _identifier(raw, "chain", default_chain, _CHAIN)
    store_id = _identifier(raw, "store_id", default_store, _STORE)
    sku = _identifier(raw, "sku", None, _SKU)
    price = _amount(raw, "price")
    if price is None:
        raise _RowError("missing price")
    was_price = _amount(raw, "was_price")
    member_price = _amount(raw, "member_price")
    observed_at = _observed_at(_present(raw, "observed_at"), now)
    available = _available(_present(raw, "available"))
    unit = _present(raw, "unit")
    if unit is not None and not (isinstance(unit, str) and is_known_unit(unit)):
        raise _RowError(f"unknown unit {_show(unit)}")
    barcode = _present(raw, "barcode")
    if barcode is not None:
        try:
            _BARCODE.validate_python(barcode, strict=True)
        except ValidationError:
            raise _RowError(f"invalid barcode {_show(barcode)} (must be 8 to 14 digits)") from None
    try:
        observation = PriceObservation(
            sku=sku,
            price_cents=price,
            was_price_cents=was_price,
            available=available,
            observed_at=observed_at,
            unit_price=_stated_unit_price(_present(raw, "unit_price")),
            multibuy=_multibuy(_present(raw, "multibuy")),
            member_price_cents=member_price,
            sold_by=_sold_by(_present(raw, "sold_by")),
        )
    except ValidationError as invalid:
        raise _RowError(_explain(invalid)) from None
    return Accepted(chain, store_id, observation, _product(raw, chain, sku, observed_at))


def _present(raw: RawRow, key: str) -> Any:
    """Return a row's value, or None when it is missing, null or blank text."""
    value = raw.get(key)
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _identifier(raw: RawRow, key: str, default: str | None, adapter: TypeAdapter[str]) -> str:
    """Return an id from the row (or the default) once it matches the contract's pattern."""
    value = _present(raw, key)
    if value is None:
        value = default
    if value is None:
        raise _RowError(f"missing {key}")
    # JSON writers often emit numeric ids as numbers; the contracts carry them as text.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    try:
        return adapter.validate_python(value, strict=True)
    except ValidationError:
        raise _RowError(f"invalid {key} {_show(value)}") from None


def _amount(raw: RawRow, what: str) -> int | None:
    """Return `<what>_cents` or `<what>` (dollars) as cents, or None when both are missing."""
    cents_key = f"{what}_cents"
    cents_value, dollars_value = _present(raw, cents_key), _present(raw, what)
    try:
        cents = None if cents_value is None else _whole_cents(cents_value, cents_key)
        dollars = None if dollars_value is None else dollars_to_cents(dollars_value, what=what)
    except ValueError as error:
        raise _RowError(str(error)) from None
    if cents is not None and dollars is not None and cents != dollars:
        raise _RowError(f"{cents_key} {cents} and {what} {_show(dollars_value)} disagree")
    amount = cents if cents is not None else dollars
    if amount is not None and amount < 0:
        raise _RowError(f"negative {what}")
    if amount is not None and amount > MAX_PRICE_CENTS:
        raise _RowError(f"{what} above {_MAX_DOLLARS}")
    return amount


def _whole_cents(value: object, what: str) -> int:
    """Read an amount already in cents: an integer, digits as text, or a float without a fraction."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{what} is not a whole number: {_show(value)}")


def _observed_at(value: object, now: datetime) -> datetime:
    """Read an ISO 8601 timestamp into UTC; a date alone means midnight UTC, none means now."""
    if value is None:
        return now.astimezone(UTC)
    if not isinstance(value, str):
        raise _RowError(f"timestamp is not text: {_show(value)}")
    text = value.strip()
    try:
        if _DATE_ONLY.fullmatch(text):
            moment = datetime.combine(date.fromisoformat(text), time(), UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise _RowError(f"timestamp is not ISO 8601: {_show(value)}") from None
    if moment.utcoffset() is None:
        raise _RowError("timestamp has no timezone")
    if moment > now + FUTURE_TOLERANCE:
        raise _RowError("timestamp in the future")
    return moment.astimezone(UTC)


def _available(value: object) -> bool:
    """Read the in-stock flag: a boolean or the text true/false; missing means available."""
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _RowError(f"available is not true or false: {_show(value)}")


def _stated_unit_price(value: object) -> StatedUnitPrice | None:
    """Read the shop's unit price label (`$1.50 per 100g`), or None when the row has none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _RowError(f"unit price is not text: {_show(value)}")
    try:
        return parse_unit_price(value)
    except ValueError:
        raise _RowError(f"unrecognised unit price {_show(value)}") from None


def _multibuy(value: object) -> MultiBuy | None:
    """Read a multi-buy offer (`2 for $5`), or None when the row has none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _RowError(f"multi-buy is not text: {_show(value)}")
    try:
        return parse_multibuy(value)
    except ValueError:
        raise _RowError(f"unrecognised multi-buy {_show(value)}") from None


def _sold_by(value: object) -> Literal["each", "kg"]:
    """Read how the item is sold: each (the default) or by the kilogram."""
    if value is None or value == "each":
        return "each"
    if value == "kg":
        return "kg"
    raise _RowError(f"sold_by is not each or kg: {_show(value)}")


def _product(raw: RawRow, chain: str, sku: str, observed_at: datetime) -> ProductInfo | None:
    """Describe the product when the row names it, checked by the contract that will carry it."""
    name = _present(raw, "name")
    if name is None:
        return None
    try:
        # `change` is the caller's to decide (it knows what it saw before); any value checks the rest.
        payload = ProductObservedPayload(
            chain=chain,
            sku=sku,
            change="new",
            name=name,
            brand=_present(raw, "brand"),
            size=_present(raw, "size"),
            category=_present(raw, "category"),
            barcode=_present(raw, "barcode"),
            url=_present(raw, "url"),
            observed_at=observed_at,
        )
    except ValidationError as invalid:
        raise _RowError(_explain(invalid)) from None
    return ProductInfo(
        name=payload.name,
        brand=payload.brand,
        size=payload.size,
        category=payload.category,
        barcode=payload.barcode,
        url=payload.url,
    )


def _explain(invalid: ValidationError) -> str:
    """Say in a few words which field broke which rule."""
    first = invalid.errors(include_url=False)[0]
    field = str(first["loc"][-1]) if first["loc"] else "row"
    if first["type"] == "string_pattern_mismatch":
        return f"invalid {field} {_show(first['input'])}"
    return f"invalid {field}: {first['msg']}"


def _show(value: object) -> str:
    """Quote a value for a reason, cut short so one bad cell cannot flood the quarantine."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
