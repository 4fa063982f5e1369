"""Upcasters: turn an older major version of an event into the next one."""

from collections.abc import Callable
from typing import Any

RawEvent = dict[str, Any]
Upcaster = Callable[[RawEvent], RawEvent]


class Upcasters:
    """A registry of one-step upcasters, keyed by event type and the version they read."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function that turns `from_version` into `from_version + 1`."""

        def decorator(step: Upcaster) -> Upcaster:
            self._steps[(event_type, from_version)] = step
            return step

        return decorator

    def can_upcast(self, event_type: str, version: int, target: int) -> bool:
        """Tell whether a chain of steps leads from `version` to `target`."""
        return all((event_type, v) in self._steps for v in range(version, target))

    def upcast(self, raw: RawEvent, *, event_type: str, version: int, target: int) -> RawEvent:
        """Apply each step from `version` up to `target`, checking each step's output version."""
        for current in range(version, target):
            raw = self._steps[(event_type, current)](dict(raw))
            if raw.get("schema_version") != current + 1:
                raise ValueError(f"upcaster {event_type} v{current} did not produce v{current + 1}")
        return raw


UPCASTERS = Upcasters()
"""The project's upcasters; empty while every event is at its first major version."""
