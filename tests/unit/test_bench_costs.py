"""The bench's CPU accounting: each process's own difference, never a part gone negative."""

from pricestream.bench_costs import cores_between

SERVICES = ("grouping", "bargains")


def test_a_session_closed_between_readings_does_not_drive_its_part_negative() -> None:
    before = {"grouping@10": 1.0, "grouping_db@20": 5.0, "grouping_db@21": 2.0, "machine": 10.0}
    after = {"grouping@10": 3.0, "grouping_db@21": 4.0, "grouping_db@22": 1.0, "machine": 20.0}

    cores = cores_between(before, after, 2.0, SERVICES)

    assert cores["grouping"] == 1.0
    # Session 20 closed: its seconds are not known, so it counts nothing; 21 spent 2, new 22 spent 1.
    assert cores["grouping_db"] == 1.5
    assert cores["bargains"] == cores["bargains_db"] == 0.0
    assert cores["machine"] == 5.0
    assert cores["rest"] == 2.5


def test_a_reused_pid_counts_only_the_new_process() -> None:
    before = {"bargains_db@30": 9.0, "machine": 0.0}
    after = {"bargains_db@30": 0.5, "machine": 1.0}

    assert cores_between(before, after, 1.0, SERVICES)["bargains_db"] == 0.5
