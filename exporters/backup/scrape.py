"""Scrape: read one source once and map it, for one scrape.

A reachable Veeam server (abridged; the core adds ``backup_up`` and friends)::

    backup_scrape_requests 7
    backup_job_last_result{job_name="SQL nightly",result="success"} 1

one that is not raises :class:`ProbeFailure` with its reason and the request counters, so
the answer is still HTTP 200 within the deadline::

    backup_up 0
    backup_scrape_error{reason="unreachable"} 1
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from prometheus_client.core import Metric

from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.probe import fetch_source
from mspwatch.inventory import RpoConfig

from .mapping import SourceScrape, map_source
from .records import Reason, RequestStats, SourceData
from .restorelog import read_restore_tests

log = logging.getLogger("mspwatch.backup")


class BackupClient(Protocol):
    """What every source kind offers: one fetch per scrape, returning plain records."""

    @property
    def kind(self) -> str: ...

    @property
    def api_errors(self) -> Mapping[str, int] | None:
        """HTTP error answers since start, by status; ``None`` if the source has no API."""
        ...

    async def fetch(self, deadline: Deadline, stats: RequestStats) -> SourceData:
        """Read the source once; count requests into ``stats``; raise :class:`SourceError`."""
        ...

    async def aclose(self) -> None: ...


async def scrape_source(
    name: str,
    client: BackupClient,
    rpo: RpoConfig,
    restore_log: Path | None,
    deadline: Deadline,
    clock: Callable[[], float] = time.time,
) -> list[Metric]:
    """Scrape one source; a source that cannot be read raises :class:`ProbeFailure`."""
    stats = RequestStats()  # this scrape's own: concurrent scrapes of a source do not mix

    def down() -> list[Metric]:
        return map_source(
            SourceScrape(data=None, now=clock(), rpo=rpo, stats=stats, api_errors=client.api_errors)
        )

    data = await fetch_source(
        name, client.fetch(deadline, stats), deadline, malformed=Reason.MALFORMED, down=down, log=log
    )
    logged = read_restore_tests(restore_log, name)
    return map_source(
        SourceScrape(
            data=data,
            now=clock(),
            rpo=rpo,
            stats=stats,
            api_errors=client.api_errors,
            logged_tests=logged,
        )
    )
