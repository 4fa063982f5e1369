"""The web page's shopper state in URLs and cookies, and the pipeline page's reading of /metrics."""

import pytest

from catalogue.web.services import topic_counts
from catalogue.web.state import (
    MAX_QUANTITY,
    Item,
    StateError,
    format_basket,
    format_stores,
    parse_basket,
    parse_stores,
    with_quantity,
)
from servicekit.metrics import Metrics

pytestmark = pytest.mark.unit


def test_stores_round_trip_one_per_chain() -> None:
    chosen = parse_stores("woolworths:12,coles:7724")
    assert chosen == {"woolworths": "12", "coles": "7724"}
    assert format_stores(chosen) == "coles:7724,woolworths:12"
    assert parse_stores(None) == {} == parse_stores("")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("coles:1,coles:2", "two stores of coles"),
        ("coles", "is not chain:store"),
        ("Coles:1", "is not chain:store"),
        ("coles:<script>", "is not chain:store"),
    ],
)
def test_bad_stores_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(StateError, match=problem):
        parse_stores(text)


def test_basket_reads_quantities_and_adds_up_repeats() -> None:
    items = parse_basket("coles:123*2,woolworths:55,coles:123")
    assert items == [Item("coles", "123", 3), Item("woolworths", "55", 1)]
    assert format_basket(items) == "coles:123*3,woolworths:55"
    assert parse_basket(format_basket(items)) == items


@pytest.mark.parametrize("text", ["coles:1*0", "coles:1*x", f"coles:1*{MAX_QUANTITY + 1}", "coles:"])
def test_bad_baskets_are_refused(text: str) -> None:
    with pytest.raises(StateError):
        parse_basket(text)


def test_setting_a_quantity_keeps_the_order_and_zero_removes() -> None:
    items = parse_basket("coles:1,coles:2,coles:3")
    assert format_basket(with_quantity(items, "coles", "2", 5)) == "coles:1,coles:2*5,coles:3"
    assert format_basket(with_quantity(items, "coles", "2", 0)) == "coles:1,coles:3"
    assert format_basket(with_quantity(items, "aldi", "9", 1)) == "coles:1,coles:2,coles:3,aldi:9"
    with pytest.raises(StateError):
        with_quantity(items, "coles", "1", -1)


def test_topic_counts_sum_a_services_counters_with_failures_by_reason() -> None:
    metrics = Metrics()
    metrics.consumed.labels("prices.scraped.v1").inc(5)
    metrics.processed.labels("prices.scraped.v1").inc(3)
    metrics.failed.labels("prices.scraped.v1", "invalid").inc(2)
    metrics.failed.labels("prices.scraped.v1", "timeout").inc()
    metrics.dead_lettered.labels("prices.scraped.v1").inc(2)
    metrics.consumed.labels("groups.changed.v1").inc()

    counts = {c.topic: c for c in topic_counts(metrics.render().decode())}
    assert set(counts) == {"prices.scraped.v1", "groups.changed.v1"}
    prices = counts["prices.scraped.v1"]
    assert (prices.consumed, prices.processed, prices.failed, prices.dead_lettered) == (5, 3, 3, 2)
    assert prices.failures == {"invalid": 2, "timeout": 1}
    assert counts["groups.changed.v1"].failures == {}
