"""A store's business day: the local calendar day, from local midnight to the next.

A business date belongs to one store and is read on that store's wall clock: business day
``D`` of a store in zone ``Z`` is the UTC interval [``D`` 00:00 in ``Z``, ``D + 1`` 00:00 in
``Z``). It lasts 23 or 25 hours on the days the clocks change, and in a zone east of UTC it
starts on the UTC date before ``D``. Where midnight itself does not exist (a zone that moves its
clocks forward at 00:00), the day starts at the moment of the change.

Why midnight: the nightly audit runs early in the morning (02:30 by default) and must find the
previous day complete, and sales after midnight fall outside the default legal hours
(08:00-23:00) anyway, so they are flagged on the day they happen.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """00:00 of ``day`` in ``zone`` as aware UTC (a skipped midnight: the moment of the change)."""
    return datetime.combine(day, time(0), tzinfo=zone).replace(fold=0).astimezone(UTC)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The business day ``day`` in ``zone`` as a half-open UTC interval [start, end)."""
    return local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)


def business_date(instant: datetime, zone: ZoneInfo) -> date:
    """The business date an aware instant belongs to in ``zone``."""
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant!r}: give a timezone-aware value")
    return instant.astimezone(zone).date()


def previous_business_date(now: datetime, zone: ZoneInfo) -> date:
    """The last business date in ``zone`` that has ended by ``now``: yesterday, locally."""
    return business_date(now, zone) - timedelta(days=1)


def dates_between(first: date, last: date) -> list[date]:
    """Every date from ``first`` to ``last``, both included (none when ``first > last``)."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def clocks_change(day: date, zone: ZoneInfo) -> bool:
    """Whether the clocks of ``zone`` change during ``day`` (two UTC offsets in one night):
    times of such a night are shown with their zone."""
    start, end = day_bounds(day, zone)
    return (
        start.astimezone(zone).utcoffset()
        != (end - timedelta(microseconds=1)).astimezone(zone).utcoffset()
    )
