"""One scrape of one patch source: read it through its client, judge, map.

A failing source raises :class:`ProbeFailure` with its reason and the request counters, so
the answer is still an HTTP 200 within the deadline::

    patch_up 0
    patch_scrape_error{reason="auth"} 1
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol
from zoneinfo import ZoneInfo

from prometheus_client.core import Metric

from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.http import RequestStats
from mspwatch.exporters.core.probe import fetch_source

from .mapping import SourceScrape, map_source
from .policy import PolicySettings
from .records import SourceData, SourceReason

log = logging.getLogger("mspwatch.patch")


class PatchClient(Protocol):
    """What every source kind offers: one fetch per scrape, returning plain records."""

    @property
    def kind(self) -> str: ...

    async def fetch(self, deadline: Deadline, stats: RequestStats) -> SourceData:
        """Read the source once; count requests into ``stats``; raise :class:`SourceError`."""
        ...

    async def aclose(self) -> None: ...


async def scrape_source(
    name: str,
    client: PatchClient,
    policy: PolicySettings,
    zone: ZoneInfo,
    deadline: Deadline,
    clock: Callable[[], float] = time.time,
) -> list[Metric]:
    """Scrape one source; a source that cannot be read raises :class:`ProbeFailure`."""
    stats = RequestStats()  # this scrape's own: concurrent scrapes of a source do not mix

    def down() -> list[Metric]:
        return map_source(SourceScrape(data=None, now=clock(), policy=policy, zone=zone, stats=stats))

    data = await fetch_source(
        name, client.fetch(deadline, stats), deadline, malformed=SourceReason.MALFORMED, down=down, log=log
    )
    return map_source(SourceScrape(data=data, now=clock(), policy=policy, zone=zone, stats=stats))
