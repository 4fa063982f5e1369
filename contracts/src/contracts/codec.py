"""Encode events into Kafka records and decode records back, strictly."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from contracts.envelope import Event
from contracts.events import V1
from contracts.upcasting import UPCASTERS, Upcasters

TYPE_HEADER = "event_type"
VERSION_HEADER = "schema_version"
EVENT_ID_HEADER = "event_id"
CORRELATION_HEADER = "correlation_id"


class ContractError(ValueError):
    """A message that no contract accepts; `reason` is a short machine-readable kind."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record ready to send."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def _header(headers: Mapping[str, str | bytes], name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


_UTC_REQUIRED = "timestamp must be in UTC (offset +00:00 or Z)"


def _summarise(error: ValidationError) -> str:
    """Render pydantic errors as `field.path: message; ...` without echoing input values."""
    parts = []
    for err in error.errors(include_input=False, include_url=False)[:10]:
        where = ".".join(str(p) for p in err["loc"]) or "<message>"
        # pydantic's core checks the offset ("Timezone offset of 0 required"): say what the contract wants.
        message = _UTC_REQUIRED if err["type"] == "timezone_offset" else err["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


class Codec:
    """Maps (event_type, major version) to contract classes and upcasts older versions."""

    def __init__(self, events: Iterable[type[Event]], upcasters: Upcasters) -> None:
        self._events = {(e.EVENT_TYPE, e.SCHEMA_VERSION): e for e in events}
        self._latest: dict[str, int] = {}
        for event_type, version in self._events:
            self._latest[event_type] = max(version, self._latest.get(event_type, 0))
        self._upcasters = upcasters

    def encode(self, event: Event) -> Record:
        """Serialise an event with its key and type, version, id and correlation headers."""
        return Record(
            key=event.partition_key().encode(),
            value=event.model_dump_json().encode(),
            headers=(
                (TYPE_HEADER, event.EVENT_TYPE.encode()),
                (VERSION_HEADER, str(event.SCHEMA_VERSION).encode()),
                # Informational copies of the envelope, so logs and tools can follow a trace unread.
                (EVENT_ID_HEADER, str(event.event_id).encode()),
                (CORRELATION_HEADER, str(event.correlation_id).encode()),
            ),
        )

    def decode(self, value: bytes, headers: Mapping[str, str | bytes] | None = None) -> Event:
        """Parse and validate a record's value; raise ContractError on anything off-contract."""
        headers = headers or {}
        event_type = _header(headers, TYPE_HEADER)
        version_text = _header(headers, VERSION_HEADER)
        raw: dict[str, object] | None = None
        if event_type is None or version_text is None:
            raw = self._load(value)
            event_type = str(raw.get("event_type", "")) if event_type is None else event_type
            version_text = str(raw.get("schema_version", "")) if version_text is None else version_text
        try:
            version = int(version_text)
        except ValueError:
            raise ContractError("bad_version", f"schema_version {version_text!r} is not an integer") from None
        latest = self._latest.get(event_type)
        if latest is None:
            raise ContractError("unknown_event_type", f"no contract for event type {event_type!r}")
        if version == latest:
            return self._validate(self._events[(event_type, version)], value)
        if version > latest or not self._upcasters.can_upcast(event_type, version, latest):
            raise ContractError(
                "unknown_version", f"{event_type} v{version} is not known (latest is v{latest})"
            )
        raw = raw if raw is not None else self._load(value)
        upcast = self._upcasters.upcast(raw, event_type=event_type, version=version, target=latest)
        return self._validate(self._events[(event_type, latest)], json.dumps(upcast).encode())

    @staticmethod
    def _load(value: bytes) -> dict[str, object]:
        try:
            raw = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ContractError("not_json", f"message is not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ContractError("not_an_object", f"message is JSON {type(raw).__name__}, not an object")
        return raw

    @staticmethod
    def _validate(model: type[Event], value: bytes) -> Event:
        try:
            event = model.model_validate_json(value)
        except ValidationError as exc:
            kind = "not_json" if any(e["type"] == "json_invalid" for e in exc.errors()) else "invalid"
            raise ContractError(kind, f"{model.__name__}: {_summarise(exc)}") from None
        return event


CODEC = Codec(V1, UPCASTERS)
"""The codec every service uses: all current contracts and the project's upcasters."""
