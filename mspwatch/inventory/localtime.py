"""Wall-clock times in a customer's time zone, and the UTC instants they cover.

Maintenance windows and business hours are written in the customer's own zone
(``Europe/London``, ``America/New_York``). An instant is inside ``08:00``-``18:00`` when the
customer's wall clock reads a time in that range, which is also how Alertmanager's
``time_intervals`` with a ``location`` decide: on the day clocks go forward a window over
the skipped hour is shorter, on the day they go back a window over the repeated hour is
longer.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Index = ``date.weekday()``.
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_CLOCK = re.compile(r"^(?:([01]\d|2[0-3]):([0-5]\d)|24:00)$")
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")
Span = tuple[datetime, datetime]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as Europe/London or UTC"
        ) from None
    return value


def _clock(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 18:00 as the base-60 number 1080.
        raise ValueError('write the time in quotes, e.g. "18:00" (YAML reads an unquoted 18:00 as a number)')
    if not isinstance(value, str) or not _CLOCK.match(value):
        raise ValueError(f'invalid time {value!r}, want "HH:MM" (00:00 to 24:00)')
    return value


def _local(value: object) -> object:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError("write the local time without an offset (it is in the customer's timezone)")
        return value
    if not isinstance(value, str) or not _LOCAL.match(value):
        raise ValueError(f'invalid local time {value!r}, want "YYYY-MM-DDTHH:MM"')
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"invalid local time {value!r}: no such date or time") from None


# An IANA time zone name, checked against the zone database.
TimeZone = Annotated[str, AfterValidator(_zone)]
# A wall-clock time "HH:MM"; "24:00" is the end of the day.
Clock = Annotated[str, BeforeValidator(_clock)]
# A naive local date and time "YYYY-MM-DDTHH:MM" in the customer's zone.
LocalDateTime = Annotated[datetime, BeforeValidator(_local)]


def minutes(clock: str) -> int:
    """Minutes after midnight.

    >>> minutes("08:30"), minutes("24:00")
    (510, 1440)
    """
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


def at(day: date, minute: int) -> datetime:
    """The naive local time ``minute`` minutes after the start of ``day`` (1440 = next day)."""
    return datetime(day.year, day.month, day.day) + timedelta(minutes=minute)


def local_dates(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[date]:
    """Every local date that a local span starting the day before ``start`` could touch."""
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def _offset(ts: int, zone: ZoneInfo) -> timedelta:
    offset = datetime.fromtimestamp(ts, zone).utcoffset()
    assert offset is not None
    return offset


def _transitions(lo: int, hi: int, zone: ZoneInfo) -> list[int]:
    """Unix seconds in ``(lo, hi]`` at which the zone's UTC offset changes.

    Zones change offset at whole seconds and at most twice a year, so sampling every six
    hours and bisecting a change to the second finds each one exactly.
    """
    found = []
    step = 6 * 3600
    a = lo
    while a < hi:
        b = min(a + step, hi)
        if _offset(a, zone) != _offset(b, zone):
            x, y = a, b
            while y - x > 1:
                mid = (x + y) // 2
                if _offset(mid, zone) == _offset(x, zone):
                    x = mid
                else:
                    y = mid
            found.append(y)
        a = b
    return found


def to_utc(start: datetime, end: datetime, zone: ZoneInfo) -> list[Span]:
    """The UTC instants at which the wall clock of ``zone`` reads a time in ``[start, end)``.

    >>> london = ZoneInfo("Europe/London")
    >>> [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in
    ...  to_utc(datetime(2026, 7, 1, 8), datetime(2026, 7, 1, 18), london)]
    [('07:00', '17:00')]

    The night clocks go back (02:00 BST becomes 01:00 GMT), 00:30-01:30 happens twice:

    >>> [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in
    ...  to_utc(datetime(2026, 10, 25, 0, 30), datetime(2026, 10, 25, 1, 30), london)]
    [('23:30', '00:30'), ('01:00', '01:30')]
    """
    if end <= start:
        return []
    naive_start = start.replace(tzinfo=UTC)
    naive_end = end.replace(tzinfo=UTC)
    # No zone is more than 26 hours from UTC, so every instant of the span lies in here.
    lo = int((naive_start - timedelta(hours=26)).timestamp())
    hi = int((naive_end + timedelta(hours=26)).timestamp())
    cuts = [lo, *_transitions(lo, hi, zone), hi]
    spans: list[Span] = []
    for a, b in itertools.pairwise(cuts):
        offset = _offset(a, zone)  # constant on [a, b)
        lo_dt = max(datetime.fromtimestamp(a, UTC), naive_start - offset)
        hi_dt = min(datetime.fromtimestamp(b, UTC), naive_end - offset)
        if lo_dt < hi_dt:
            spans.append((lo_dt, hi_dt))
    return merge(spans)


def merge(spans: list[Span]) -> list[Span]:
    """Sort spans and join those that overlap or touch."""
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def clip(spans: list[Span], start: datetime, end: datetime) -> list[Span]:
    """The parts of ``spans`` inside ``[start, end)``."""
    return [(max(a, start), min(b, end)) for a, b in spans if a < end and b > start]


def weekly_spans(
    days: list[Weekday], start: str, end: str, zone: ZoneInfo, utc_start: datetime, utc_end: datetime
) -> list[Span]:
    """UTC spans of a weekly ``days start-end`` in ``zone``, clipped to ``[utc_start, utc_end)``.

    An ``end`` at or before ``start`` ends on the next day (``sat 22:00-04:00``).
    """
    first, last = minutes(start), minutes(end)
    if last <= first:
        last += 1440
    wanted = set(days)
    spans: list[Span] = []
    for day in local_dates(utc_start, utc_end, zone):
        if WEEKDAYS[day.weekday()] in wanted:
            spans += to_utc(at(day, first), at(day, last), zone)
    return clip(merge(spans), utc_start, utc_end)


def in_weekly(days: list[Weekday], start: str, end: str, zone: ZoneInfo, ts: datetime) -> bool:
    """Whether the wall clock of ``zone`` at ``ts`` is inside a weekly ``days start-end``."""
    local = ts.astimezone(zone)
    now = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    today = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    first, last = minutes(start), minutes(end)
    if last > first:
        return today in days and first <= now < last
    return (today in days and now >= first) or (yesterday in days and now < last)
