from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from auditor.audit.business_day import (
    business_date,
    dates_between,
    day_bounds,
    previous_business_date,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "zone,day,start,end,hours",
    [
        # an ordinary winter day in Berlin (UTC+1)
        ("Europe/Berlin", "2024-03-01", "2024-02-29 23:00", "2024-03-01 23:00", 24),
        # clocks forward at 02:00: a 23-hour day
        ("Europe/Berlin", "2024-03-31", "2024-03-30 23:00", "2024-03-31 22:00", 23),
        # clocks back at 03:00: a 25-hour day
        ("Europe/Berlin", "2024-10-27", "2024-10-26 22:00", "2024-10-27 23:00", 25),
        # New York, west of UTC: the day ends on the next UTC date
        ("America/New_York", "2024-03-10", "2024-03-10 05:00", "2024-03-11 04:00", 23),
        ("America/New_York", "2024-11-03", "2024-11-03 04:00", "2024-11-04 05:00", 25),
        # Tokyo, east of UTC: the business day starts on the UTC date before
        ("Asia/Tokyo", "2024-03-01", "2024-02-29 15:00", "2024-03-01 15:00", 24),
        # Auckland, east of UTC, clocks back on 2024-04-07
        ("Pacific/Auckland", "2024-04-07", "2024-04-06 11:00", "2024-04-07 12:00", 25),
        # Santiago moves its clocks at midnight: a skipped midnight starts the day at the change
        ("America/Santiago", "2024-09-08", "2024-09-08 04:00", "2024-09-09 03:00", 23),
        ("America/Santiago", "2024-04-06", "2024-04-06 03:00", "2024-04-07 04:00", 25),
        # Lord Howe Island shifts by half an hour
        ("Australia/Lord_Howe", "2024-10-06", "2024-10-05 13:30", "2024-10-06 13:00", 23.5),
        ("UTC", "2024-02-29", "2024-02-29 00:00", "2024-03-01 00:00", 24),
    ],
)
def test_day_bounds(zone, day, start, end, hours):
    found = day_bounds(date.fromisoformat(day), ZoneInfo(zone))
    assert found == (utc(start), utc(end))
    assert found[1] - found[0] == timedelta(hours=hours)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Tokyo", "America/Santiago"])
def test_consecutive_days_tile_time(zone):
    days = dates_between(date(2024, 1, 1), date(2024, 12, 31))
    bounds = [day_bounds(d, ZoneInfo(zone)) for d in days]
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    for day, (start, end) in zip(days, bounds, strict=True):
        assert business_date(start, ZoneInfo(zone)) == day
        assert business_date(end - timedelta(microseconds=1), ZoneInfo(zone)) == day


@pytest.mark.parametrize(
    "now,zone,expected",
    [
        ("2024-03-02 01:30", "Europe/Berlin", "2024-03-01"),  # 02:30 in Berlin
        ("2024-03-01 22:30", "Europe/Berlin", "2024-02-29"),  # 23:30 in Berlin
        ("2024-03-01 17:30", "Asia/Tokyo", "2024-03-01"),  # 02:30 on 2 March in Tokyo
        ("2024-03-02 07:30", "America/New_York", "2024-03-01"),  # 02:30 in New York
        ("2024-03-31 00:30", "Europe/Berlin", "2024-03-30"),  # 01:30, before the change
        ("2024-03-31 01:30", "Europe/Berlin", "2024-03-30"),  # 03:30, after it
    ],
)
def test_previous_business_date(now, zone, expected):
    assert previous_business_date(utc(now), ZoneInfo(zone)) == date.fromisoformat(expected)


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="naive"):
        business_date(datetime(2024, 3, 1, 12), ZoneInfo("Europe/Berlin"))


def test_dates_between():
    assert dates_between(date(2024, 2, 28), date(2024, 3, 1)) == [
        date(2024, 2, 28),
        date(2024, 2, 29),
        date(2024, 3, 1),
    ]
    assert dates_between(date(2024, 3, 2), date(2024, 3, 1)) == []
