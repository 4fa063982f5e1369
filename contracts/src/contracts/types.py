"""Strict scalar types shared by every contract."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

# Money is integer cents: floats drift, and a grocery price above $100,000 is a bug.
MAX_PRICE_CENTS = 10_000_000

Cents = Annotated[int, Field(strict=True, ge=0, le=MAX_PRICE_CENTS)]
"""An amount of money in integer cents, 0 to MAX_PRICE_CENTS."""


# Every timestamp in an event is a past fact; a little clock skew between hosts is normal.
MAX_CLOCK_SKEW = timedelta(minutes=5)


_NO_OFFSET = timedelta(0)


def _require_utc(value: datetime) -> datetime:
    """Reject an aware timestamp whose offset is not UTC, or that lies in the future."""
    # This runs for every price decoded: its constants are built once, not per call.
    if value.utcoffset() != _NO_OFFSET:
        raise ValueError("timestamp must be in UTC (offset +00:00 or Z)")
    if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise ValueError("timestamp is in the future")
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_require_utc)]
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
