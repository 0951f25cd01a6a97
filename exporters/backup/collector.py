"""Collector: read one source once and map it, for one scrape.

A reachable Veeam server (abridged)::

    backup_source_up 1
    backup_source_error{reason="auth"} 0
    backup_job_last_result{job_name="SQL nightly",result="success"} 1

and one that is not (still HTTP 200, within the deadline)::

    backup_source_up 0
    backup_source_error{reason="unreachable"} 1
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from prometheus_client.core import Metric

from mspwatch.exporters.core.deadline import Deadline
from mspwatch.inventory import RpoConfig

from .mapping import SourceScrape, map_source
from .records import Reason, RequestStats, SourceData, SourceError
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
    """Scrape one source; a failure becomes ``backup_source_up 0`` and a reason, never a raise."""
    started = time.monotonic()
    data: SourceData | None = None
    stats = RequestStats()  # this scrape's own: concurrent scrapes of a source do not mix
    reason: Reason | None = None
    try:
        async with asyncio.timeout(deadline.remaining()):
            data = await client.fetch(deadline, stats)
    except SourceError as exc:
        reason = exc.reason
        log.info("source down", extra={"source": name, "reason": reason, "detail": exc.detail})
    except TimeoutError:
        reason = "deadline"
        log.info("source down", extra={"source": name, "reason": reason})
    except Exception as exc:  # a bug or an answer shape we did not foresee: still a 200
        reason = "malformed"
        log.error(
            "source answer could not be mapped",
            extra={"source": name, "err": f"{type(exc).__name__}: {exc}"[:300]},
        )
    logged = read_restore_tests(restore_log, name) if data is not None else []
    return map_source(
        SourceScrape(
            data=data,
            reason=reason,
            duration=time.monotonic() - started,
            now=clock(),
            rpo=rpo,
            stats=stats,
            api_errors=client.api_errors,
            logged_tests=logged,
        )
    )
