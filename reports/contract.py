"""The month a report covers, on the customer's clock.

The contract itself (target, hours, blip threshold), the time zone and the maintenance
windows are the inventory's (``mspwatch.inventory.Customer``); this module only cuts the
calendar month::

    >>> m = month_span("2026-10", "Europe/London")   # BST ends on the 25th
    >>> (m.minutes, m.label)
    (44700, 'October 2026')
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# Roles whose loss cuts a site off (what "a site whose gateway is unreachable" means).
GATEWAY_ROLES = frozenset({"core", "router", "uplink", "firewall"})


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

    @property
    def start_dt(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.start, dt.UTC)

    @property
    def end_dt(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.end, dt.UTC)


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
