"""Times: the fast stamp formatter agrees with strftime in every kind of time zone."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatd.clock import BadTimeError, StampFormatter, day_bounds, parse_when


@pytest.fixture(params=["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the zone is fixed
@given(stamps=st.lists(st.integers(min_value=0, max_value=4_000_000_000 * 10**6), max_size=50))
def test_stamps_match_strftime(zone: str, stamps: list[int]) -> None:
    local, utc = StampFormatter(), StampFormatter(utc=True)
    for stamp in sorted(stamps):
        second = stamp // 1_000_000
        assert local(stamp) == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        assert utc(stamp) == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))


def test_parse_when_reads_dates_and_times() -> None:
    start, end = day_bounds("2026-11-23", utc=True)
    assert end - start == 86_400 * 10**6
    assert parse_when("2026-11-23 00:00", utc=True) == start
    assert parse_when("2026-11-23T12:30:15+00:00") == start + (12 * 3600 + 1815) * 10**6
    for bad in ("yesterday", "2026-13-01", "23/11/2026", ""):
        with pytest.raises(BadTimeError):
            parse_when(bad)
