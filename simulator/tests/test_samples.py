"""The sample world `pricestream demo --no-scrape` publishes."""

from collections import Counter

import pytest

from contracts import Event
from contracts.events import PricesScraped, StoreGroupChanged
from simulator.samples import PRODUCTS, sample_events

pytestmark = pytest.mark.unit


def _prices(events: list[Event]) -> list[tuple[str, list[int]]]:
    return [
        (event.payload.store_id, [o.price_cents for o in event.payload.sightings()])
        for event in events
        if isinstance(event, PricesScraped)
    ]


def test_the_sample_world_is_the_same_every_time_and_groups_its_stores() -> None:
    events = list(sample_events(stores=4))
    assert _prices(events) == _prices(list(sample_events(stores=4)))
    assert Counter(type(event).__name__ for event in events) == {
        "ProductObserved": len(PRODUCTS),
        "PricesScraped": 4,
        "StoreGroupChanged": 1,
        "RescrapeRequested": 1,
    }
    [group] = [event for event in events if isinstance(event, StoreGroupChanged)]
    assert group.payload.anchor_store_id == "7701"
    assert group.payload.member_store_ids == ("7702", "7703", "7704")
    # Prices are the list prices, some 50 cents off.
    listed = [price for *_, price in PRODUCTS]
    for _, prices in _prices(events):
        assert all(price in (regular, regular - 50) for price, regular in zip(prices, listed, strict=True))
