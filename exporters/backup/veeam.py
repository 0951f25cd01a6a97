"""Veeam Backup & Replication REST API v1 client: jobs, sessions, repositories, SureBackup.

Every request carries ``x-api-version`` and is bounded by the scrape deadline. Tokens come
from the OAuth2 password grant and are renewed with the refresh token, which works once:
the new refresh token from every answer replaces the old one. Lists are read with
``skip``/``limit`` to the last page.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mspwatch.common.secrets import Secret
from mspwatch.common.timeparse import format_time, parse_time
from mspwatch.exporters.core.deadline import Deadline

from .inventory import VeeamSource, resolve
from .records import (
    JobRecord,
    Reason,
    RepositoryRecord,
    RequestStats,
    RestoreTest,
    Result,
    SourceData,
    SourceError,
    parse_result,
)

log = logging.getLogger("mspwatch.backup.veeam")

# The HTTP statuses counted by backup_api_errors_total; anything else is "other".
API_ERROR_STATUSES: tuple[str, ...] = (
    "400",
    "401",
    "403",
    "404",
    "429",
    "500",
    "502",
    "503",
    "504",
    "other",
)
GIB = 1024.0**3
_TOKEN_SLACK = 30.0  # renew this long before the server says the access token expires
_MAX_PAGES = 10_000
_TRANSFER_CACHE_MAX = 10_000
_OLD_SUCCESS_TTL = 3600.0
_Param = str | int | list[str]  # a list goes out as repeated parameters (API arrays)
# Session results that leave a restore point: a run that ends in Warning still writes one.
RESTORE_POINT_RESULTS: tuple[Result, ...] = ("success", "warning")


@dataclass
class _Tokens:
    access: str | None
    refresh: str | None
    expires_at: float  # monotonic


def tls_verify(source: VeeamSource, base_dir: Path) -> ssl.SSLContext | bool:
    """TLS verification on by default; a custom CA bundle; off only when asked by name."""
    if source.insecure_skip_verify:
        return False
    ca = resolve(base_dir, source.ca_file)
    if ca is None:
        return True
    return ssl.create_default_context(cafile=str(ca))


class VeeamClient:
    """One VBR server; keeps its tokens, error counters and a cache across scrapes."""

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
        self._username = username
        self._password = password
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=source.url.rstrip("/"),
            verify=verify,
            headers={"x-api-version": source.api_version, "accept": "application/json"},
            trust_env=False,
            follow_redirects=False,
            transport=transport,
        )
        self._tokens: _Tokens | None = None
        self._token_lock = asyncio.Lock()
        self.api_errors: dict[str, int] = dict.fromkeys(API_ERROR_STATUSES, 0)
        self._transferred: OrderedDict[str, float | None] = OrderedDict()  # by session id
        # (job id, resultFilter values) -> (newest matching session or None, monotonic time)
        self._old_success: OrderedDict[tuple[str, tuple[str, ...]], tuple[_Session | None, float]] = (
            OrderedDict()
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- HTTP ------------------------------------------------------------------------------

    def _count_error(self, status: int) -> None:
        key = str(status) if str(status) in self.api_errors else "other"
        self.api_errors[key] += 1

    async def _send(
        self,
        method: str,
        path: str,
        deadline: Deadline,
        stats: RequestStats,
        *,
        params: Mapping[str, _Param] | None = None,
        form: Mapping[str, str] | None = None,
        bearer: str | None = None,
    ) -> httpx.Response:
        remaining = deadline.remaining()
        if remaining <= 0.01:
            raise SourceError(Reason.DEADLINE, f"scrape deadline reached before {path}")
        timeout = min(self.source.request_timeout, remaining)
        headers = {"authorization": f"Bearer {bearer}"} if bearer else None
        stats.requests += 1
        try:
            async with asyncio.timeout(timeout):
                return await self._http.request(
                    method, path, params=params, data=form, headers=headers, timeout=timeout
                )
        except (TimeoutError, httpx.TimeoutException):
            reason = Reason.DEADLINE if deadline.remaining() <= 0.01 else Reason.TIMEOUT
            raise SourceError(reason, f"no answer to {path} within {timeout:.1f}s") from None
        except httpx.ConnectError as exc:
            if _is_tls_error(exc):
                raise SourceError(Reason.TLS, f"TLS handshake failed: {_cause(exc)}") from None
            raise SourceError(Reason.UNREACHABLE, f"cannot connect: {_cause(exc)}") from None
        except httpx.TransportError as exc:
            raise SourceError(Reason.UNREACHABLE, f"{type(exc).__name__} on {path}") from None

    async def _get(
        self,
        path: str,
        deadline: Deadline,
        stats: RequestStats,
        params: Mapping[str, _Param] | None = None,
    ) -> Any:
        """GET with a valid token; renew once on 401, wait out one 429, retry one 5xx."""
        renewed = False
        throttled = 0
        server_errors = 0
        while True:
            token = await self._access_token(deadline, stats)
            resp = await self._send("GET", path, deadline, stats, params=params, bearer=token)
            status = resp.status_code
            if status < 400:
                return _json(resp, path)
            self._count_error(status)
            if status == 401 and not renewed:
                # Expired or revoked on the server's clock: renew (refresh token first).
                renewed = True
                self._invalidate(token)
                stats.retries += 1
                continue
            if status == 429:
                wait = _retry_after(resp)
                throttled += 1
                if throttled <= 2 and wait < deadline.remaining() - 0.05:
                    log.info("throttled", extra={"source": self.source.name, "retry_after": wait})
                    stats.retries += 1
                    await asyncio.sleep(wait)
                    continue
                raise SourceError(Reason.THROTTLED, f"HTTP 429 on {path}")
            if status >= 500:
                server_errors += 1
                if server_errors == 1 and deadline.remaining() > 0.5:
                    stats.retries += 1
                    await asyncio.sleep(0.1)
                    continue
                raise SourceError(Reason.SERVER_ERROR, f"HTTP {status} on {path}: {_error_code(resp)}")
            if status in (401, 403):
                raise SourceError(Reason.AUTH, f"HTTP {status} on {path}: {_error_code(resp)}")
            raise SourceError(Reason.HTTP_ERROR, f"HTTP {status} on {path}: {_error_code(resp)}")

    async def _paged(
        self,
        path: str,
        deadline: Deadline,
        stats: RequestStats,
        params: Mapping[str, _Param] | None = None,
    ) -> list[dict[str, Any]]:
        """Read every page: ``skip`` advances by what came back until ``total`` is reached."""
        out: list[dict[str, Any]] = []
        limit = self.source.page_size
        skip = 0
        for _ in range(_MAX_PAGES):
            body = await self._get(path, deadline, stats, {**(params or {}), "skip": skip, "limit": limit})
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise SourceError(Reason.MALFORMED, f"{path}: no 'data' list in the answer")
            out.extend(item for item in data if isinstance(item, dict))
            skip += len(data)
            pagination = body.get("pagination")
            total = pagination.get("total") if isinstance(pagination, dict) else None
            if not data:
                break
            if isinstance(total, int):
                if skip >= total:
                    break
            elif len(data) < limit:
                break
        else:
            log.warning("paging stopped", extra={"source": self.source.name, "path": path})
        return out

    # --- tokens ----------------------------------------------------------------------------

    def _invalidate(self, token: str | None) -> None:
        if self._tokens is not None and self._tokens.access == token:
            self._tokens.access = None

    async def _access_token(self, deadline: Deadline, stats: RequestStats) -> str:
        async with self._token_lock:
            t = self._tokens
            if t is not None and t.access and time.monotonic() < t.expires_at:
                return t.access
            if t is not None and t.refresh:
                try:
                    return await self._grant(
                        {"grant_type": "refresh_token", "refresh_token": t.refresh}, deadline, stats
                    )
                except SourceError as exc:
                    if exc.reason not in (Reason.AUTH, Reason.HTTP_ERROR):
                        raise
                    log.info(
                        "refresh token refused, logging in again",
                        extra={"source": self.source.name},
                    )
            return await self._grant(
                {
                    "grant_type": "password",
                    "username": self._username,
                    "password": self._password.reveal(),
                },
                deadline,
                stats,
            )

    async def _grant(self, form: dict[str, str], deadline: Deadline, stats: RequestStats) -> str:
        self._tokens = None  # a refresh token is spent once sent
        for attempt in range(2):
            resp = await self._send("POST", "/api/oauth2/token", deadline, stats, form=form)
            if resp.status_code < 400:
                break
            self._count_error(resp.status_code)
            if resp.status_code >= 500 and attempt == 0 and deadline.remaining() > 0.5:
                stats.retries += 1
                await asyncio.sleep(0.1)
                continue
            if resp.status_code == 429:
                raise SourceError(Reason.THROTTLED, "HTTP 429 on the token endpoint")
            if resp.status_code >= 500:
                raise SourceError(Reason.SERVER_ERROR, f"token endpoint answered {resp.status_code}")
            reason = Reason.AUTH if resp.status_code in (400, 401, 403) else Reason.HTTP_ERROR
            raise SourceError(
                reason,
                f"{form['grant_type']} grant refused: HTTP {resp.status_code} {_error_code(resp)}",
            )
        body = _json(resp, "/api/oauth2/token")
        access = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(access, str) or not access:
            raise SourceError(Reason.MALFORMED, "token answer without access_token")
        refresh = body.get("refresh_token")
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 900.0
        self._tokens = _Tokens(
            access=access,
            refresh=refresh if isinstance(refresh, str) and refresh else None,
            expires_at=time.monotonic() + max(lifetime - _TOKEN_SLACK, 1.0),
        )
        log.debug("token granted", extra={"source": self.source.name, "grant": form["grant_type"]})
        return access

    # --- the scrape ------------------------------------------------------------------------

    async def fetch(self, deadline: Deadline, stats: RequestStats) -> SourceData:
        """Read job states, recent sessions and repository states into plain records."""
        now = self._clock()
        # Job states first, alone: it settles the token (login, or renewal after a 401 on
        # the server's clock) before the other lists go out in parallel.
        jobs_raw = await self._paged("/api/v1/jobs/states", deadline, stats)
        results = await asyncio.gather(
            self._paged(
                "/api/v1/sessions",
                deadline,
                stats,
                {
                    "createdAfterFilter": format_time(now - self.source.session_lookback),
                    "orderColumn": "CreationTime",
                    "orderAsc": "false",
                },
            ),
            self._paged("/api/v1/backupInfrastructure/repositories/states", deadline, stats),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r
        sessions_raw, repos_raw = (r for r in results if not isinstance(r, BaseException))
        # skip-based pages over a list that grows at the top can repeat an item: dedupe by id.
        unique = {s.id or str(n): s for n, s in enumerate(_session(raw) for raw in sessions_raw) if s}
        sessions = list(unique.values())
        by_job: dict[str, list[_Session]] = defaultdict(list)
        tests: dict[str, RestoreTest] = {}
        for s in sorted(sessions, key=lambda s: s.created, reverse=True):
            if s.type.lower() == "surebackup":
                if self.source.surebackup and s.ended is not None and s.name not in tests:
                    tests[s.name] = RestoreTest(s.name, s.ended, s.result, "surebackup")
            elif s.job_id:
                by_job[s.job_id].append(s)

        plans = [p for p in (_plan_job(raw, by_job) for raw in jobs_raw) if p is not None]
        await self._lookups(plans, deadline, stats)
        return SourceData(
            jobs=[p.record() for p in plans],
            repositories=[r for r in (_repository(raw) for raw in repos_raw) if r is not None],
            restore_tests=list(tests.values()),
        )

    async def _lookups(self, plans: list[_JobPlan], deadline: Deadline, stats: RequestStats) -> None:
        """Per-job follow-ups: the last success and restore point beyond the window, bytes
        of the last run."""
        slots = asyncio.Semaphore(self.source.max_concurrent_requests)

        async def newest(job_id: str, results: tuple[str, ...]) -> _Session | None:
            """The newest session of the job with one of ``results`` (``resultFilter``)."""
            # A session older than the session window cannot be displaced except by a newer
            # one, which the window shows: cache the answer (found or not) for a while.
            key = (job_id, results)
            cached = self._old_success.get(key)
            if cached is not None and time.monotonic() - cached[1] < _OLD_SUCCESS_TTL:
                return cached[0]
            async with slots:
                body = await self._get(
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
            found = [s for s in (_session(d) for d in data) if s is not None]
            wanted = {parse_result(r) for r in results}
            # A server that ignored the filter must not turn a failure into a restore point.
            hit = found[0] if found and found[0].result in wanted else None
            self._old_success[key] = (hit, time.monotonic())
            while len(self._old_success) > _TRANSFER_CACHE_MAX:
                self._old_success.popitem(last=False)
            return hit

        async def beyond_window(plan: _JobPlan) -> None:
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

        async def transferred(plan: _JobPlan, session_id: str) -> None:
            if session_id not in self._transferred:
                async with slots:
                    tasks = await self._paged(f"/api/v1/sessions/{session_id}/taskSessions", deadline, stats)
                self._transferred[session_id] = _sum_transferred(tasks)
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


# --- parsing the documented models --------------------------------------------------------


@dataclass
class _Session:
    id: str
    job_id: str
    name: str
    type: str
    created: float
    ended: float | None
    result: Result
    state: str


def _session(raw: dict[str, Any]) -> _Session | None:
    created = parse_time(raw.get("creationTime"))
    if created is None:
        return None
    result = raw.get("result")
    ended = parse_time(raw.get("endTime"))
    state = str(raw.get("state") or "")
    return _Session(
        id=str(raw.get("id") or ""),
        job_id=str(raw.get("jobId") or ""),
        name=str(raw.get("name") or ""),
        type=str(raw.get("sessionType") or ""),
        created=created,
        # A session still working has no end time, whatever the server put there.
        ended=ended if state.lower() != "working" else None,
        result=parse_result(result.get("result") if isinstance(result, dict) else None),
        state=state,
    )


@dataclass
class _JobPlan:
    job_id: str
    name: str
    type: str
    enabled: bool
    running: bool
    last_result: Result
    last_run: float | None
    last_success: float | None
    last_restore_point: float | None
    next_run: float | None
    last_duration: float | None
    last_finished_id: str | None
    protected_objects: int | None
    workload: str
    repository: str
    transferred: float | None = None

    def record(self) -> JobRecord:
        return JobRecord(
            name=self.name,
            type=self.type,
            enabled=self.enabled,
            running=self.running,
            last_result=self.last_result,
            last_run=self.last_run,
            last_success=self.last_success,
            last_restore_point=self.last_restore_point,
            next_run=self.next_run,
            last_duration=self.last_duration,
            transferred_bytes=self.transferred,
            protected_objects=self.protected_objects,
            workload=self.workload,
            repository=self.repository,
        )


def _label_value(raw: object, default: str = "unknown") -> str:
    """Enum-ish strings the API adds to with each revision: kept as given, bounded."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 64:
        return default
    return raw.strip()


def _plan_job(raw: dict[str, Any], by_job: Mapping[str, list[_Session]]) -> _JobPlan | None:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        return None
    job_id = str(raw.get("id") or "")
    status = str(raw.get("status") or "").lower()
    sessions = by_job.get(job_id, [])
    finished = [s for s in sessions if s.ended is not None]
    running = status == "running" or any(s.ended is None for s in sessions)
    # The newest finished session is the truth: an agent policy's own state can say
    # Success while the backup it ran failed.
    last = finished[0] if finished else None
    last_result = last.result if last is not None else parse_result(raw.get("lastResult"))
    success = next((s for s in finished if s.result == "success"), None)
    restore_point = next((s for s in finished if s.result in RESTORE_POINT_RESULTS), None)
    last_run = parse_time(raw.get("lastRun"))
    if sessions and (last_run is None or sessions[0].created > last_run):
        last_run = sessions[0].created
    objects = raw.get("objectsCount")
    return _JobPlan(
        job_id=job_id,
        name=name,
        type=_label_value(raw.get("type")),
        enabled=status != "disabled",
        running=running,
        last_result=last_result,
        last_run=last_run,
        last_success=success.created if success is not None else None,
        last_restore_point=restore_point.created if restore_point is not None else None,
        next_run=parse_time(raw.get("nextRun")),
        last_duration=(last.ended - last.created) if last is not None and last.ended else None,
        last_finished_id=last.id if last is not None and last.id else None,
        protected_objects=objects if isinstance(objects, int) and objects >= 0 else None,
        workload=_label_value(raw.get("workload"), ""),
        repository=_label_value(raw.get("repositoryName"), ""),
    )


def _repository(raw: dict[str, Any]) -> RepositoryRecord | None:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        return None

    def gib(key: str) -> float | None:
        value = raw.get(key)
        return float(value) * GIB if isinstance(value, int | float) and value >= 0 else None

    return RepositoryRecord(
        name=name,
        type=_label_value(raw.get("type")),
        capacity_bytes=gib("capacityGB"),
        free_bytes=gib("freeGB"),
    )


def _sum_transferred(tasks: list[dict[str, Any]]) -> float | None:
    total = 0.0
    seen = False
    for task in tasks:
        progress = task.get("progress")
        value = progress.get("transferredSize") if isinstance(progress, dict) else None
        if isinstance(value, int | float) and value >= 0:
            total += value
            seen = True
    return total if seen else None


# --- small helpers ---------------------------------------------------------------------------


def _json(resp: httpx.Response, path: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise SourceError(Reason.MALFORMED, f"{path}: answer is not JSON") from None


def _error_code(resp: httpx.Response) -> str:
    """The documented ``errorCode`` only: messages may echo request data."""
    try:
        body = resp.json()
    except ValueError:
        return "(no JSON body)"
    code = body.get("errorCode") or body.get("error") if isinstance(body, dict) else None
    return _label_value(code, "(no errorCode)")


def _retry_after(resp: httpx.Response) -> float:
    raw = resp.headers.get("retry-after", "")
    try:
        return min(max(float(raw), 0.0), 60.0)
    except ValueError:
        return 1.0


def _is_tls_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLError):
            return True
        cur = cur.__cause__ or cur.__context__
    return "SSL" in str(exc) or "CERTIFICATE" in str(exc).upper()


def _cause(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace("\n", " ")[:200]
