"""One scrape of one patch source: read it through its client, judge, map.

A failing source raises :class:`ProbeFailure` with its reason and the request counters, so
the answer is still an HTTP 200 within the deadline::

    patch_up 0
    patch_scrape_error{reason="auth"} 1
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol
from zoneinfo import ZoneInfo

from prometheus_client.core import Metric

from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.http import RequestStats
from mspwatch.exporters.core.probe import ProbeFailure

from .mapping import SourceScrape, map_source
from .policy import PolicySettings
from .records import SourceData, SourceError, SourceReason

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
    reason: SourceReason
    try:
        async with asyncio.timeout(deadline.remaining()):
            data = await client.fetch(deadline, stats)
    except SourceError as exc:
        reason, detail = exc.reason, exc.detail
    except TimeoutError:
        reason, detail = SourceReason.DEADLINE, "no answer before the scrape deadline"
    except Exception as exc:  # a bug or an answer shape we did not foresee: still a 200
        reason, detail = SourceReason.MALFORMED, f"{type(exc).__name__}: {exc}"[:300]
        log.error("source answer could not be mapped", extra={"source": name, "err": detail})
    else:
        return map_source(SourceScrape(data=data, now=clock(), policy=policy, zone=zone, stats=stats))
    if reason is not SourceReason.MALFORMED:
        log.info("source down", extra={"source": name, "reason": str(reason), "detail": detail})
    health = map_source(SourceScrape(data=None, now=clock(), policy=policy, zone=zone, stats=stats))
    raise ProbeFailure(reason, detail=detail, families=health)
