"""When a scheduled task runs next: Nexus's ``FrequencyXO`` (manual, once, hourly, daily, weekly, monthly,
cron) turned into the next run time after a given moment.

Times of day and days come from ``startDate`` seen in the client's ``timeZoneOffset`` (a fixed offset, as
Nexus's UI sends it). Weekly ``recurringDays`` are 1 (Sunday) to 7 (Saturday), as in Nexus and Quartz;
monthly ones are days of the month (a day a month lacks is skipped that month). Cron expressions are
Quartz's (``sec min hour day-of-month month day-of-week [year]``, ``?`` for "no value", day-of-week 1 =
Sunday); a classic 5-field expression is accepted too. Parsing and iteration are croniter's.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Mapping

from attrs import field, frozen
from croniter import croniter

from stowage.errors import BadRequest

SCHEDULES = ("manual", "once", "hourly", "daily", "weekly", "monthly", "cron")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_DOW_NUMBER = re.compile(r"\d+")


@frozen
class Frequency:
    schedule: str = "manual"
    #: unix time (seconds) of the first run; the creation time when not given.
    start_date: float | None = None
    time_zone_offset: str = "+00:00"
    recurring_days: tuple[int, ...] = field(default=(), converter=tuple)
    cron_expression: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schedule": self.schedule}
        if self.schedule != "manual":
            body["startDate"] = int(self.start_date) if self.start_date is not None else None
            body["timeZoneOffset"] = self.time_zone_offset
        if self.schedule in ("weekly", "monthly"):
            body["recurringDays"] = list(self.recurring_days)
        if self.schedule == "cron":
            body["cronExpression"] = self.cron_expression
        return body


def parse_frequency(data: Any, now: float) -> Frequency:
    """A :class:`Frequency` from a ``FrequencyXO`` body; :class:`BadRequest` naming the bad field."""
    if data is None:
        data = {"schedule": "manual"}
    if not isinstance(data, Mapping):
        raise BadRequest("frequency must be an object")
    unknown = set(data) - {"schedule", "startDate", "timeZoneOffset", "recurringDays", "cronExpression"}
    if unknown:
        raise BadRequest(f"frequency: unknown field(s) {', '.join(sorted(unknown))}")
    schedule = data.get("schedule")
    if schedule not in SCHEDULES:
        raise BadRequest(f"frequency.schedule must be one of {', '.join(SCHEDULES)}")
    offset = data.get("timeZoneOffset") or "+00:00"
    if not isinstance(offset, str) or not _OFFSET.match(offset) or _tz(offset) is None:
        raise BadRequest(f"frequency.timeZoneOffset {offset!r} must look like +02:00 or -05:00")
    start = _start_date(data.get("startDate"), now)
    days = data.get("recurringDays") or []
    if not isinstance(days, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in days):
        raise BadRequest("frequency.recurringDays must be a list of integers")
    if schedule == "weekly":
        if not days or not all(1 <= d <= 7 for d in days):
            raise BadRequest("frequency.recurringDays: a weekly schedule needs days 1 (Sunday) to 7 (Saturday)")
    elif schedule == "monthly":
        if not days or not all(1 <= d <= 31 for d in days):
            raise BadRequest("frequency.recurringDays: a monthly schedule needs days of the month, 1 to 31")
    cron = data.get("cronExpression")
    if schedule == "cron":
        if not isinstance(cron, str) or not cron.strip():
            raise BadRequest("frequency.cronExpression is required for a cron schedule")
        try:
            expression, options = _croniter_args(cron)
            croniter(expression, **options)
        except (ValueError, KeyError, TypeError) as error:
            raise BadRequest(f"frequency.cronExpression {cron!r} is not valid: {error}") from None
    return Frequency(schedule=schedule, start_date=None if schedule == "manual" else start,
                     time_zone_offset=offset, recurring_days=tuple(sorted(set(days))),
                     cron_expression=cron if schedule == "cron" else None)


#: the latest start date accepted (the end of year 9999, as far as datetime goes).
_LAST_START = 253402300799.0


def _start_date(value: Any, now: float) -> float:
    start = _parse_start_date(value, now)
    if not 0 <= start <= _LAST_START - 400 * 86400:  # room for a year of weekly/monthly look-ahead
        raise BadRequest(f"frequency.startDate {value!r} is out of range")
    return start


def _parse_start_date(value: Any, now: float) -> float:
    if value is None or value == "":
        return float(int(now))
    if isinstance(value, bool):
        raise BadRequest("frequency.startDate must be a unix time")
    if isinstance(value, (int, float)):
        # Nexus's clients send seconds; a Java client may send milliseconds.
        return float(value) / 1000 if value > 100_000_000_000 else float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"frequency.startDate {value!r} must be a unix time or an ISO-8601 date") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        try:
            return parsed.timestamp()
        except (OverflowError, ValueError, OSError):
            raise BadRequest(f"frequency.startDate {value!r} is out of range") from None
    raise BadRequest("frequency.startDate must be a unix time")


def _tz(offset: str) -> datetime.timezone | None:
    match = _OFFSET.match(offset)
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = datetime.timedelta(hours=int(hours), minutes=int(minutes))
    if delta >= datetime.timedelta(hours=24):
        return None
    return datetime.timezone(-delta if sign == "-" else delta)


def _croniter_args(expression: str) -> tuple[str, Any]:
    """croniter's expression for a Quartz (6/7 fields) or classic (5 fields) one."""
    fields = expression.split()
    if len(fields) == 5:
        return " ".join(fields), {}
    if len(fields) not in (6, 7):
        raise ValueError("expected 6 or 7 fields (Quartz: sec min hour day month weekday [year]) or 5")
    fields = ["*" if f == "?" else f for f in fields]
    # Quartz numbers weekdays 1 (SUN) to 7 (SAT); croniter 0 (SUN) to 6. Names (MON-FRI) are the same.
    weekday = fields[5]
    if "#" in weekday:
        day, _, nth = weekday.partition("#")
        fields[5] = _shift_weekdays(day) + "#" + nth
    else:
        fields[5] = _shift_weekdays(weekday)
    return " ".join(fields), {"second_at_beginning": True}


def _shift_weekdays(text: str) -> str:
    def shift(match: re.Match[str]) -> str:
        number = int(match.group())
        if not 1 <= number <= 7:
            raise ValueError(f"day-of-week {number} is outside 1-7")
        return str(number - 1)

    head, slash, step = text.partition("/")  # "2/3": only the start is a weekday
    return _DOW_NUMBER.sub(shift, head) + slash + step


def next_run(frequency: Frequency, after: float) -> float | None:
    """The first run time strictly after ``after`` (unix seconds), or None when it never runs again."""
    schedule = frequency.schedule
    start = frequency.start_date if frequency.start_date is not None else after
    if schedule == "manual":
        return None
    if schedule == "once":
        return start if start > after else None
    if schedule in ("hourly", "daily"):
        period = 3600.0 if schedule == "hourly" else 86400.0
        if start > after:
            return start
        return start + (int((after - start) // period) + 1) * period
    tz = _tz(frequency.time_zone_offset) or datetime.timezone.utc
    first = datetime.datetime.fromtimestamp(start, tz)
    moment = datetime.datetime.fromtimestamp(max(after, start - 1), tz)
    if schedule == "cron":
        expression, options = _croniter_args(frequency.cron_expression or "")
        return croniter(expression, moment, **options).get_next(datetime.datetime).timestamp()
    day = moment.date()
    for _ in range(370 * 2):  # every day of two years: enough for any monthly day that exists
        if (schedule == "weekly" and day.isoweekday() % 7 + 1 in frequency.recurring_days) or \
                (schedule == "monthly" and day.day in frequency.recurring_days):
            candidate = datetime.datetime.combine(day, first.timetz())
            if candidate.timestamp() > after and candidate >= first:
                return candidate.timestamp()
        day += datetime.timedelta(days=1)
    return None
