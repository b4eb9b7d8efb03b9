"""Five-field crontab expressions read as cron reads them, as APScheduler triggers.

APScheduler 3 counts weekdays from Monday = 0, cron from Sunday = 0 (or 7): ``1-5`` is Monday
to Friday in cron but Tuesday to Saturday in ``CronTrigger.from_crontab``. The weekday field is
turned into APScheduler's numbering (names too, as cron's ``sun-tue`` wraps past APScheduler's
week end) before the trigger is built. Both the settings' check and the scheduler use this.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

#: cron's day names, by cron's number (0 = Sunday).
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_trigger(expression: str, zone: ZoneInfo) -> CronTrigger:
    """A trigger for a five-field crontab expression (``ValueError`` when it is not one)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{expression!r}: a crontab expression has 5 fields, not {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=cron_weekdays(weekday),
        timezone=zone,
    )


def _day(text: str) -> int:
    """A weekday by cron's number (0-7) or name (``sun``... ``sat``)."""
    if text.isdigit():
        return int(text)
    name = text.casefold()
    if name not in DAY_NAMES:
        raise ValueError(f"day of week {text!r} is not a number 0-7 or a name sun-sat")
    return DAY_NAMES.index(name)


def cron_weekdays(field: str) -> str:
    """A cron day-of-week field (0 or 7 = Sunday; names sun-sat; ranges, lists and steps) in
    APScheduler's numbering (0 = Monday)."""
    parts = []
    for part in field.split(","):
        span, slash, step_text = part.partition("/")
        if slash and not step_text.isdigit():
            raise ValueError(f"day of week {part!r}: the step is not a number")
        step = int(step_text) if slash else 1
        if step < 1:
            raise ValueError(f"day of week {part!r}: the step is not a positive number")
        if span == "*" and not slash:
            return "*"
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first_text, last_text = span.split("-", 1)
            first, last = _day(first_text), _day(last_text)
        else:
            first = _day(span)
            last = 7 if slash else first  # N/step: from N to the week's end, as cron reads it
        if not 0 <= first <= last <= 7:
            raise ValueError(f"day of week {part!r} is not within 0-7")
        parts += [str((n - 1) % 7) for n in range(first, last + 1, step)]
    return ",".join(dict.fromkeys(parts))
