"""Minute-level availability: four states, contract hours, maintenance, blips, error budget.

A minute is one of UP (1), DOWN (0) or NO_DATA (-1) as measured; MAINTENANCE is decided by
the inventory's windows and takes the minute out of both numerator and denominator.
No-data minutes stay in the denominator, so a monitoring gap can only lower the figure,
never hide an outage::

    >>> import numpy as np
    >>> s = np.array([1, 1, 0, 0, 1, -1, 1, 0, 1, 1], dtype=np.int8)
    >>> filtered, blips = ignore_blips(s, 2)
    >>> filtered.tolist(), blips
    ([1, 1, 0, 0, 1, -1, 1, 1, 1, 1], 1)
    >>> figures(filtered, np.ones(10, bool), np.zeros(10, bool), blips).availability
    0.7
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mspwatch.inventory import Customer
from mspwatch.inventory.localtime import weekly_spans
from mspwatch.reports.contract import Month

UP, DOWN, NO_DATA = 1, 0, -1
Mask = npt.NDArray[np.bool_]
States = npt.NDArray[np.int8]


def minute_starts(month: Month) -> npt.NDArray[np.int64]:
    return np.arange(month.start, month.end, 60, dtype=np.int64)


def spans_mask(month: Month, spans: list[tuple[dt.datetime, dt.datetime]]) -> Mask:
    """Minutes of the month whose start lies in one of the UTC spans."""
    starts = minute_starts(month)
    mask = np.zeros(starts.shape, dtype=bool)
    for lo, hi in spans:
        mask |= (starts >= lo.timestamp()) & (starts < hi.timestamp())
    return mask


def contract_mask(month: Month, customer: Customer) -> Mask:
    """Minutes the SLA counts: all of them (24x7) or the business hours on the customer's
    wall clock (the inventory's ``weekly_spans``, DST-correct)."""
    bh = customer.contract.business_hours
    if customer.contract.hours != "business" or bh is None:
        return np.ones(month.minutes, dtype=bool)
    return spans_mask(
        month, weekly_spans(bh.days, bh.start, bh.end, customer.zone, month.start_dt, month.end_dt)
    )


@dataclass(frozen=True)
class Occurrence:
    name: str
    start: int  # UTC seconds, clipped to the month
    end: int
    sites: tuple[str, ...] | None

    @property
    def minutes(self) -> int:
        return (self.end - self.start) // 60


def occurrences(customer: Customer, month: Month) -> list[Occurrence]:
    """Every maintenance window's occurrences in the month, in UTC, in time order."""
    out = []
    for w in customer.maintenance:
        for lo, hi in w.occurrences(customer.zone, month.start_dt, month.end_dt):
            out.append(
                Occurrence(
                    w.name, int(lo.timestamp()), int(hi.timestamp()), tuple(w.sites) if w.sites else None
                )
            )
    return sorted(out, key=lambda o: (o.start, o.name))


def maintenance_mask(month: Month, windows: list[Occurrence], site: str) -> Mask:
    starts = minute_starts(month)
    mask = np.zeros(starts.shape, dtype=bool)
    for occ in windows:
        if occ.sites is None or site in occ.sites:
            mask |= (starts >= occ.start) & (starts < occ.end)
    return mask


def runs(mask: Mask) -> list[tuple[int, int]]:
    """Half-open index runs of True: ``runs([0,1,1,0,1]) == [(1, 3), (4, 5)]``."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def ignore_blips(states: States, threshold_minutes: int) -> tuple[States, int]:
    """Treat DOWN runs shorter than the threshold as UP; return the states and their count."""
    out = states.copy()
    blips = 0
    for a, b in runs(states == DOWN):
        if b - a < threshold_minutes:
            out[a:b] = UP
            blips += 1
    return out, blips


@dataclass(frozen=True)
class Figures:
    """Minutes of one device (or site) in one month; contract minutes only."""

    counted: int  # contract minutes outside maintenance: the denominator
    up: int
    down: int
    no_data: int
    maintenance: int  # contract minutes inside maintenance (excluded, listed)
    blips: int

    @property
    def availability(self) -> float:
        return self.up / self.counted if self.counted else 1.0


def figures(states: States, contract: Mask, maintenance: Mask, blips: int) -> Figures:
    counted = contract & ~maintenance
    return Figures(
        counted=int(counted.sum()),
        up=int((counted & (states == UP)).sum()),
        down=int((counted & (states == DOWN)).sum()),
        no_data=int((counted & (states == NO_DATA)).sum()),
        maintenance=int((contract & maintenance).sum()),
        blips=blips,
    )


def site_states(device_states: list[States], gateways: list[bool]) -> States:
    """A site is DOWN in a minute when every gateway is down (no way in), NO_DATA when no
    gateway has data, else UP. A site without gateway devices is judged on all its devices."""
    chosen = [s for s, g in zip(device_states, gateways, strict=True) if g] or device_states
    stack = np.vstack(chosen)
    out = np.full(stack.shape[1], NO_DATA, dtype=np.int8)
    has = (stack != NO_DATA).any(axis=0)
    all_down = has & ((stack == DOWN) | (stack == NO_DATA)).all(axis=0)
    out[has] = UP
    out[all_down] = DOWN
    return out


def budget_used(availability: float, target_percent: float) -> float:
    """Share of the error budget spent: 1.0 means exactly at target, above 1 breached.

    >>> round(budget_used(0.9995, 99.9), 3)
    0.5
    """
    allowed = 1.0 - target_percent / 100.0
    return (1.0 - availability) / allowed if allowed > 0 else 0.0
