"""Row validation: raw rows become contract observations, or rejections with a clear reason."""

import json
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contracts.events import PriceObservation
from contracts.events.v1 import PricesScrapedPayload
from scraper.domain.importers import RawRow, read_rows
from scraper.domain.ingest import Accepted, ProductInfo, Rejected, dollars_to_cents, validate_row

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "au-grocery-2023"
NOW = datetime(2023, 6, 1, 12, 0, tzinfo=UTC)


def _validate(raw: RawRow, chain: str | None = "coles", store: str | None = "1") -> Accepted | Rejected:
    return validate_row(raw, default_chain=chain, default_store=store, now=NOW)


def _accepted(raw: RawRow) -> Accepted:
    result = _validate(raw)
    assert isinstance(result, Accepted), result
    return result


def _reason(raw: RawRow) -> str:
    result = _validate(raw)
    assert isinstance(result, Rejected), result
    assert result.raw is raw
    return result.reason


# --- dollars_to_cents -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        (4.35, 435),
        (1.15, 115),
        (0.1 + 0.2, 30),
        (19.99, 1999),
        (7, 700),
        (Decimal("1.10"), 110),
        ("4.5", 450),
        ("$4.50", 450),
        (" 4.50 ", 450),
        ("4.350", 435),
        (".5", 50),
        ("0", 0),
        (-0.0, 0),
        (100_000, 10_000_000),
    ],
)
def test_dollars_to_cents_is_exact(value: object, cents: int) -> None:
    assert dollars_to_cents(value) == cents


def test_dollars_to_cents_is_exact_for_every_float_a_price_file_holds() -> None:
    assert all(dollars_to_cents(cents / 100) == cents for cents in range(0, 2_000_000, 7))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "negative price"),
        ("-$4.50", "negative price"),
        ("abc", "price is not a number: 'abc'"),
        ("", "price is not a number: ''"),
        (True, "price is not a number: True"),
        (None, "price is not a number: None"),
        (float("nan"), "price is not a number: nan"),
        (float("inf"), "price is not a number: inf"),
        ("NaN", "price is not a number: 'NaN'"),
        ("1e3", "price is not a number: '1e3'"),
        # A comma is a thousands separator to some and a decimal comma to others: refused.
        ("$1,234.50", "price is not a number: '$1,234.50'"),
        ("4,50", "price is not a number: '4,50'"),
        ("4.355", "price has more than 2 decimals: '4.355'"),
        (4.355, "price has more than 2 decimals: 4.355"),
    ],
)
def test_dollars_to_cents_refuses_what_is_not_an_amount(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        dollars_to_cents(value)


def test_dollars_to_cents_names_the_amount_in_its_messages() -> None:
    with pytest.raises(ValueError, match=r"^negative was_price$"):
        dollars_to_cents("-1", what="was_price")


# --- validate_row ---------------------------------------------------------------------


def test_a_minimal_row_takes_defaults_and_the_current_time() -> None:
    accepted = _accepted({"sku": "123", "price": "4.35"})
    assert accepted == Accepted(
        chain="coles",
        store_id="1",
        observation=PriceObservation(sku="123", price_cents=435, observed_at=NOW),
        product=None,
    )


def test_a_full_row_gives_the_observation_and_the_product() -> None:
    accepted = _accepted(
        {
            "line": 3,
            "chain": "woolworths",
            "store_id": "1234",
            "sku": "94706",
            "name": "  Essentials White Vinegar ",
            "brand": "Essentials",
            "size": "2L",
            "category": "pantry",
            "barcode": "9300633603",
            "url": "https://www.woolworths.com.au/shop/productdetails/94706",
            "unit": "L",
            "quantity": 2,
            "price_cents": 170,
            "was_price": "$2.10",
            "observed_at": "2023-06-01T08:30:00+10:00",
            "available": "false",
            "img": "ignored: not a raw row key",
        }
    )
    assert accepted.chain == "woolworths"
    assert accepted.store_id == "1234"
    assert accepted.observation == PriceObservation(
        sku="94706",
        price_cents=170,
        was_price_cents=210,
        available=False,
        observed_at=datetime(2023, 5, 31, 22, 30, tzinfo=UTC),
    )
    assert accepted.product == ProductInfo(
        name="Essentials White Vinegar",
        brand="Essentials",
        size="2L",
        category="pantry",
        barcode="9300633603",
        url="https://www.woolworths.com.au/shop/productdetails/94706",
    )


def test_accepted_observations_fit_the_batch_contract() -> None:
    rows = [{"sku": str(n), "price_cents": n * 10, "observed_at": "2023-05-01"} for n in range(1, 4)]
    results = [_accepted(row) for row in rows]
    payload = PricesScrapedPayload(
        chain=results[0].chain,
        store_id=results[0].store_id,
        source="import",
        observations=tuple(result.observation for result in results),
    )
    assert [observation.price_cents for observation in payload.observations] == [10, 20, 30]


def test_numeric_ids_are_read_as_text_but_booleans_are_not() -> None:
    accepted = _accepted({"sku": 5100, "store_id": 42, "price_cents": 100})
    assert (accepted.observation.sku, accepted.store_id) == ("5100", "42")
    assert _reason({"sku": True, "price_cents": 100}) == "invalid sku True"


def test_blank_text_counts_as_missing() -> None:
    accepted = _accepted({"sku": "1", "price": "1", "was_price": " ", "name": "  ", "brand": "", "unit": ""})
    assert accepted.observation.was_price_cents is None
    assert accepted.product is None
    assert _reason({"sku": "  ", "price": 1}) == "missing sku"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"line": 7, "_error": "line 7 is not JSON: Expecting value at column 1"}, "line 7 is not JSON"),
        ({"price": 1}, "missing sku"),
        ({"sku": "1"}, "missing price"),
        ({"sku": "1", "price": -1}, "negative price"),
        ({"sku": "1", "price_cents": -5}, "negative price"),
        ({"sku": "1", "price": 100_000.01}, "price above $100,000"),
        ({"sku": "1", "price_cents": 10_000_001}, "price above $100,000"),
        ({"sku": "1", "price": "abc"}, "price is not a number: 'abc'"),
        ({"sku": "1", "price": "4.355"}, "price has more than 2 decimals: '4.355'"),
        ({"sku": "1", "price_cents": "4.5"}, "price_cents is not a whole number: '4.5'"),
        ({"sku": "1", "price_cents": 435.5}, "price_cents is not a whole number: 435.5"),
        ({"sku": "1", "price_cents": False}, "price_cents is not a whole number: False"),
        ({"sku": "1", "price_cents": 435, "price": "4.36"}, "price_cents 435 and price '4.36' disagree"),
        ({"sku": "1", "price": 1, "was_price": "x"}, "was_price is not a number: 'x'"),
        ({"sku": "1", "price": 1, "was_price_cents": -1}, "negative was_price"),
        ({"sku": "1", "price": 1, "unit": "parsecs"}, "unknown unit 'parsecs'"),
        ({"sku": "1", "price": 1, "unit": 5}, "unknown unit 5"),
        ({"sku": "1", "price": 1, "chain": "Coles!"}, "invalid chain 'Coles!'"),
        ({"sku": "1", "price": 1, "chain": "Coles"}, "invalid chain 'Coles'"),
        ({"sku": "1", "price": 1, "store_id": "store 1"}, "invalid store_id 'store 1'"),
        ({"sku": "a b", "price": 1}, "invalid sku 'a b'"),
        ({"sku": "x" * 65, "price": 1}, "invalid sku 'xxxxxxxx"),
        ({"sku": "1", "price": 1, "barcode": "123"}, "invalid barcode '123' (must be 8 to 14 digits)"),
        ({"sku": "1", "price": 1, "barcode": 93006336}, "invalid barcode 93006336 (must be 8 to 14 digits)"),
        ({"sku": "1", "price": 1, "available": "maybe"}, "available is not true or false: 'maybe'"),
        ({"sku": "1", "price": 1, "available": 1}, "available is not true or false: 1"),
        ({"sku": "1", "price": 1, "name": 42}, "invalid name: Input should be a valid string"),
        (
            {"sku": "1", "price": 1, "name": "x" * 501},
            "invalid name: String should have at most 500 characters",
        ),
        (
            {"sku": "1", "price": 1, "name": "Milk", "brand": "b" * 121},
            "invalid brand: String should have at most 120 characters",
        ),
        ({"sku": "1", "price": 1, "observed_at": "yesterday"}, "timestamp is not ISO 8601: 'yesterday'"),
        ({"sku": "1", "price": 1, "observed_at": 1685620800}, "timestamp is not text: 1685620800"),
    ],
)
def test_a_bad_row_is_rejected_with_a_short_reason(raw: RawRow, reason: str) -> None:
    assert _reason(raw).startswith(reason)


def test_a_row_without_chain_or_store_and_no_default_is_rejected() -> None:
    row = {"sku": "1", "price": 1}
    assert _validate(row, chain=None) == Rejected("missing chain", row)
    assert _validate(row, store=None) == Rejected("missing store_id", row)
    assert _validate({**row, "chain": "iga", "store_id": "7"}, chain=None, store=None) == _validate(
        {**row, "chain": "iga", "store_id": "7"}
    )


def test_a_row_chain_wins_over_the_default_and_is_not_fixed() -> None:
    assert _accepted({"sku": "1", "price": 1, "chain": "aldi"}).chain == "aldi"
    assert _reason({"sku": "1", "price": 1, "chain": " aldi"}) == "invalid chain ' aldi'"


@pytest.mark.parametrize(
    ("observed_at", "expected"),
    [
        ("2023-06-01T12:00:00Z", NOW),
        ("2023-06-01T14:00:00+02:00", NOW),
        ("2023-06-01T07:00:00-05:00", NOW),
        ("2023-05-01", datetime(2023, 5, 1, tzinfo=UTC)),
        ("2023-06-01T12:04:59+00:00", NOW + timedelta(minutes=4, seconds=59)),
        (None, NOW),
    ],
)
def test_timestamps_are_read_into_utc(observed_at: str | None, expected: datetime) -> None:
    observation = _accepted({"sku": "1", "price": 1, "observed_at": observed_at}).observation
    assert observation.observed_at == expected
    assert observation.observed_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("observed_at", "reason"),
    [
        ("2023-06-01T12:00:00", "timestamp has no timezone"),
        ("2023-06-01 12:00", "timestamp has no timezone"),
        ("2023-06-01T12:05:01Z", "timestamp in the future"),
        ("2023-06-02", "timestamp in the future"),
        ("2023-02-30", "timestamp is not ISO 8601: '2023-02-30'"),
    ],
)
def test_timestamps_without_zone_or_from_the_future_are_rejected(observed_at: str, reason: str) -> None:
    assert _reason({"sku": "1", "price": 1, "observed_at": observed_at}) == reason


def test_now_in_another_zone_is_the_same_moment() -> None:
    now = NOW.astimezone(timezone(timedelta(hours=10)))
    result = validate_row({"sku": "1", "price": 1}, default_chain="coles", default_store="1", now=now)
    assert isinstance(result, Accepted)
    assert result.observation.observed_at == NOW


def test_a_naive_now_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        validate_row({}, default_chain="coles", default_store="1", now=datetime(2023, 6, 1))


@pytest.mark.parametrize(
    ("available", "expected"),
    [(True, True), (False, False), ("TRUE", True), (" false ", False), (None, True)],
)
def test_available_reads_booleans_and_their_text(available: object, expected: bool) -> None:
    assert _accepted({"sku": "1", "price": 1, "available": available}).observation.available is expected


@pytest.mark.parametrize("unit", ["g", "KG", " ml ", "Stk", "wg", "each", "sheets"])
def test_known_units_are_accepted_in_any_case(unit: str) -> None:
    _accepted({"sku": "1", "price": 1, "unit": unit})


# --- whole files ----------------------------------------------------------------------


def _outcomes(filename: str, data: bytes) -> list[str]:
    """Validate a file and list each row's outcome: `sku` when accepted, the reason when not."""
    return [
        result.observation.sku if isinstance(result, Accepted) else result.reason
        for result in (_validate(row) for row in read_rows(filename, data))
    ]


def test_bad_rows_in_a_jsonl_file_are_rejected_and_the_rest_go_on() -> None:
    data = b"\n".join(
        [
            b'{"sku": "1", "price_cents": 100, "observed_at": "2023-05-01T10:00:00Z"}',
            b'{"sku": "2", "price_cents": 100, "observed_at": "2023-05-01T10:00:00"}',
            b"{broken",
            b'{"sku": "3", "price_cents": 100, "was_price_cents": 150, "available": false}',
            b'{"sku": "4", "price_cents": -1}',
            b'{"sku": "5", "price_cents": 250, "chain": "iga", "store_id": "77"}',
        ]
    )
    assert _outcomes("prices.jsonl", data) == [
        "1",
        "timestamp has no timezone",
        "line 3 is not JSON: Expecting property name enclosed in double quotes at column 2",
        "3",
        "negative price",
        "5",
    ]


def test_bad_rows_in_a_csv_file_are_rejected_and_the_rest_go_on() -> None:
    data = (
        b"sku,name,price,unit,barcode,observed_at\n"
        b"1,Milk,$1.15,l,9300633603,2023-05-01\n"
        b"2,Rope,3.00,parsecs,,\n"
        b"3,Flour,abc,kg,,\n"
        b"4,Sugar,2.00\n"
        b"5,Eggs,5.20,each,12,\n"
        b"6,Bread,3.50,,,\n"
    )
    assert _outcomes("prices.csv", data) == [
        "1",
        "unknown unit 'parsecs'",
        "price is not a number: 'abc'",
        "line 5 has 3 cells, the header has 6",
        "invalid barcode '12' (must be 8 to 14 digits)",
        "6",
    ]


def test_heissepreise_rows_keep_their_chain_and_history_date() -> None:
    data = json.dumps(
        [
            {
                "store": "billa",
                "id": "00-1",
                "name": "Milch",
                "price": 1.19,
                "unit": "ml",
                "quantity": 1000,
                "priceHistory": [{"date": "2023-05-01", "price": 1.19}],
            },
            {"store": "dmDe", "id": "2", "name": "Seife", "price": 0.95, "unit": "stk", "quantity": 1},
            {"store": "spar", "id": "3", "name": "Brot", "price": 2.5, "unit": "laib", "quantity": 1},
        ]
    ).encode()
    results = [_validate(row) for row in read_rows("latest-canonical.json", data)]
    first = results[0]
    assert isinstance(first, Accepted)
    assert (first.chain, first.observation.observed_at) == ("billa", datetime(2023, 5, 1, tzinfo=UTC))
    assert first.product is not None
    assert first.product.size == "1000 ml"
    assert [result.reason for result in results[1:] if isinstance(result, Rejected)] == [
        "invalid chain 'dmDe'",
        "unknown unit 'laib'",
    ]


@pytest.mark.parametrize(("chain", "at_least"), [("coles", 8000), ("aldi", 190), ("woolworths", 5000)])
def test_real_scrapes_are_mostly_accepted(chain: str, at_least: int) -> None:
    rows = list(read_rows(f"{chain}.json", (DATA / f"{chain}.json").read_bytes()))
    results = [validate_row(row, default_chain=chain, default_store="1", now=NOW) for row in rows]
    accepted = [result for result in results if isinstance(result, Accepted)]
    reasons = Counter(result.reason for result in results if isinstance(result, Rejected))
    print(f"\n{chain}.json: {len(rows)} rows, {len(accepted)} accepted, {reasons.total()} rejected")
    for reason, count in reasons.most_common(5):
        print(f"  {count:6d}  {reason}")
    assert len(accepted) >= at_least
    assert all(reason.strip() for reason in reasons)
    assert all(result.product is not None and result.observation.observed_at == NOW for result in accepted)
    if chain == "aldi":
        assert all(not result.observation.sku.isdigit() for result in accepted)


def test_validation_throughput_is_printed() -> None:
    rows: list[dict[str, Any]] = list(read_rows("coles.json", (DATA / "coles.json").read_bytes()))
    for row in rows[::2]:
        row["observed_at"] = "2023-05-01T09:30:00+10:00"
        row["was_price"] = row["price"]
    batch = rows * 6
    started = time.perf_counter()
    results = [validate_row(row, default_chain="coles", default_store="1", now=NOW) for row in batch]
    elapsed = time.perf_counter() - started
    print(f"\nvalidate_row: {len(batch)} rows in {elapsed:.3f}s = {len(batch) / elapsed:,.0f} rows/s")
    assert all(isinstance(result, Accepted) for result in results)
