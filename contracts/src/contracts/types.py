"""Strict scalar types shared by every contract."""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, Field, GetCoreSchemaHandler, StringConstraints
from pydantic_core import CoreSchema, core_schema

# Money is integer cents: floats drift, and a grocery price above $100,000 is a bug.
MAX_PRICE_CENTS = 10_000_000

Cents = Annotated[int, Field(strict=True, ge=0, le=MAX_PRICE_CENTS)]
"""An amount of money in integer cents, 0 to MAX_PRICE_CENTS."""


# Every timestamp in an event is a past fact; a little clock skew between hosts is normal.
MAX_CLOCK_SKEW = timedelta(minutes=5)


class _UtcOffset:
    """Pydantic's own (Rust-side) datetime check with the offset pinned to zero: no Python per value."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Return a datetime schema that rejects naive values and any offset but +00:00."""
        return core_schema.datetime_schema(tz_constraint=0)


def _not_in_future(value: datetime) -> datetime:
    """Reject a timestamp later than now plus the allowed clock skew."""
    if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise ValueError("timestamp is in the future")
    return value


def first_in_future(values: Iterable[datetime], *, now: datetime) -> int | None:
    """Return the index of the first timestamp later than `now` plus the skew, or None."""
    limit = now + MAX_CLOCK_SKEW
    for index, value in enumerate(values):
        if value > limit:
            return index
    return None


UtcInstant = Annotated[datetime, _UtcOffset]
"""A timezone-aware UTC timestamp (offset +00:00 or Z), checked in pydantic's core alone.

For timestamps that come by the hundred (a price's): the model holding them checks that
none is in the future once for all, rather than a Python call on each (see `first_in_future`).
"""

UtcDatetime = Annotated[datetime, _UtcOffset, AfterValidator(_not_in_future)]
"""A timezone-aware UTC timestamp, not in the future; naive or non-UTC values are rejected."""

ChainId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
"""A retail chain, lower-case slug: `coles`, `woolworths`, `iga`."""

StoreId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
"""A store's id within its chain."""

Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
"""A product's id within its chain (the chain's own product number)."""

Barcode = Annotated[str, StringConstraints(pattern=r"^[0-9]{8,14}$")]
"""A GTIN/EAN/UPC barcode: 8 to 14 digits."""

GroupId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$")]
"""A store group's id, stable for the group's life."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
"""Free human text (a product name, a reason), one to 500 characters."""

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]
"""A short label (a brand, a size, a category)."""

Score = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]
"""A confidence or quality score between 0 and 1."""
