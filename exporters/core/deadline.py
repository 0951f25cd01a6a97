"""The scrape deadline: derived from Prometheus's header and passed to every network call."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

SCRAPE_TIMEOUT_HEADER = "x-prometheus-scrape-timeout-seconds"


@dataclass(frozen=True, slots=True)
class Deadline:
    """An absolute point on the monotonic clock by which a scrape must have answered."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str], *, default: float, margin: float, maximum: float
    ) -> Deadline:
        """Use Prometheus's scrape timeout minus ``margin``; fall back to ``default``.

        >>> Deadline.from_headers({"x-prometheus-scrape-timeout-seconds": "10"},
        ...     default=5, margin=0.5, maximum=120).remaining() <= 9.5
        True
        """
        budget = default
        raw = headers.get(SCRAPE_TIMEOUT_HEADER)
        if raw:
            try:
                budget = float(raw)
            except ValueError:
                budget = default
            if budget != budget or budget <= 0:  # NaN or nonsense: keep the default
                budget = default
        budget = min(budget, maximum) - margin
        return cls.after(max(budget, 0.05))

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at
