"""Draw price histories as inline SVG on the server, so a chart needs no JavaScript."""

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 240
# Room for the axis labels: left for prices, bottom for dates.
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 12
MARGIN_BOTTOM = 28


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A price that took effect at a moment and held until the next one."""

    at: datetime
    cents: int


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """One chain's (or store's) price changes, oldest first."""

    label: str
    points: Sequence[PricePoint]


class PriceRun(Protocol):
    """A run of one price at a store, as the catalogue's history keeps it."""

    @property
    def starts_at(self) -> datetime: ...

    @property
    def price_cents(self) -> int: ...


def price_changes(runs: Iterable[PriceRun]) -> list[PricePoint]:
    """Return one point per change of the shelf price, oldest first (a change of was-price alone is none)."""
    points: list[PricePoint] = []
    for run in runs:
        if not points or points[-1].cents != run.price_cents:
            points.append(PricePoint(run.starts_at, run.price_cents))
    return points


def dollars(cents: int) -> str:
    """Write cents as dollars: 350 -> $3.50."""
    return f"${cents / 100:,.2f}"


def price_ticks(low: int, high: int, *, wanted: int = 4) -> list[int]:
    """Return round price ticks (1, 2 or 5 times a power of ten, in cents) covering low..high."""
    if high < low:
        raise ValueError(f"high {high} is below low {low}")
    if high == low:
        # A price that never moved still gets a scale around it, drawn mid-height.
        pad = max(low // 10, 1)
        low, high = max(low - pad, 0), high + pad
    span = high - low
    raw = span / wanted
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next((m * power for m in (1, 2, 5, 10) if m * power >= raw), 10 * power)
    first = (low // step) * step
    last = -(-high // step) * step
    return list(range(first, last + step, step))


def price_history_svg(series: Sequence[PriceSeries], *, until: datetime, title: str) -> Markup:
    """Draw each series as a step line with one marked point per price change, up to `until`.

    A price holds until the next change, so the line is a staircase; it runs on to `until`
    (when the prices were last known) so a price that has not changed still shows as held.
    """
    drawn = [s for s in series if s.points]
    if not drawn:
        return Markup('<p class="chart-empty">No price history yet.</p>')
    for s in drawn:
        if any(b.at < a.at for a, b in zip(s.points, s.points[1:], strict=False)):
            raise ValueError(f"{s.label}: price points are not in time order")
    start = min(s.points[0].at for s in drawn)
    end = max(until, *(s.points[-1].at for s in drawn))
    if end <= start:
        end = start + timedelta(days=1)
    ticks = price_ticks(
        min(p.cents for s in drawn for p in s.points), max(p.cents for s in drawn for p in s.points)
    )
    low, high = ticks[0], ticks[-1]
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    span_s = (end - start).total_seconds()

    def x(at: datetime) -> float:
        return MARGIN_LEFT + plot_w * (at - start).total_seconds() / span_s

    def y(cents: int) -> float:
        return MARGIN_TOP + plot_h * (1 - (cents - low) / (high - low))

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for tick in ticks:
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}"/><text class="axis" x="{MARGIN_LEFT - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{dollars(tick)}</text>'
        )
    for at, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text class="axis" x="{x(at):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">{at:%d %b %Y}</text>'
        )
    for index, s in enumerate(drawn):
        parts.append(_series_svg(s, index, end, x, y))
    parts.append("</svg>")
    return Markup("".join(parts))


def _series_svg(
    s: PriceSeries,
    index: int,
    end: datetime,
    x: Callable[[datetime], float],
    y: Callable[[int], float],
) -> str:
    """Draw one series: its staircase, then a circle per price change with a tooltip."""
    steps: list[str] = []
    for point, following in zip(s.points, [*s.points[1:], None], strict=True):
        to = end if following is None else following.at
        steps.append(f"{x(point.at):.1f},{y(point.cents):.1f} {x(to):.1f},{y(point.cents):.1f}")
    label = escape(s.label)
    circles = "".join(
        f'<circle class="point" cx="{x(p.at):.1f}" cy="{y(p.cents):.1f}" r="4" data-cents="{p.cents}">'
        f"<title>{label}: {dollars(p.cents)} from {p.at:%d %b %Y}</title></circle>"
        for p in s.points
    )
    return (
        f'<g class="series series-{index % 6}" data-series="{label}">'
        f'<polyline class="line" points="{" ".join(steps)}"/>{circles}</g>'
    )
