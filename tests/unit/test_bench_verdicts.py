"""pricestream bench's verdicts: each target met or not, and why a latency was missed."""

import pytest

from pricestream.bench import verdicts

pytestmark = pytest.mark.unit


def _figures(**changes: float) -> dict[str, float]:
    figures = {
        "raw_copy_rows_per_s": 1_000_000.0,
        "grouping_observations_per_s": 150_000.0,
        "bargains_observations_per_s": 110_000.0,
        "catalogue_observations_per_s": 120_000.0,
        "pipeline_observations_per_s": 110_000.0,
        "latency_rate_observations_per_s": 10_000,
        "latency_p99_s": 0.9,
    }
    return figures | changes


def test_both_targets_met_are_said_so() -> None:
    throughput, latency = verdicts(_figures())
    assert throughput == (
        "throughput from cold (no groups yet): the pipeline carried 110,000 prices/s, 11.0% of COPY "
        "(target 10%): met"
    )
    assert latency == "latency: p99 0.90 s at 10,000 prices/s (target under 2 s): met"


def test_a_latency_missed_behind_a_service_slower_than_the_phase_names_it() -> None:
    figures = _figures(
        bargains_observations_per_s=9_103.0, pipeline_observations_per_s=9_103.0, latency_p99_s=13.6
    )
    throughput, latency = verdicts(figures)
    assert throughput.endswith("0.9% of COPY (target 10%): not met")
    assert latency.startswith("latency: p99 13.60 s at 10,000 prices/s (target under 2 s): not met: bargains")
    assert "carried 9,103 prices/s in the throughput phase, less than the 10,000" in latency


def test_a_latency_missed_with_every_service_fast_enough_gives_no_reason_it_cannot_show() -> None:
    (_, latency) = verdicts(_figures(latency_p99_s=2.5))
    assert latency.endswith("(target under 2 s): not met")


def test_a_latency_missed_with_every_service_fast_enough_names_what_took_the_cores() -> None:
    cores = {"grouping": 0.91, "bargains": 0.42, "catalogue": 0.1, "rest": 0.3, "machine": 1.96}
    (_, latency) = verdicts(_figures(latency_p99_s=2.08) | {"latency_cpu_cores": cores})
    assert latency.endswith(
        "not met: the machine used 1.96 cores through the phase, "
        "most by grouping 0.91, bargains 0.42, rest 0.30"
    )


def test_only_the_services_that_take_every_price_are_named_slowest() -> None:
    figures = _figures(raw_event_produce_observations_per_s=5_000.0, latency_p99_s=3.0)
    (_, latency) = verdicts(figures)
    assert latency.endswith("(target under 2 s): not met"), "a raw limit is no service"


def test_figures_without_a_phase_give_no_verdict_on_it() -> None:
    assert verdicts({"raw_produce_messages_per_s": 1000.0}) == []


def test_the_steady_state_has_a_verdict_of_its_own_and_sets_the_latencys_slowest() -> None:
    figures = _figures(
        bargains_observations_per_s=9_103.0,
        pipeline_observations_per_s=9_103.0,
        steady_grouping_observations_per_s=131_000.0,
        steady_bargains_observations_per_s=120_000.0,
        steady_catalogue_observations_per_s=125_000.0,
        steady_pipeline_observations_per_s=120_000.0,
        latency_p99_s=2.5,
    )
    cold, steady, latency = verdicts(figures)
    assert cold.startswith("throughput from cold (no groups yet): the pipeline carried 9,103 prices/s")
    assert steady == (
        "throughput in the steady state (groups known): the pipeline carried 120,000 prices/s, "
        "12.0% of COPY (target 10%): met"
    )
    # The latency phase follows the steady state: no service was slower than its 10,000 prices/s then.
    assert latency.endswith("(target under 2 s): not met")


def test_a_throughput_missed_says_where_the_slowest_services_time_went() -> None:
    figures: dict[str, object] = dict(
        _figures(bargains_observations_per_s=11_000.0, pipeline_observations_per_s=11_000.0)
    )
    figures["throughput_cpu_cores"] = {"bargains": 0.32, "bargains_db": 0.34, "grouping": 0.18}
    figures["database_top"] = {"bargains": "26% INSERT INTO history (chain, store_id"}
    throughput, _ = verdicts(figures)
    assert throughput.endswith(
        "not met; the slowest, bargains, used 0.32 cores and its database sessions 0.34"
        " (costliest statement: 26% INSERT INTO history (chain, store_id)"
    )
    met, _ = verdicts(_figures() | {"throughput_cpu_cores": {"bargains": 0.3}})
    assert met.endswith(": met"), "a target met needs no account"


def test_a_throughput_missed_says_how_much_cpu_a_price_took_against_the_targets_allowance() -> None:
    figures: dict[str, object] = dict(
        _figures(bargains_observations_per_s=32_000.0, pipeline_observations_per_s=32_000.0)
    )
    figures["throughput_cpu_cores"] = {"bargains": 0.33, "bargains_db": 0.37, "machine": 1.6}
    figures["machine"] = {"cpu": "x", "cores": 2, "memory_gib": 24}
    throughput, _ = verdicts(figures)
    # 1.6 cores at 32,000 prices/s; 100,000 prices/s (10% of 1 M rows/s) on 2 cores.
    assert throughput.endswith(
        "its database sessions 0.37; the machine spent 50 us of CPU per price, "
        "where 10% of COPY on its 2 cores leaves 20.0"
    )
