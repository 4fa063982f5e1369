"""A chart of `pricestream bench`'s figures: rates against the machine's limits, latency against its target.

Rates span three orders of magnitude (the broker's raw produce rate, COPY's rows, a service's
prices), so they are drawn on a log scale, with the pipeline's target (10% of COPY) marked.
The SVG stands alone (styles inline), to open in a browser or put in a document.
"""

import math
from collections.abc import Mapping
from html import escape
from typing import Any

WIDTH = 720
LABEL_W = 190
RIGHT = 110
ROW_H = 26
BAR_H = 16
TARGET_SHARE_OF_COPY = 0.10
LATENCY_TARGET_S = 2.0

RATES = (
    ("raw_event_produce_observations_per_s", "broker, raw produce", "limit"),
    ("raw_copy_rows_per_s", "PostgreSQL COPY", "limit"),
    ("grouping_observations_per_s", "grouping, cold", "service"),
    ("bargains_observations_per_s", "bargains, cold", "service"),
    ("catalogue_observations_per_s", "catalogue, cold", "service"),
    ("pipeline_observations_per_s", "pipeline (slowest), cold", "pipeline"),
    ("steady_grouping_observations_per_s", "grouping, steady", "service"),
    ("steady_bargains_observations_per_s", "bargains, steady", "service"),
    ("steady_catalogue_observations_per_s", "catalogue, steady", "service"),
    ("steady_pipeline_observations_per_s", "pipeline (slowest), steady", "pipeline"),
)
CORE_PARTS = (("broker", "broker"), ("bench", "the bench itself"), ("rest", "rest of the machine"))
COLOURS = {
    "database": "#f59e0b",
    "limit": "#9aa5b1",
    "service": "#3b82f6",
    "pipeline": "#1d4ed8",
    "late": "#dc2626",
    "ok": "#16a34a",
}


def bench_svg(figures: Mapping[str, Any]) -> str:
    """Return the chart of a bench run's figures as an SVG document (what was not measured, said so)."""
    rates, rates_h = _rates_panel(figures, top=40)
    latency, latency_h = _latency_panel(figures, top=40 + rates_h + 50)
    cores, cores_h = _cores_panel(figures, top=40 + rates_h + 50 + latency_h + 60)
    height = 40 + rates_h + 50 + latency_h + (60 + cores_h if cores else 0) + 24
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" font-family="system-ui, sans-serif" font-size="12">'
    )
    return "\n".join([head, "<title>pricestream bench</title>", *rates, *latency, *cores, "</svg>"])


def _rates_panel(figures: Mapping[str, Any], *, top: int) -> tuple[list[str], int]:
    """Draw each rate as a bar on a log scale, with the pipeline's target; return it and its height."""
    out = ['<text x="10" y="22" font-size="15" font-weight="bold">Prices per second (log scale)</text>']
    rates = [(label, float(figures[key]), kind) for key, label, kind in RATES if figures.get(key)]
    if not rates:
        out.append(f'<text x="{LABEL_W}" y="{top + 12}" fill="#6b7280">no rate measured</text>')
        return out, ROW_H
    copy_rate = figures.get("raw_copy_rows_per_s")
    target = TARGET_SHARE_OF_COPY * float(copy_rate) if copy_rate else None
    values = [rate for _, rate, _ in rates] + ([target] if target else [])
    # A decade below the slowest rate, so that even it is drawn as a bar.
    low = 10 ** (math.floor(math.log10(min(values))) - 1)
    high = 10 ** math.ceil(math.log10(max(values)))
    plot_w, bottom = WIDTH - LABEL_W - RIGHT, top + len(rates) * ROW_H

    def x_rate(value: float) -> float:
        return LABEL_W + plot_w * (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low))

    decade = low
    while decade <= high:
        at = x_rate(decade)
        out.append(
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{top}" y2="{bottom}" stroke="#e5e7eb"/>'
            f'<text x="{at:.1f}" y="{bottom + 14}" text-anchor="middle" fill="#6b7280">'
            f"{_short(decade)}</text>"
        )
        decade *= 10
    for row, (label, rate, kind) in enumerate(rates):
        out.append(
            _bar("rate", label, LABEL_W, x_rate(rate), top + row * ROW_H, COLOURS[kind], f"{rate:,.0f}/s")
        )
    if target:
        out.append(_target(x_rate(target), top - 6, bottom, top - 8, f"target: 10% of COPY, {target:,.0f}/s"))
    return out, len(rates) * ROW_H


def _latency_panel(figures: Mapping[str, Any], *, top: int) -> tuple[list[str], int]:
    """Draw p50 and p99 from price to bargain against the target; return it and its height."""
    rate = figures.get("latency_rate_observations_per_s", 0)
    out = [
        f'<text x="10" y="{top - 12}" font-size="15" font-weight="bold">'
        f"Price to bargain at {rate:,} prices/s (seconds)</text>"
    ]
    latencies = [(f"p{q}", _seconds(figures.get(f"latency_p{q}_s"))) for q in (50, 99)]
    worst = max([LATENCY_TARGET_S * 1.25, *(v for _, v in latencies if v is not None)])
    plot_w, bottom = WIDTH - LABEL_W - RIGHT, top + len(latencies) * ROW_H

    def x_seconds(value: float) -> float:
        return LABEL_W + plot_w * value / worst

    for row, (label, seconds) in enumerate(latencies):
        y = top + row * ROW_H
        if seconds is None:
            none = f'<text x="{LABEL_W}" y="{y + 12}" fill="#6b7280">no bargain seen</text>'
            out.append(_label(label, y) + none)
            continue
        colour = COLOURS["ok"] if seconds < LATENCY_TARGET_S else COLOURS["late"]
        out.append(_bar("latency", label, LABEL_W, x_seconds(seconds), y, colour, f"{seconds:.2f} s"))
    at = x_seconds(LATENCY_TARGET_S)
    out.append(_target(at, top - 4, bottom, bottom + 12, f"target: under {LATENCY_TARGET_S:g} s"))
    return out, len(latencies) * ROW_H


def _cores_panel(figures: Mapping[str, Any], *, top: int) -> tuple[list[str], int]:
    """Draw the cores each part of the stack used in the throughput phase, a service's database beside it."""
    used = figures.get("throughput_cpu_cores")
    if not isinstance(used, Mapping):
        return [], 0  # a run from before these figures existed
    machine = figures.get("machine")
    cores = float(machine.get("cores") or 0) if isinstance(machine, Mapping) else 0.0
    cores = max(cores, float(used.get("machine", 0)), 1.0)
    out = [
        f'<text x="10" y="{top - 12}" font-size="15" font-weight="bold">'
        f"Where the throughput phase's cores went (of {cores:g})</text>"
    ]
    plot_w = WIDTH - LABEL_W - RIGHT

    def x_cores(value: float) -> float:
        return LABEL_W + plot_w * max(value, 0.0) / cores

    rows = 0
    for name in ("grouping", "bargains", "catalogue"):
        own, database = float(used.get(name, 0)), float(used.get(f"{name}_db", 0))
        y = top + rows * ROW_H
        value = f"{own:.2f} + {database:.2f} database"
        own_end, database_end = x_cores(own), x_cores(own + database)
        out.append(_bar("cores", name, LABEL_W, own_end, y, COLOURS["service"], ""))
        out.append(
            _segment("cores", f"{name} database", own_end, database_end, y, COLOURS["database"], value)
        )
        rows += 1
    for part, label in CORE_PARTS:
        if part not in used:
            continue
        share = float(used[part])
        out.append(
            _bar(
                "cores", label, LABEL_W, x_cores(share), top + rows * ROW_H, COLOURS["limit"], f"{share:.2f}"
            )
        )
        rows += 1
    bottom = top + rows * ROW_H
    out.append(_target(x_cores(cores), top - 4, bottom, bottom + 12, f"all {cores:g} cores"))
    return out, rows * ROW_H


def _target(x: float, top: float, bottom: float, label_y: float, label: str) -> str:
    """Return a dashed target line at `x` from `top` to `bottom`, labelled at `label_y`."""
    return (
        f'<line class="target" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" '
        f'stroke="#dc2626" stroke-dasharray="4 3"/>'
        f'<text x="{x + 4:.1f}" y="{label_y}" fill="#dc2626">{escape(label)}</text>'
    )


def _seconds(value: object) -> float | None:
    """Read a latency figure: a number of seconds, or None when no bargain was seen."""
    return float(value) if isinstance(value, int | float) else None


def _label(text: str, y: float) -> str:
    return f'<text x="{LABEL_W - 8}" y="{y + 12}" text-anchor="end">{escape(text)}</text>'


def _bar(kind: str, label: str, start: float, end: float, y: float, colour: str, value: str) -> str:
    """Return one labelled bar from `start` to `end`, its value written after it."""
    return _label(label, y) + _segment(kind, label, start, end, y, colour, value)


def _segment(kind: str, label: str, start: float, end: float, y: float, colour: str, value: str) -> str:
    """Return a bar from `start` to `end` (no row label), its value, if any, written after it."""
    width = max(end - start, 1.0)
    written = f'<text x="{start + width + 6:.1f}" y="{y + 12}">{escape(value)}</text>' if value else ""
    return (
        f'<rect class="{kind}" data-label="{escape(label)}" x="{start:.1f}" y="{y}" '
        f'width="{width:.1f}" height="{BAR_H}" fill="{colour}"/>{written}'
    )


def _short(value: float) -> str:
    """Write a power of ten shortly: 1k, 100k, 1M."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"
