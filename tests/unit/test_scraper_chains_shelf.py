"""Shelf labels read exactly or not at all, and the validator carries what real shelves show."""

from datetime import UTC, datetime
from typing import Literal

import pytest

from contracts.events.v1 import MultiBuy, StatedUnitPrice
from scraper.domain.ingest import Accepted, Rejected, validate_row
from scraper.domain.shelf import parse_multibuy, parse_unit_price

Unit = Literal["g", "kg", "ml", "l", "ea"]

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "cents", "quantity", "unit"),
    [
        ("$1.50 per 100g", 150, 100, "g"),
        ("$3.00 / 1L", 300, 1, "l"),
        ("$0.38 per 1ea", 38, 1, "ea"),
        ("$1.67 / 100G", 167, 100, "g"),
        ("$0.55 per 100mL", 55, 100, "ml"),
        ("$12 per kg", 1200, 1, "kg"),
        ("$4.00 / 1 EACH", 400, 1, "ea"),
    ],
)
def test_unit_prices_as_the_chains_write_them(text: str, cents: int, quantity: int, unit: Unit) -> None:
    assert parse_unit_price(text) == StatedUnitPrice(cents=cents, quantity=quantity, unit=unit, text=text)


@pytest.mark.parametrize(
    "text", ["$2.50 per 1 bunch", "$0.27 / 10SH", "$1.555 per 100g", "1.50 per 100g", "$1.50 per 0g", ""]
)
def test_an_unknown_unit_price_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="unrecognised unit price"):
        parse_unit_price(text)


@pytest.mark.parametrize(
    ("text", "quantity", "cents"),
    [("2 for $5", 2, 500), ("Any 3 for $10", 3, 1000), ("Buy 2 for $7.50", 2, 750), ("2 for $12.0", 2, 1200)],
)
def test_multibuys(text: str, quantity: int, cents: int) -> None:
    assert parse_multibuy(text) == MultiBuy(quantity=quantity, total_cents=cents)


@pytest.mark.parametrize("text", ["1 for $3", "Buy more, save more", "2 for $5 each", "2 for 5"])
def test_an_unknown_multibuy_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="unrecognised multi-buy"):
        parse_multibuy(text)


def _validate(**row: object) -> Accepted | Rejected:
    return validate_row({"sku": "1", "price": 5.5, **row}, default_chain="coles", default_store="7", now=NOW)


def test_the_observation_carries_unit_price_multibuy_member_price_and_selling_by_weight() -> None:
    verdict = _validate(unit_price="$2.20 per 100g", multibuy="2 for $10", member_price=4.5, sold_by="kg")
    assert isinstance(verdict, Accepted)
    seen = verdict.observation
    assert seen.unit_price == StatedUnitPrice(cents=220, quantity=100, unit="g", text="$2.20 per 100g")
    assert seen.multibuy == MultiBuy(quantity=2, total_cents=1000)
    assert seen.member_price_cents == 450
    assert seen.sold_by == "kg"
    assert seen.price_cents == 550
    assert seen.was_price_cents is None


def test_without_labels_the_observation_is_as_before() -> None:
    verdict = _validate()
    assert isinstance(verdict, Accepted)
    seen = verdict.observation
    assert (seen.unit_price, seen.multibuy, seen.member_price_cents, seen.sold_by) == (
        None,
        None,
        None,
        "each",
    )


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"unit_price": "$2.50 per 1 bunch"}, "unrecognised unit price '$2.50 per 1 bunch'"),
        ({"multibuy": "Buy more, save more"}, "unrecognised multi-buy 'Buy more, save more'"),
        ({"sold_by": "litre"}, "sold_by is not each or kg: 'litre'"),
        ({"member_price": "cheap"}, "member_price is not a number: 'cheap'"),
        ({"unit_price": 1.5}, "unit price is not text: 1.5"),
    ],
)
def test_a_label_that_cannot_be_read_quarantines_the_row(row: dict[str, object], reason: str) -> None:
    verdict = _validate(**row)
    assert isinstance(verdict, Rejected)
    assert verdict.reason == reason
