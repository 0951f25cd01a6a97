"""Maintenance windows: recurring (``weekly``) or one-off (``once``), in the customer's zone.

Example (per customer)::

    timezone: Europe/London
    maintenance:
      - name: sunday-patching
        weekly: {days: [sun], start: "02:00", end: "04:00"}
        sites: [hq]                      # optional: default every site of the customer
      - name: saturday-night
        weekly: {days: [sat], start: "22:00", end: "04:00"}   # ends on Sunday 04:00
      - name: core-switch-swap
        once: {start: "2026-11-14T22:00", end: "2026-11-15T01:00"}

``mspwatch targets`` turns each window into an Alertmanager ``time_interval`` (notifications
muted while it is open) and the monthly report leaves maintenance out of the availability.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from mspwatch.common.config import StrictModel

from .localtime import Clock, LocalDateTime, Span, Weekday, clip, in_weekly, merge, to_utc, weekly_spans
from .names import Slug

if TYPE_CHECKING:
    from .model import Customer

MAX_ONCE = timedelta(days=31)


def _unique_days(days: list[Weekday]) -> list[Weekday]:
    if len(set(days)) != len(days):
        raise ValueError("a day is listed twice")
    return days


class WeeklyTimes(StrictModel):
    """Every listed weekday from ``start`` to ``end`` (an ``end`` at or before ``start`` is the next day)."""

    days: list[Weekday] = Field(min_length=1)
    """Weekdays the window opens on (`mon` .. `sun`), in the customer's zone."""
    start: Clock = Field(description='"HH:MM", local time')
    end: Clock = Field(description='"HH:MM"; at or before start: the next day; "24:00": midnight')

    _days = field_validator("days")(_unique_days)

    @model_validator(mode="after")
    def _times(self) -> WeeklyTimes:
        if self.start == "24:00":
            raise ValueError("start: 24:00 is the end of a day, start at 00:00 of the next")
        if self.start == self.end:
            raise ValueError("start and end are equal: the window would be empty")
        return self


class OnceTimes(StrictModel):
    """One window from ``start`` to ``end``, local times of the customer's zone."""

    start: LocalDateTime = Field(description='"YYYY-MM-DDTHH:MM", local time')
    end: LocalDateTime = Field(description="after start, at most 31 days later")

    @model_validator(mode="after")
    def _order(self) -> OnceTimes:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_ONCE:
            raise ValueError("a one-off window lasts at most 31 days")
        return self


class MaintenanceWindow(StrictModel):
    """A named window; exactly one of ``weekly`` and ``once``."""

    name: Slug = Field(description="unique per customer; the time interval is <customer>/<name>")
    weekly: WeeklyTimes | None = Field(default=None, description="exactly one of weekly and once")
    once: OnceTimes | None = None
    """A one-off window; exactly one of weekly and once."""
    sites: list[Slug] | None = Field(default=None, min_length=1, description="default: every site")

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        if (self.weekly is None) == (self.once is None):
            raise ValueError("set exactly one of weekly and once")
        return self

    def applies_to(self, site: str | None) -> bool:
        """Whether the window covers ``site`` (``None``: alerts without a site, e.g. backups)."""
        return self.sites is None or site in self.sites

    def occurrences(self, zone: ZoneInfo, start: datetime, end: datetime) -> list[Span]:
        """The window's UTC spans within ``[start, end)`` (aware datetimes).

        >>> from datetime import UTC
        >>> w = MaintenanceWindow(name="w", weekly={"days": ["sun"], "start": "02:00", "end": "04:00"})
        >>> london = ZoneInfo("Europe/London")
        >>> start, end = datetime(2026, 3, 22, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
        >>> [f"{a:%d %H:%M}-{b:%H:%M}" for a, b in w.occurrences(london, start, end)]  # BST from the 29th
        ['22 02:00-04:00', '29 01:00-03:00']
        """
        if self.weekly is not None:
            w = self.weekly
            return weekly_spans(w.days, w.start, w.end, zone, start, end)
        assert self.once is not None
        return clip(to_utc(self.once.start, self.once.end, zone), start, end)

    def is_open(self, zone: ZoneInfo, ts: datetime) -> bool:
        """Whether the customer's wall clock at ``ts`` is inside the window."""
        if self.weekly is not None:
            w = self.weekly
            return in_weekly(w.days, w.start, w.end, zone, ts)
        assert self.once is not None
        local = ts.astimezone(zone).replace(tzinfo=None)
        return self.once.start <= local < self.once.end


def is_in_maintenance(customer: Customer, site: str | None, ts: datetime) -> bool:
    """Whether any of the customer's windows covering ``site`` is open at ``ts``.

    >>> from datetime import UTC
    >>> from mspwatch.inventory import Customer
    >>> c = Customer(name="acme", timezone="America/New_York", sites=[{"name": "hq"}],
    ...     maintenance=[{"name": "patch", "weekly": {"days": ["sun"], "start": "02:00", "end": "04:00"}}])
    >>> is_in_maintenance(c, "hq", datetime(2026, 7, 5, 6, 30, tzinfo=UTC))   # 02:30 EDT
    True
    >>> is_in_maintenance(c, "hq", datetime(2026, 7, 5, 2, 30, tzinfo=UTC))   # Saturday 22:30 EDT
    False
    """
    zone = customer.zone
    return any(w.is_open(zone, ts) for w in customer.maintenance if w.applies_to(site))


def maintenance_spans(customer: Customer, site: str | None, start: datetime, end: datetime) -> list[Span]:
    """The UTC spans within ``[start, end)`` in which any window covering ``site`` is open.

    What the monthly report leaves out of a site's availability, overlaps joined:

    >>> from datetime import UTC
    >>> from mspwatch.inventory import Customer
    >>> c = Customer(name="acme", timezone="Europe/London", sites=[{"name": "hq"}], maintenance=[
    ...     {"name": "a", "weekly": {"days": ["sun"], "start": "02:00", "end": "04:00"}},
    ...     {"name": "b", "once": {"start": "2026-07-05T03:00", "end": "2026-07-05T05:00"}, "sites": ["hq"]}])
    >>> july = datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 7, 8, tzinfo=UTC)
    >>> [f"{a:%d %H:%M}-{b:%H:%M}" for a, b in maintenance_spans(c, "hq", *july)]  # BST = UTC+1
    ['05 01:00-04:00']
    >>> [f"{a:%d %H:%M}-{b:%H:%M}" for a, b in maintenance_spans(c, None, *july)]
    ['05 01:00-03:00']
    """
    zone = customer.zone
    spans = [s for w in customer.maintenance if w.applies_to(site) for s in w.occurrences(zone, start, end)]
    return merge(spans)
