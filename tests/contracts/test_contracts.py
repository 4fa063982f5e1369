"""Contracts: golden examples, committed schemas, compatibility and upcasting."""

import json
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import Field

from contracts import CODEC, TOPICS, Codec, ContractError, Event
from contracts.events import V1, PriceColumns, PriceObservation, PricesScraped
from contracts.events.v1 import PricesScrapedPayload
from contracts.registry import SERVICES, TopicSpec
from contracts.schema import EXAMPLE_DIR, SCHEMA_DIR, breaking_changes, generate, schema_filename, stale
from contracts.upcasting import Upcasters

pytestmark = pytest.mark.contracts


def _example(event: type[Event]) -> bytes:
    return (EXAMPLE_DIR / schema_filename(event)).read_bytes()


@pytest.mark.parametrize("event", V1, ids=lambda e: e.EVENT_TYPE)
def test_golden_example_validates_and_round_trips(event: type[Event]) -> None:
    decoded = CODEC.decode(_example(event))
    assert type(decoded) is event
    record = CODEC.encode(decoded)
    again = CODEC.decode(record.value, dict(record.headers))
    assert again == decoded
    assert record.key == decoded.partition_key().encode()


def test_every_event_version_has_exactly_one_example_and_schema() -> None:
    names = {schema_filename(e) for e in V1}
    assert {p.name for p in EXAMPLE_DIR.glob("*.json")} == names
    assert {p.name for p in SCHEMA_DIR.glob("*.json")} == names


def test_committed_schemas_equal_the_generated_ones() -> None:
    assert stale() == [], "run `make schemas` and commit contracts/schemas/"


def test_committed_schemas_are_backward_compatible_with_the_models() -> None:
    for event in V1:
        committed = json.loads((SCHEMA_DIR / schema_filename(event)).read_text())
        assert breaking_changes(committed, generate(event)) == []


def _committed(event: type[Event]) -> dict[str, object]:
    schema: dict[str, object] = json.loads((SCHEMA_DIR / schema_filename(event)).read_text())
    return schema


class _ObservationWithRequiredUnit(PriceObservation):
    """A deliberately broken v1: a new required field."""

    unit: str


class _ObservationWithOptionalUnit(PriceObservation):
    """A compatible v1 change: a new optional field."""

    unit: str | None = None


def _prices_scraped_with(observation: type[PriceObservation]) -> type[Event]:
    class Payload(PricesScrapedPayload):
        observations: tuple[observation, ...] = Field(default=(), max_length=5_000)  # type: ignore[valid-type]

    class Variant(PricesScraped):
        payload: Payload

    return Variant


def test_compatibility_check_rejects_a_new_required_field() -> None:
    broken = generate(_prices_scraped_with(_ObservationWithRequiredUnit))
    problems = breaking_changes(_committed(PricesScraped), broken)
    assert any("unit: field is now required" in p for p in problems), problems


def test_compatibility_check_rejects_a_narrowed_type_and_enum() -> None:
    old = _committed(PricesScraped)
    new = json.loads(json.dumps(old))
    new["$defs"]["PriceObservation"]["properties"]["price_cents"]["maximum"] = 1000
    new["$defs"]["PricesScrapedPayload"]["properties"]["source"]["enum"] = ["scrape"]
    new["$defs"]["PageRef"]["properties"]["page"]["type"] = "string"
    problems = breaking_changes(old, new)
    assert any("price_cents: maximum tightened" in p for p in problems), problems
    assert any("source: values ['import', 'ingest'] no longer allowed" in p for p in problems), problems
    assert any("page: type ['integer'] became ['string']" in p for p in problems), problems


def test_compatibility_check_rejects_a_removed_field() -> None:
    old = _committed(PricesScraped)
    new = json.loads(json.dumps(old))
    del new["$defs"]["PriceObservation"]["properties"]["available"]
    assert any("available: field removed" in p for p in breaking_changes(old, new))


def test_compatibility_check_accepts_a_new_optional_field() -> None:
    compatible = generate(_prices_scraped_with(_ObservationWithOptionalUnit))
    assert breaking_changes(_committed(PricesScraped), compatible) == []


# --- strict validation -----------------------------------------------------------------


def _prices_doc(**observation_changes: object) -> dict[str, typing.Any]:
    doc: dict[str, typing.Any] = json.loads(_example(PricesScraped))
    doc["payload"]["observations"][0].update(observation_changes)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"price_cents": -1}, "greater than or equal to 0"),
        ({"price_cents": 4.5}, "valid integer"),
        ({"price_cents": "450"}, "valid integer"),
        ({"price_cents": 10_000_001}, "less than or equal to 10000000"),
        ({"observed_at": "2026-11-20T08:29:41"}, "timezone"),
        ({"observed_at": "2026-11-20T18:29:41+10:00"}, "must be in UTC"),
        ({"observed_at": "2999-01-01T00:00:00Z"}, "in the future"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_strict_validation_rejects(change: dict[str, object], message: str) -> None:
    with pytest.raises(ContractError, match=message) as info:
        CODEC.decode(json.dumps(_prices_doc(**change)).encode())
    assert info.value.reason == "invalid"


def test_a_price_from_the_future_is_named_by_its_place_in_the_batch() -> None:
    doc = _prices_doc()
    observations = doc["payload"]["observations"]
    observations.append({**observations[0], "sku": "late", "observed_at": "2999-01-01T00:00:00Z"})
    observations.append({**observations[0], "sku": "later", "observed_at": "2999-01-02T00:00:00Z"})
    late = len(observations) - 2
    expected = rf"observations\.{late}\.observed_at: timestamp is in the future"
    with pytest.raises(ContractError, match=expected):
        CODEC.decode(json.dumps(doc).encode())


def test_decoded_timestamps_are_utc_whichever_way_the_offset_was_written() -> None:
    doc = _prices_doc(observed_at="2026-11-20T08:29:41+00:00")
    event = CODEC.decode(json.dumps(doc).encode())
    assert isinstance(event, PricesScraped)
    first = event.payload.observations[0].observed_at
    assert first.utcoffset() == timedelta(0)
    assert first == datetime(2026, 11, 20, 8, 29, 41, tzinfo=UTC)
    written = event.model_dump(mode="json")["payload"]["observations"][0]["observed_at"]
    assert written == "2026-11-20T08:29:41Z"


# --- prices as columns -----------------------------------------------------------------


def _as_columns(doc: dict[str, typing.Any], **column_changes: object) -> dict[str, typing.Any]:
    """Return a PricesScraped document whose prices are the example's, given as columns."""
    example = CODEC.decode(json.dumps(doc).encode())
    assert isinstance(example, PricesScraped)
    payload = example.payload.model_dump(mode="json", exclude={"observations"}, exclude_none=True)
    payload["prices"] = {
        **PriceColumns.of(example.payload.observations).model_dump(mode="json", exclude_none=True),
        **column_changes,
    }
    return {**doc, "payload": payload}


def test_prices_as_columns_read_the_same_as_one_by_one() -> None:
    rows = CODEC.decode(_example(PricesScraped))
    columns = CODEC.decode(json.dumps(_as_columns(json.loads(_example(PricesScraped)))).encode())
    assert isinstance(rows, PricesScraped)
    assert isinstance(columns, PricesScraped)
    assert columns.payload.prices is not None
    assert not columns.payload.observations
    assert columns.payload.sightings() == rows.payload.sightings()
    assert [s.sold_by for s in columns.payload.sightings()] == ["each", "each", "each", "kg"]
    assert columns.payload.count() == rows.payload.count() == 4
    assert columns.payload.newest() == rows.payload.newest()
    # A column that holds only its default is left out; the one time all share is said once.
    assert columns.payload.prices.available is None
    assert columns.payload.prices.observed_at_each is None
    assert len(CODEC.encode(columns).value) < len(CODEC.encode(rows).value)


def test_prices_seen_at_different_moments_keep_each_one() -> None:
    doc = _prices_doc()
    doc["payload"]["observations"][1]["observed_at"] = "2026-11-20T07:00:00Z"
    rows = CODEC.decode(json.dumps(doc).encode())
    columns = CODEC.decode(json.dumps(_as_columns(doc)).encode())
    assert isinstance(rows, PricesScraped)
    assert isinstance(columns, PricesScraped)
    assert columns.payload.prices is not None
    assert columns.payload.prices.observed_at_each is not None
    assert columns.payload.sightings() == rows.payload.sightings()
    assert columns.payload.newest() == datetime(2026, 11, 20, 8, 29, 41, tzinfo=UTC)


def test_sightings_are_in_datetime_utc_so_they_compare_without_a_call() -> None:
    event = CODEC.decode(json.dumps(_as_columns(json.loads(_example(PricesScraped)))).encode())
    assert isinstance(event, PricesScraped)
    assert {s.observed_at.tzinfo for s in event.payload.sightings()} == {UTC}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"price_cents": [450, 325, 399]}, "price_cents: 3 values for 4 prices"),
        ({"sold_by": ["each"]}, "sold_by: 1 values for 4 prices"),
        ({"price_cents": [450, 325, -1, 450]}, "greater than or equal to 0"),
        ({"observed_at": "2999-01-01T00:00:00Z"}, "in the future"),
        ({"observed_at": "2026-11-20T18:29:41+10:00"}, "must be in UTC"),
        (
            {"observed_at_each": ["2026-11-20T08:00:00Z"] * 4},
            "observed_at: must be the newest of observed_at_each",
        ),
        ({"sku": []}, "at least 1 item"),
        ({"colour": ["red"] * 4}, "Extra inputs are not permitted"),
    ],
)
def test_columns_are_checked_as_strictly_as_rows(change: dict[str, object], message: str) -> None:
    with pytest.raises(ContractError, match=message) as info:
        CODEC.decode(json.dumps(_as_columns(json.loads(_example(PricesScraped)), **change)).encode())
    assert info.value.reason == "invalid"


def test_prices_come_one_way_only() -> None:
    doc = json.loads(_example(PricesScraped))
    both = _as_columns(doc)
    both["payload"]["observations"] = doc["payload"]["observations"]
    neither = _as_columns(doc)
    del neither["payload"]["prices"]
    for wrong in (both, neither):
        with pytest.raises(ContractError, match="either as observations or as columns"):
            CODEC.decode(json.dumps(wrong).encode())


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"\xff\x00 not json", {}, "not_json"),
        (b"[1, 2]", {}, "not_an_object"),
        (b'{"event_type": "PriceScrapped", "schema_version": 1}', {}, "unknown_event_type"),
        (b"{}", {"event_type": b"PricesScraped", "schema_version": b"9"}, "unknown_version"),
        (b"{}", {"event_type": b"PricesScraped", "schema_version": b"one"}, "bad_version"),
    ],
)
def test_off_contract_messages_get_a_reason(value: bytes, headers: dict[str, bytes], reason: str) -> None:
    with pytest.raises(ContractError) as info:
        CODEC.decode(value, headers)
    assert info.value.reason == reason


def test_header_and_body_must_agree() -> None:
    with pytest.raises(ContractError, match="event_type"):
        CODEC.decode(_example(PricesScraped), {"event_type": b"ProductObserved", "schema_version": b"1"})


def test_new_fills_the_envelope() -> None:
    payload = json.dumps(json.loads(_example(PricesScraped))["payload"])
    event = PricesScraped.new(producer="scraper", payload=PricesScrapedPayload.model_validate_json(payload))
    assert event.event_type == "PricesScraped"
    assert event.correlation_id == event.event_id
    assert event.occurred_at.tzinfo is not None


# --- upcasting -------------------------------------------------------------------------


def test_upcaster_path_from_a_made_up_older_version() -> None:
    """A legacy v0 (dollars as floats, `shop` instead of `store_id`) reads as v1."""
    upcasters = Upcasters()

    @upcasters.register("PricesScraped", from_version=0)
    def _v0_to_v1(raw: dict[str, object]) -> dict[str, object]:
        legacy = raw.pop("data")
        assert isinstance(legacy, dict)
        raw["payload"] = {
            "chain": legacy["chain"],
            "store_id": legacy["shop"],
            "source": "import",
            "observations": [
                {"sku": o["sku"], "price_cents": round(o["price"] * 100), "observed_at": o["seen"]}
                for o in legacy["prices"]
            ],
        }
        return {**raw, "schema_version": 1}

    v0 = {
        "event_id": "5b0f9a39-3a6c-4d43-9c1f-3b4f0b6f1a11",
        "event_type": "PricesScraped",
        "schema_version": 0,
        "occurred_at": "2023-05-01T00:00:00Z",
        "producer": "legacy-monolith",
        "correlation_id": "5b0f9a39-3a6c-4d43-9c1f-3b4f0b6f1a11",
        "data": {
            "chain": "coles",
            "shop": "7724",
            "prices": [{"sku": "1", "price": 4.35, "seen": "2023-05-01T00:00:00Z"}],
        },
    }
    codec = Codec(V1, upcasters)
    event = codec.decode(json.dumps(v0).encode())
    assert isinstance(event, PricesScraped)
    assert event.payload.store_id == "7724"
    assert event.payload.observations[0].price_cents == 435
    # Without the upcaster, the project's codec refuses the old version clearly.
    with pytest.raises(ContractError, match="v0 is not known"):
        CODEC.decode(json.dumps(v0).encode())


# --- registry --------------------------------------------------------------------------


def test_registry_is_consistent() -> None:
    names = [spec.name for spec in TOPICS]
    assert len(names) == len(set(names))
    assert {spec.event for spec in TOPICS} == set(V1), "every event has exactly one topic"
    for spec in TOPICS:
        assert spec.name.endswith(f".v{spec.event.SCHEMA_VERSION}"), "topic names carry the major version"
        assert set(spec.producers) | set(spec.consumers) <= set(SERVICES)
    assert len({spec.dlq for spec in TOPICS} | set(names)) == 2 * len(TOPICS), "DLQs have names of their own"


def test_literal_type_is_pinned_per_event() -> None:
    for event in V1:
        field = event.model_fields["event_type"]
        assert typing.get_args(field.annotation) == (event.EVENT_TYPE,)
        assert isinstance(event.EVENT_TYPE, str)


def test_example_dir_is_beside_schemas() -> None:
    assert Path(EXAMPLE_DIR).parent == Path(SCHEMA_DIR).parent


@pytest.mark.parametrize("spec", TOPICS, ids=lambda spec: spec.name)
def test_each_topics_registered_key_is_what_its_event_partitions_by(spec: TopicSpec) -> None:
    """The registry's `key` (payload fields joined by ':') must be the event's partition_key()."""
    event = CODEC.decode(_example(spec.event))
    payload = dict(event)["payload"]
    fields = spec.key.split(":")
    assert all(name in type(payload).model_fields for name in fields), spec.key
    assert event.partition_key() == ":".join(str(getattr(payload, name)) for name in fields)
    # A payload whose key fields change must change the key: the key is built from them.
    changed = payload.model_copy(update={fields[-1]: "other-value"})
    assert event.model_copy(update={"payload": changed}).partition_key().endswith(":other-value")
