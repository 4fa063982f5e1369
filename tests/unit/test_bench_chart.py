"""The bench's chart: rates on a log scale against COPY's tenth, latency against its 2 s target."""

import xml.etree.ElementTree as ET

import pytest

from pricestream.bench_chart import bench_svg

pytestmark = pytest.mark.unit

SVG = "{http://www.w3.org/2000/svg}"
FIGURES = {
    "raw_event_produce_observations_per_s": 1_037_000,
    "raw_copy_rows_per_s": 1_085_000,
    "grouping_observations_per_s": 31_000,
    "bargains_observations_per_s": 13_400,
    "catalogue_observations_per_s": 12_800,
    "pipeline_observations_per_s": 12_800,
    "steady_grouping_observations_per_s": 120_000,
    "steady_bargains_observations_per_s": 90_000,
    "steady_catalogue_observations_per_s": 100_000,
    "steady_pipeline_observations_per_s": 90_000,
    "latency_rate_observations_per_s": 10_000,
    "latency_p50_s": 0.4,
    "latency_p99_s": 2.6,
}


def _bars(svg: str, kind: str) -> dict[str, float]:
    root = ET.fromstring(svg)
    return {
        r.get("data-label", ""): float(r.get("width", 0))
        for r in root.iter(f"{SVG}rect")
        if r.get("class") == kind
    }


def test_rates_are_drawn_on_a_log_scale_in_their_order() -> None:
    widths = _bars(bench_svg(FIGURES), "rate")
    assert list(widths) == [
        "broker, raw produce",
        "PostgreSQL COPY",
        "grouping, cold",
        "bargains, cold",
        "catalogue, cold",
        "pipeline (slowest), cold",
        "grouping, steady",
        "bargains, steady",
        "catalogue, steady",
        "pipeline (slowest), steady",
    ]
    assert (
        widths["PostgreSQL COPY"]
        > widths["grouping, cold"]
        > widths["bargains, cold"]
        > widths["catalogue, cold"]
    )
    assert widths["pipeline (slowest), steady"] > widths["pipeline (slowest), cold"]
    # On a log scale, 35 times the rate is a bar about twice as long, not 35 times.
    assert widths["PostgreSQL COPY"] < 3 * widths["grouping, cold"]


def test_the_targets_are_marked_and_a_latency_over_its_target_shows_as_late() -> None:
    svg = bench_svg(FIGURES)
    assert "target: 10% of COPY, 108,500/s" in svg
    assert "target: under 2 s" in svg
    root = ET.fromstring(svg)
    fills = {
        r.get("data-label"): r.get("fill") for r in root.iter(f"{SVG}rect") if r.get("class") == "latency"
    }
    assert fills["p50"] != fills["p99"], "p50 meets the target, p99 does not"


def test_what_a_run_did_not_measure_is_said_so() -> None:
    svg = bench_svg(FIGURES | {"latency_p50_s": None, "latency_p99_s": None})
    assert svg.count("no bargain seen") == 2
    partial = bench_svg({"latency_p50_s": 0.5})
    assert "no rate measured" in partial
    assert _bars(partial, "rate") == {}
    assert list(_bars(partial, "latency")) == ["p50"]


def test_the_cores_of_the_throughput_phase_are_drawn_per_part_a_services_database_beside_it() -> None:
    cores = {"grouping": 0.2, "grouping_db": 0.2, "bargains": 0.3, "bargains_db": 0.6, "catalogue": 0.1}
    cores |= {"catalogue_db": 0.1, "broker": 0.1, "bench": 0.0, "machine": 1.9, "rest": 0.3}
    svg = bench_svg(FIGURES | {"throughput_cpu_cores": cores, "machine": {"cores": 2}})
    widths = _bars(svg, "cores")
    assert widths["bargains database"] == pytest.approx(2 * widths["bargains"], rel=0.01)
    assert widths["grouping"] == pytest.approx(widths["grouping database"], rel=0.01)
    root = ET.fromstring(svg)
    x = {
        r.get("data-label"): float(r.get("x", 0))
        for r in root.iter(f"{SVG}rect")
        if r.get("class") == "cores"
    }
    assert x["bargains database"] == pytest.approx(x["bargains"] + widths["bargains"], abs=0.2), (
        "stacked after"
    )
    assert "0.30 + 0.60 database" in svg
    assert "all 2 cores" in svg
    assert "rest of the machine" in widths
    assert "cores went" not in bench_svg(FIGURES), "a run without these figures draws no such panel"
