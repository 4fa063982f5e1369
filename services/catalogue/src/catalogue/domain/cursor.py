"""The export's opaque cursor: the last key a page answered, in the export's unique order."""

import base64
import binascii
import json
from dataclasses import dataclass


class BadCursorError(ValueError):
    """A cursor this service did not write."""


@dataclass(frozen=True, slots=True, order=True)
class ExportKey:
    """A price's place in the export's order: chain, store, then sku."""

    chain: str
    store_id: str
    sku: str


def encode(key: ExportKey) -> str:
    """Return the cursor that continues after key."""
    raw = json.dumps([key.chain, key.store_id, key.sku], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> ExportKey:
    """Return the key a cursor continues after; raise BadCursorError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise BadCursorError("not a cursor of this export") from exc
    if not (isinstance(parts, list) and len(parts) == 3 and all(isinstance(p, str) for p in parts)):
        raise BadCursorError("not a cursor of this export")
    return ExportKey(*parts)
