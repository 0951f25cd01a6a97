"""What the report needs to know about a customer's agreement, and the month it covers.

Read from the inventory's ``timezone``, ``contract`` and ``maintenance`` (issue 7 schema);
a customer without them gets the defaults (UTC, 24x7, 99.9 %, 2-minute blips).

    >>> m = month_span("2026-10", "Europe/London")
    >>> (m.minutes, m.label)
    (44700, 'October 2026')
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GATEWAY_ROLES = frozenset({"core", "router", "uplink", "firewall"})


@dataclass(frozen=True)
class Weekly:
    days: tuple[str, ...]
    start: str  # "HH:MM" local
    end: str


@dataclass(frozen=True)
class Once:
    start: str  # "YYYY-MM-DDTHH:MM" local
    end: str


@dataclass(frozen=True)
class Maintenance:
    name: str
    when: Weekly | Once
    sites: tuple[str, ...] | None = None  # None: every site


@dataclass(frozen=True)
class Contract:
    timezone: str = "UTC"
    availability_target: float = 99.9
    hours: str = "24x7"  # or "business"
    business_hours: Weekly | None = None
    blip_threshold_seconds: int = 120
    maintenance: tuple[Maintenance, ...] = ()


@dataclass(frozen=True)
class Month:
    """A calendar month in the customer's zone, as UTC seconds ``[start, end)``."""

    key: str  # "2026-10"
    timezone: str
    start: int
    end: int

    @property
    def minutes(self) -> int:
        return (self.end - self.start) // 60

    @property
    def label(self) -> str:
        return dt.datetime.strptime(self.key, "%Y-%m").strftime("%B %Y")


def month_span(key: str, timezone: str) -> Month:
    """``key`` is ``YYYY-MM``; midnight to midnight local time, so DST months differ in length."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", key):
        raise ValueError(f"--month {key!r} is not YYYY-MM")
    year, month = map(int, key.split("-"))
    zone = ZoneInfo(timezone)
    first = dt.datetime(year, month, 1, tzinfo=zone)
    nxt = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return Month(key, timezone, int(first.timestamp()), int(nxt.timestamp()))


def previous_month(key: str) -> str:
    year, month = map(int, key.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def _duration_seconds(value: Any) -> int:
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, dt.timedelta):
        return int(value.total_seconds())
    m = re.fullmatch(r"(\d+)(s|m|h)", str(value))
    if not m:
        raise ValueError(f"blip_threshold {value!r} is not a duration like 2m")
    return int(m[1]) * {"s": 1, "m": 60, "h": 3600}[m[2]]


def _weekly(obj: Any) -> Weekly:
    return Weekly(tuple(obj.days), str(obj.start), str(obj.end))


def contract_of(customer: Any) -> Contract:
    """The customer's contract from the inventory model (fields absent: the defaults)."""
    c = getattr(customer, "contract", None)
    windows = []
    for w in getattr(customer, "maintenance", None) or []:
        when: Weekly | Once
        if getattr(w, "weekly", None) is not None:
            when = _weekly(w.weekly)
        else:
            when = Once(str(w.once.start), str(w.once.end))
        sites = getattr(w, "sites", None)
        windows.append(Maintenance(w.name, when, tuple(sites) if sites else None))
    tz = str(getattr(customer, "timezone", None) or "UTC")
    if c is None:
        return Contract(timezone=tz, maintenance=tuple(windows))
    bh = getattr(c, "business_hours", None)
    return Contract(
        timezone=tz,
        availability_target=float(c.availability_target),
        hours=str(c.hours),
        business_hours=_weekly(bh) if bh is not None else None,
        blip_threshold_seconds=_duration_seconds(getattr(c, "blip_threshold", 120)),
        maintenance=tuple(windows),
    )
