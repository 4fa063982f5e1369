"""The server-drawn price history chart: one point per price change, a staircase, round ticks."""

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from catalogue.web.charts import (
    PricePoint,
    PriceSeries,
    dollars,
    price_changes,
    price_history_svg,
    price_ticks,
)

pytestmark = pytest.mark.unit

SVG = "{http://www.w3.org/2000/svg}"
DAY0 = datetime(2026, 3, 1, tzinfo=UTC)


def _series(label: str, *prices: tuple[int, int]) -> PriceSeries:
    return PriceSeries(label, [PricePoint(DAY0 + timedelta(days=day), cents) for day, cents in prices])


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def test_each_price_change_is_one_point_in_its_series() -> None:
    coles = _series("coles", (0, 350), (3, 300), (7, 350))
    woolworths = _series("woolworths", (1, 360))
    svg = _parse(price_history_svg([coles, woolworths], until=DAY0 + timedelta(days=10), title="Milk 2L"))

    groups = svg.findall(f"{SVG}g")
    assert [g.get("data-series") for g in groups] == ["coles", "woolworths"]
    assert [len(g.findall(f"{SVG}circle")) for g in groups] == [3, 1]
    assert [c.get("data-cents") for c in groups[0].findall(f"{SVG}circle")] == ["350", "300", "350"]


def test_a_price_holds_until_the_next_change_and_the_last_runs_to_until() -> None:
    svg = _parse(
        price_history_svg([_series("coles", (0, 400), (5, 200))], until=DAY0 + timedelta(days=10), title="t")
    )
    line = svg.find(f"{SVG}g/{SVG}polyline")
    assert line is not None
    xy = [tuple(float(v) for v in pair.split(",")) for pair in (line.get("points") or "").split()]
    # Two horizontal steps: 400 from day 0 to day 5, then 200 from day 5 to day 10.
    assert len(xy) == 4
    assert xy[0][1] == xy[1][1] < xy[2][1] == xy[3][1], "the lower price is drawn lower"
    assert xy[1][0] == xy[2][0], "the step happens at the change"
    assert xy[0][0] < xy[1][0] < xy[3][0]
    assert xy[3][0] == pytest.approx(640 - 16), "the last price runs to the right edge"


def test_tooltips_and_labels_are_escaped() -> None:
    markup = price_history_svg([_series("<b>coles</b>", (0, 100))], until=DAY0, title='"Milk" & <co>')
    assert "<b>" not in markup
    root = _parse(markup)
    assert root.get("aria-label") == '"Milk" & <co>'
    title = root.find(f"{SVG}g/{SVG}circle/{SVG}title")
    assert title is not None
    assert title.text == "<b>coles</b>: $1.00 from 01 Mar 2026"


def test_no_history_says_so_instead_of_drawing() -> None:
    assert "No price history" in price_history_svg([PriceSeries("coles", [])], until=DAY0, title="t")


def test_points_out_of_time_order_are_refused() -> None:
    with pytest.raises(ValueError, match="not in time order"):
        price_history_svg([_series("coles", (3, 100), (1, 120))], until=DAY0, title="t")


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (250, 399, [250, 300, 350, 400]),
        (350, 350, [300, 320, 340, 360, 380, 400]),
        (0, 1000, [0, 500, 1000]),
        (1234, 5678, [0, 2000, 4000, 6000]),
        (0, 0, [0, 1]),
    ],
)
def test_ticks_are_round_and_cover_the_range(low: int, high: int, expected: list[int]) -> None:
    ticks = price_ticks(low, high)
    assert ticks[0] <= low
    assert ticks[-1] >= high
    assert ticks == expected


def test_dollars() -> None:
    assert dollars(350) == "$3.50"
    assert dollars(123456) == "$1,234.56"
    assert re.fullmatch(r"\$0\.05", dollars(5))


@dataclass(frozen=True)
class _Run:
    starts_at: datetime
    price_cents: int
    was_price_cents: int | None


def test_price_changes_are_one_point_per_shelf_price_change() -> None:
    runs = [
        _Run(DAY0, 350, None),
        _Run(DAY0 + timedelta(days=2), 350, 400),  # only the was-price appeared: the same shelf price
        _Run(DAY0 + timedelta(days=4), 300, 400),
        _Run(DAY0 + timedelta(days=6), 350, None),
    ]
    points = price_changes(runs)
    assert [(p.at, p.cents) for p in points] == [
        (DAY0, 350),
        (DAY0 + timedelta(days=4), 300),
        (DAY0 + timedelta(days=6), 350),
    ]
    assert price_changes([]) == []
