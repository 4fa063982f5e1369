"""The clock: read at the entry points (handlers, loops, routes) and passed down as `now`."""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""A source of timezone-aware UTC times; tests pass a fixed or stepping one."""


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)
