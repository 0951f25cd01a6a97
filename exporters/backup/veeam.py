"""Veeam Backup & Replication as a backup client: one scrape's reads, and the caches.

A scrape reads job states, the sessions of the window (``session_lookback``) and repository
states, then asks per job only what the window cannot tell: the last success or restore
point older than the window (cached: only a newer session can displace it) and the bytes of
the last finished run (cached per session id). The HTTP and token work is
:mod:`.veeam_api`'s, the mapping of the API's models to records :mod:`.veeam_parse`'s.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable

import httpx

from mspwatch.common.secrets import Secret
from mspwatch.common.timeparse import format_time
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.inventory import VeeamSource

from .records import Reason, RequestStats, RestoreTest, SourceData, SourceError, parse_result
from .veeam_api import API_ERROR_STATUSES, VeeamApi, tls_verify
from .veeam_parse import (
    RESTORE_POINT_RESULTS,
    JobPlan,
    Session,
    parse_repository,
    parse_session,
    plan_job,
    sum_transferred,
)

__all__ = ["API_ERROR_STATUSES", "VeeamClient", "tls_verify"]

_TRANSFER_CACHE_MAX = 10_000
_OLD_SUCCESS_TTL = 3600.0


class VeeamClient:
    """One VBR server; keeps its API (tokens, error counters) and caches across scrapes."""

    kind = "veeam"

    def __init__(
        self,
        source: VeeamSource,
        username: str,
        password: Secret,
        *,
        verify: ssl.SSLContext | bool = True,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.source = source
        self._clock = clock
        self._api = VeeamApi(source, username, password, verify=verify, transport=transport)
        self._transferred: OrderedDict[str, float | None] = OrderedDict()  # by session id
        # (job id, resultFilter values) -> (newest matching session or None, monotonic time)
        self._old_success: OrderedDict[tuple[str, tuple[str, ...]], tuple[Session | None, float]] = (
            OrderedDict()
        )

    @property
    def api_errors(self) -> dict[str, int]:
        return self._api.api_errors

    async def aclose(self) -> None:
        await self._api.aclose()

    async def fetch(self, deadline: Deadline, stats: RequestStats) -> SourceData:
        """Read job states, recent sessions and repository states into plain records."""
        now = self._clock()
        # Job states first, alone: it settles the token (login, or renewal after a 401 on
        # the server's clock) before the other lists go out in parallel.
        jobs_raw = await self._api.paged("/api/v1/jobs/states", deadline, stats)
        results = await asyncio.gather(
            self._api.paged(
                "/api/v1/sessions",
                deadline,
                stats,
                {
                    "createdAfterFilter": format_time(now - self.source.session_lookback),
                    "orderColumn": "CreationTime",
                    "orderAsc": "false",
                },
            ),
            self._api.paged("/api/v1/backupInfrastructure/repositories/states", deadline, stats),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r
        sessions_raw, repos_raw = (r for r in results if not isinstance(r, BaseException))
        # skip-based pages over a list that grows at the top can repeat an item: dedupe by id.
        unique = {s.id or str(n): s for n, s in enumerate(parse_session(raw) for raw in sessions_raw) if s}
        sessions = list(unique.values())
        by_job: dict[str, list[Session]] = defaultdict(list)
        tests: dict[str, RestoreTest] = {}
        for s in sorted(sessions, key=lambda s: s.created, reverse=True):
            if s.type.lower() == "surebackup":
                if self.source.surebackup and s.ended is not None and s.name not in tests:
                    tests[s.name] = RestoreTest(s.name, s.ended, s.result, "surebackup")
            elif s.job_id:
                by_job[s.job_id].append(s)

        plans = [p for p in (plan_job(raw, by_job) for raw in jobs_raw) if p is not None]
        await self._lookups(plans, deadline, stats)
        return SourceData(
            jobs=[p.record() for p in plans],
            repositories=[r for r in (parse_repository(raw) for raw in repos_raw) if r is not None],
            restore_tests=list(tests.values()),
        )

    async def _lookups(self, plans: list[JobPlan], deadline: Deadline, stats: RequestStats) -> None:
        """Per-job follow-ups: the last success and restore point beyond the window, bytes
        of the last run."""
        slots = asyncio.Semaphore(self.source.max_concurrent_requests)

        async def newest(job_id: str, results: tuple[str, ...]) -> Session | None:
            """The newest session of the job with one of ``results`` (``resultFilter``)."""
            # A session older than the session window cannot be displaced except by a newer
            # one, which the window shows: cache the answer (found or not) for a while.
            key = (job_id, results)
            cached = self._old_success.get(key)
            if cached is not None and time.monotonic() - cached[1] < _OLD_SUCCESS_TTL:
                return cached[0]
            async with slots:
                body = await self._api.get(
                    "/api/v1/sessions",
                    deadline,
                    stats,
                    {
                        "jobIdFilter": job_id,
                        # an array in the API: sent as repeated resultFilter parameters
                        "resultFilter": list(results),
                        "orderColumn": "CreationTime",
                        "orderAsc": "false",
                        "skip": 0,
                        "limit": 1,
                    },
                )
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise SourceError(Reason.MALFORMED, "/api/v1/sessions: no 'data' list in the answer")
            found = [s for s in (parse_session(d) for d in data) if s is not None]
            wanted = {parse_result(r) for r in results}
            # A server that ignored the filter must not turn a failure into a restore point.
            hit = found[0] if found and found[0].result in wanted else None
            self._old_success[key] = (hit, time.monotonic())
            while len(self._old_success) > _TRANSFER_CACHE_MAX:
                self._old_success.popitem(last=False)
            return hit

        async def beyond_window(plan: JobPlan) -> None:
            if plan.last_restore_point is None:
                # One request answers both when the newest restore point is a success.
                hit = await newest(plan.job_id, ("Success", "Warning"))
                if hit is not None:
                    plan.last_restore_point = hit.created
                    if hit.result == "success":
                        plan.last_success = hit.created
                    # else the newest restore point warned: an older success may exist
                elif plan.last_success is None:
                    return  # neither a success nor a warning: nothing more to ask
            if plan.last_success is None:
                hit = await newest(plan.job_id, ("Success",))
                if hit is not None:
                    plan.last_success = hit.created
            if plan.last_success is not None:
                # A success is a restore point, whatever the combined filter answered.
                plan.last_restore_point = max(plan.last_restore_point or 0.0, plan.last_success)

        async def transferred(plan: JobPlan, session_id: str) -> None:
            if session_id not in self._transferred:
                async with slots:
                    tasks = await self._api.paged(
                        f"/api/v1/sessions/{session_id}/taskSessions", deadline, stats
                    )
                self._transferred[session_id] = sum_transferred(tasks)
                while len(self._transferred) > _TRANSFER_CACHE_MAX:
                    self._transferred.popitem(last=False)
            plan.transferred = self._transferred[session_id]

        work = []
        for plan in plans:
            if plan.last_restore_point is None and not plan.running and plan.last_run:
                # No finished session in the window: the state's lastRun is the last run.
                if plan.last_result in RESTORE_POINT_RESULTS:
                    plan.last_restore_point = plan.last_run
                if plan.last_result == "success":
                    plan.last_success = plan.last_run
            if (plan.last_success is None or plan.last_restore_point is None) and plan.job_id:
                work.append(beyond_window(plan))
            if plan.last_finished_id and self.source.transferred_bytes:
                work.append(transferred(plan, plan.last_finished_id))
        results = await asyncio.gather(*work, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
