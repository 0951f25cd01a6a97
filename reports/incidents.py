"""Incidents (outages merged across devices) and recurring problems (alerts by count).

An incident is a stretch of minutes in which at least one device of the customer was down
outside maintenance (blips already ignored); overlapping device outages are one incident::

    >>> import numpy as np
    >>> a = np.array([0, 1, 1, 0, 0, 0], bool); b = np.array([0, 0, 1, 1, 0, 1], bool)
    >>> [(i.start, i.minutes, i.devices) for i in incidents({"hq/a": a, "hq/b": b}, np.ones(6, bool), 0)]
    [(60, 3, ('hq/a', 'hq/b')), (300, 1, ('hq/b',))]
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from mspwatch.reports.availability import Mask, runs
from mspwatch.reports.frames import Episode
from mspwatch.reports.model import Incident, Recurring


def incidents(down: dict[str, Mask], contract: Mask, start: int) -> list[Incident]:
    """``down``: per "site/device", the minutes it counted as down; ``start``: minute 0 (UTC)."""
    if not down:
        return []
    any_down = np.logical_or.reduce(list(down.values()))
    out = []
    for a, b in runs(any_down):
        devices = tuple(sorted(k for k, m in down.items() if m[a:b].any()))
        out.append(
            Incident(
                start=start + a * 60,
                end=start + b * 60,
                minutes=b - a,
                contract_minutes=int(contract[a:b].sum()),
                devices=devices,
            )
        )
    return out


def mttr(items: list[Incident]) -> float | None:
    """Mean time to recovery in minutes (None without incidents)."""
    return sum(i.minutes for i in items) / len(items) if items else None


def recurring(episodes: list[Episode], top: int = 10) -> list[Recurring]:
    """Alerts that fired most often: count of firing episodes, then total minutes."""
    count: dict[str, int] = defaultdict(int)
    minutes: dict[str, int] = defaultdict(int)
    for e in episodes:
        name = e.labels.get("alertname", "?")
        count[name] += 1
        minutes[name] += e.minutes
    ranked = sorted(count, key=lambda n: (-count[n], -minutes[n], n))
    return [Recurring(n, count[n], minutes[n]) for n in ranked[:top]]
