"""servicekit.columns: a batch's columns written as PostgreSQL array literals."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from servicekit import columns

pytestmark = pytest.mark.unit


def test_plain_text_is_quoted_once_and_nulls_stand_bare() -> None:
    assert columns.texts(["s00001", "p-1.a", ""]) == '{"s00001","p-1.a",""}'
    assert columns.texts(["each", None]) == '{"each",NULL}'
    assert columns.texts([]) == "{}"


def test_quotes_and_backslashes_are_escaped() -> None:
    assert columns.texts(['say "hi"', "a\\b", "{,}"]) == r'{"say \"hi\"","a\\b","{,}"}'


def test_ints_and_nulls() -> None:
    assert columns.ints([1, -2, 30_000_000_000]) == "{1,-2,30000000000}"
    assert columns.ints([None, 5]) == "{NULL,5}"
    assert columns.ints([]) == "{}"


def test_instants_keep_their_offset_and_microseconds() -> None:
    at = datetime(2026, 11, 29, 20, 1, 2, 345678, tzinfo=UTC)
    sydney = (at + timedelta(hours=1)).astimezone(timezone(timedelta(hours=11)))
    assert columns.instants([at, None, sydney, at]) == (
        "{2026-11-29T20:01:02.345678+00:00,NULL,2026-11-30T08:01:02.345678+11:00,2026-11-29T20:01:02.345678+00:00}"
    )


def test_a_naive_datetime_is_refused_rather_than_read_in_the_servers_time_zone() -> None:
    with pytest.raises(ValueError, match="naive"):
        columns.instants([datetime(2026, 11, 29, 20, 0)])


def test_days() -> None:
    assert columns.days([date(2026, 11, 29), None]) == "{2026-11-29,NULL}"
