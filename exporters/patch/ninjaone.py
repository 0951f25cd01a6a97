"""NinjaOne public API v2 client: one organisation's devices and their patch state.

Per scrape (``df=org = <id>`` on every call)::

    POST /ws/oauth/token                  client credentials, scope "monitoring" (cached)
    GET  /v2/organizations                name -> id, once (paged by ``after``)
    GET  /v2/devices                      paged by ``after`` = last id until a short page
    GET  /v2/queries/operating-systems    OS name/build, lastBootTime, needsReboot
    GET  /v2/queries/os-patches           pending, approved, failed, rejected updates
    GET  /v2/queries/os-patch-installs    install attempts since now - install_lookback
    GET  /v2/queries/antivirus-status     productState, definitionStatus
    GET  /v2/activities                   patch scans: type PATCH_MANAGEMENT, statusCode
                                          PATCH_MANAGEMENT_SCAN_COMPLETED, activityTime

Queries page with ``cursor=<name>`` until ``results`` is empty; a cursor the server no
longer knows (4xx on a cursor page) restarts that query from its first page, a bounded
number of times. The activity log is newest first and pages with ``olderThan`` = the
smallest id seen; the first scrape reads ``scan_lookback`` back, later ones only what is
newer than the newest id seen (``newerThan``), so a steady scrape costs one page.
Retries, ``Retry-After`` and the deadline are the shared HTTP client's
(:mod:`mspwatch.exporters.core.http`); a 401 gets a new token once. The token and the
client secret never reach a log line or an error message. The API client needs read
access (scope ``monitoring``) only.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from mspwatch.common.secrets import Secret
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.http import HttpError, JsonClient, RequestStats, RetryPolicy, decode_json

from .records import (
    Antivirus,
    Classification,
    DeviceRecord,
    InstallAttempt,
    OsFamily,
    Role,
    Severity,
    SourceData,
    SourceError,
    SourceReason,
    Update,
)

log = logging.getLogger("mspwatch.patch.ninjaone")

_TOKEN_SLACK = 60.0  # renew this long before the token expires
_MAX_PAGES = 10_000
_ORG_CACHE_TTL = 3600.0
SCAN_TYPE = "PATCH_MANAGEMENT"
SCAN_DONE = "PATCH_MANAGEMENT_SCAN_COMPLETED"

TYPES: dict[str, Classification] = {
    "SECURITY_UPDATES": Classification.SECURITY,
    "CRITICAL_UPDATES": Classification.CRITICAL,
    "UPDATE_ROLLUPS": Classification.ROLLUP,
    "DEFINITION_UPDATES": Classification.DEFINITION,
    "FEATURE_PACKS": Classification.FEATURE,
    "DRIVER_UPDATES": Classification.DRIVER,
    "REGULAR_UPDATES": Classification.REGULAR,
}
SEVERITIES: dict[str, Severity] = {
    "CRITICAL": Severity.CRITICAL,
    "IMPORTANT": Severity.IMPORTANT,
    "MODERATE": Severity.MODERATE,
    "LOW": Severity.LOW,
    "OPTIONAL": Severity.OPTIONAL,
}
# os-patches statuses that mean "not installed and wanted". REJECTED is an admin's decision
# not to install: not counted. Unknown values count as pending (the cautious reading).
IGNORED_STATUSES = frozenset({"REJECTED", "INSTALLED"})


def node_kind(node_class: object) -> tuple[OsFamily, Role]:
    """``WINDOWS_SERVER`` -> (windows, server); unknown classes are (other, other).

    >>> [str(x) for x in node_kind("WINDOWS_SERVER") + node_kind("MAC") + node_kind("VMWARE_VM_HOST")]
    ['windows', 'server', 'mac', 'workstation', 'other', 'other']
    """
    text = node_class.upper() if isinstance(node_class, str) else ""
    family = next(
        (
            f
            for prefix, f in (("WINDOWS", OsFamily.WINDOWS), ("MAC", OsFamily.MAC), ("LINUX", OsFamily.LINUX))
            if text.startswith(prefix)
        ),
        OsFamily.OTHER,
    )
    if family is OsFamily.OTHER:
        return family, Role.OTHER
    if text.endswith("_SERVER"):
        return family, Role.SERVER
    if text.endswith("_WORKSTATION") or text in ("MAC", "LINUX"):
        return family, Role.WORKSTATION
    return family, Role.OTHER


def _is_int(raw: object) -> bool:
    return isinstance(raw, int) and not isinstance(raw, bool)


def _epoch(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        return None
    return float(raw)


@functools.lru_cache(maxsize=1024)  # a few dozen distinct values, read tens of thousands of times
def _word_of(raw: str) -> str:
    return "".join(ch for ch in raw.upper() if ch.isalnum())


def _word(raw: object) -> str:
    """Compare enum values without case and separators: ``Out-of-Date`` == ``OUT_OF_DATE``."""
    return _word_of(raw) if isinstance(raw, str) else ""


@dataclass(frozen=True)
class NinjaOptions:
    page_size: int = 1000
    request_timeout: float = 10.0
    max_retries: int = 2  # per request: 429, 5xx, timeouts, network errors
    install_lookback: float = 35 * 86400.0
    max_cursor_restarts: int = 2
    scope: str = "monitoring"
    scan_lookback: float = 14 * 86400.0  # how far back the first scrape reads patch scans


@dataclass
class ScanLog:
    """What the activity log said so far: the newest scan per device, read incrementally."""

    org: int
    since: float  # the first read went back to here: a device not in ``last`` has no scan since
    newest_id: int = 0  # the highest activity id seen; the next read asks only for newer ones
    last: dict[int, float] = field(default_factory=dict)  # device id -> newest scan


class _ClientCredentials:
    """The token hook: OAuth2 client credentials, cached until shortly before expiry."""

    def __init__(self, json: JsonClient, client_id: str, secret: Secret, scope: str) -> None:
        self._json = json
        self._client_id = client_id
        self._secret = secret
        self._scope = scope
        self._token: tuple[str, float] | None = None  # (token, monotonic expiry)
        self._lock = asyncio.Lock()
        # The current scrape's counts, so a grant is one of its requests (two scrapes of one
        # source at once may count a grant in the other: harmless).
        self.stats: RequestStats | None = None

    def invalidate(self) -> None:
        self._token = None

    async def token(self, deadline: Deadline) -> str:
        async with self._lock:
            if self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            form = {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._secret.reveal(),
                "scope": self._scope,
            }
            try:
                resp = await self._json.send("POST", "/ws/oauth/token", deadline, form=form, stats=self.stats)
            except HttpError as exc:
                if exc.status in (400, 401, 403):
                    detail = f"token endpoint refused the client credentials: HTTP {exc.status}"
                    raise SourceError(SourceReason.AUTH, f"{detail} {exc.code}".strip()) from None
                raise
            body = decode_json(resp, "/ws/oauth/token")
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise SourceError(SourceReason.MALFORMED, "token answer without access_token")
            raw = body.get("expires_in")
            lifetime = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 3600.0
            self._token = (token, time.monotonic() + max(lifetime - _TOKEN_SLACK, 1.0))
            return token


class NinjaOneClient:
    """One organisation on one NinjaOne region host; keeps its token across scrapes."""

    kind = "ninjaone"

    def __init__(
        self,
        name: str,
        url: str,
        organization: str,
        client_id: str,
        client_secret: Secret,
        options: NinjaOptions,
        *,
        verify: ssl.SSLContext | bool = True,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.organization = organization
        self._options = options
        self._clock = clock
        http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            verify=verify,
            headers={"accept": "application/json", "user-agent": "mspwatch"},
            trust_env=False,
            follow_redirects=False,
            transport=transport,
        )
        self._json = JsonClient(
            http,
            request_timeout=options.request_timeout,
            policy=RetryPolicy(max_retries=options.max_retries),
            owns_http=True,
            name=name,
        )
        self._auth = _ClientCredentials(self._json, client_id, client_secret, options.scope)
        self._org: tuple[int, float] | None = None  # (id, monotonic time looked up)
        self._scans: ScanLog | None = None

    async def aclose(self) -> None:
        await self._json.aclose()

    async def _get_json(
        self, path: str, deadline: Deadline, stats: RequestStats, params: Mapping[str, str | int]
    ) -> Any:
        return await self._json.get_json(path, deadline, params=params, auth=self._auth, stats=stats)

    # --- paging --------------------------------------------------------------------------

    async def _after_pages(
        self, path: str, deadline: Deadline, stats: RequestStats, params: Mapping[str, str | int]
    ) -> list[dict[str, Any]]:
        """Bare-array lists: ``after`` = the last id seen, until a short or empty page."""
        size = self._options.page_size
        out: list[dict[str, Any]] = []
        after: int | None = None
        for _ in range(_MAX_PAGES):
            query: dict[str, str | int] = {**params, "pageSize": size}
            if after is not None:
                query["after"] = after
            page = await self._get_json(path, deadline, stats, query)
            if not isinstance(page, list):
                raise SourceError(SourceReason.MALFORMED, f"{path}: answer is not a list")
            rows = [r for r in page if isinstance(r, dict) and isinstance(r.get("id"), int)]
            if len(rows) != len(page):
                raise SourceError(SourceReason.MALFORMED, f"{path}: an entry without a numeric id")
            out.extend(rows)
            if len(rows) < size:
                return out
            after = max(int(r["id"]) for r in rows)
        raise SourceError(SourceReason.MALFORMED, f"{path}: more than {_MAX_PAGES} pages")

    async def _query(
        self, path: str, deadline: Deadline, stats: RequestStats, params: Mapping[str, str | int]
    ) -> list[dict[str, Any]]:
        """A ``/v2/queries/...`` report: cursor pages until ``results`` is empty."""
        for restart in range(self._options.max_cursor_restarts + 1):
            try:
                return await self._cursor_pages(path, deadline, stats, params)
            except _CursorGone:
                stats.restarts += 1
                log.info(
                    "cursor expired, restarting",
                    extra={"source": self.name, "path": path, "restart": restart + 1},
                )
        raise SourceError(SourceReason.MALFORMED, f"{path}: cursor kept expiring")

    async def _cursor_pages(
        self, path: str, deadline: Deadline, stats: RequestStats, params: Mapping[str, str | int]
    ) -> list[dict[str, Any]]:
        size = self._options.page_size
        out: list[dict[str, Any]] = []
        query: dict[str, str | int] = {**params, "pageSize": size}
        for page in range(_MAX_PAGES):
            try:
                body = await self._get_json(path, deadline, stats, query)
            except HttpError as exc:
                # The API documents no answer for a cursor it forgot: any 4xx on a follow-up page.
                if page > 0 and exc.status in (400, 404, 410):
                    raise _CursorGone() from None
                raise
            results = body.get("results") if isinstance(body, dict) else None
            cursor = body.get("cursor") if isinstance(body, dict) else None
            if not isinstance(results, list):
                raise SourceError(SourceReason.MALFORMED, f"{path}: no 'results' list")
            out.extend(r for r in results if isinstance(r, dict))
            name = cursor.get("name") if isinstance(cursor, dict) else None
            if not results or not isinstance(name, str) or not name:
                return out
            query = {"cursor": name, "pageSize": size}
        raise SourceError(SourceReason.MALFORMED, f"{path}: more than {_MAX_PAGES} pages")

    # --- the scrape ------------------------------------------------------------------------

    async def _org_id(self, deadline: Deadline, stats: RequestStats) -> int:
        if self._org is not None and time.monotonic() - self._org[1] < _ORG_CACHE_TTL:
            return self._org[0]
        orgs = await self._after_pages("/v2/organizations", deadline, stats, {})
        wanted = self.organization.casefold()
        for org in orgs:
            if isinstance(org.get("name"), str) and org["name"].casefold() == wanted:
                self._org = (int(org["id"]), time.monotonic())
                return self._org[0]
        raise SourceError(SourceReason.NOT_FOUND, f"no organization named {self.organization!r}")

    async def fetch(self, deadline: Deadline, stats: RequestStats) -> SourceData:
        """Read the organisation's devices and their patch, reboot and antivirus state."""
        now = self._clock()
        self._auth.stats = stats
        try:
            return await self._fetch(now, deadline, stats)
        except HttpError as exc:
            raise SourceError(SourceReason(exc.reason.value), exc.detail) from None

    async def _fetch(self, now: float, deadline: Deadline, stats: RequestStats) -> SourceData:
        org = await self._org_id(deadline, stats)
        df = {"df": f"org = {org}"}
        # Devices first, alone: it settles the token (a grant, or a renewal after a 401)
        # before the four queries go out together.
        devices = await self._after_pages("/v2/devices", deadline, stats, df)
        oses, patches, installs, avs, scans = await asyncio.gather(
            self._query("/v2/queries/operating-systems", deadline, stats, df),
            self._query("/v2/queries/os-patches", deadline, stats, df),
            self._query(
                "/v2/queries/os-patch-installs",
                deadline,
                stats,
                {**df, "installedAfter": int(now - self._options.install_lookback)},
            ),
            self._query("/v2/queries/antivirus-status", deadline, stats, df),
            self._scan_log(org, now, deadline, stats),
        )
        # Only now, with every read done, is the scan log kept (a failed scrape reads it again).
        scans.last = {k: v for k, v in scans.last.items() if k in {d["id"] for d in devices}}
        self._scans = scans
        return SourceData(devices=build_devices(devices, oses, patches, installs, avs, scans))

    async def _scan_log(self, org: int, now: float, deadline: Deadline, stats: RequestStats) -> ScanLog:
        """The patch scans since the last scrape, merged into a copy of the log so far."""
        old = self._scans if self._scans is not None and self._scans.org == org else None
        log_ = (
            ScanLog(org, now - self._options.scan_lookback)
            if old is None
            else ScanLog(org, old.since, old.newest_id, dict(old.last))
        )
        params: dict[str, str | int] = {
            "class": "DEVICE",
            "type": SCAN_TYPE,
            "status": SCAN_DONE,
            "df": f"org = {org}",
            "pageSize": max(10, min(self._options.page_size, 1000)),  # the API's bounds
        }
        if old is None or not old.newest_id:  # nothing seen yet: by time, not from id 0
            params["after"] = int(log_.since)
        else:
            params["newerThan"] = old.newest_id
        size = int(params["pageSize"])
        older: int | None = None
        for _ in range(_MAX_PAGES):
            query = dict(params) if older is None else {**params, "olderThan": older}
            body = await self._get_json("/v2/activities", deadline, stats, query)
            rows = body.get("activities") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise SourceError(SourceReason.MALFORMED, "/v2/activities: no 'activities' list")
            ids = [r["id"] for r in rows if isinstance(r, dict) and _is_int(r.get("id"))]
            if len(ids) != len(rows):
                raise SourceError(SourceReason.MALFORMED, "/v2/activities: an entry without a numeric id")
            for row in rows:
                # Filtered again here: the status filter's exact matching is undocumented.
                device, at = row.get("deviceId"), _epoch(row.get("activityTime"))
                if _word(row.get("statusCode")) == _word(SCAN_DONE) and _is_int(device) and at is not None:
                    log_.last[device] = max(at, log_.last.get(device, 0.0))
            if ids:
                log_.newest_id = max(log_.newest_id, *ids)
            if len(rows) < size:
                return log_
            older = min(ids)
        raise SourceError(SourceReason.MALFORMED, f"/v2/activities: more than {_MAX_PAGES} pages")


class _CursorGone(Exception):
    pass


def build_devices(
    devices: list[dict[str, Any]],
    oses: list[dict[str, Any]],
    patches: list[dict[str, Any]],
    installs: list[dict[str, Any]],
    avs: list[dict[str, Any]],
    scans: ScanLog | None = None,
) -> list[DeviceRecord]:
    """Join the lists on device id into records (pure: tested without HTTP)."""
    os_by = {r.get("deviceId"): r for r in oses}
    av_by = {r.get("deviceId"): r for r in avs}
    updates: dict[object, list[Update]] = defaultdict(list)
    for row in patches:
        status = _word(row.get("status"))
        if status in IGNORED_STATUSES:
            continue
        detected = _epoch(row.get("timestamp"))
        updates[row.get("deviceId")].append(
            Update(
                classification=TYPES.get(_word_key(row.get("type")), Classification.OTHER),
                severity=SEVERITIES.get(_word(row.get("severity")), Severity.UNKNOWN),
                failed=status == "FAILED",
                detected=detected,
            )
        )
    attempts: dict[object, list[InstallAttempt]] = defaultdict(list)
    for row in installs:
        at = _epoch(row.get("installedAt")) or _epoch(row.get("timestamp"))
        if at is None:
            continue
        attempts[row.get("deviceId")].append(
            InstallAttempt(
                classification=TYPES.get(_word_key(row.get("type")), Classification.OTHER),
                at=at,
                ok=_word(row.get("status")) == "INSTALLED",
            )
        )
    out = []
    for d in devices:
        did = d.get("id")
        family, role = node_kind(d.get("nodeClass"))
        os_row = os_by.get(did, {})
        last_boot = _epoch(os_row.get("lastBootTime"))
        reboot = os_row.get("needsReboot") is True
        mine = sorted(attempts.get(did, []), key=lambda a: a.at)
        # NinjaOne says a reboot is needed, not since when: the first install after the
        # last boot is when it started waiting.
        since = next((a.at for a in mine if a.ok and (last_boot is None or a.at > last_boot)), None)
        name = d.get("displayName") or d.get("systemName") or f"device-{did}"
        out.append(
            DeviceRecord(
                id=str(did),
                name=str(name),
                os_family=family,
                role=role,
                os_name=str(os_row.get("name") or ""),
                os_version=str(os_row.get("buildNumber") or ""),
                last_contact=_epoch(d.get("lastContact")),
                last_scan=scans.last.get(did) if scans and isinstance(did, int) else None,
                no_scan_since=scans.since if scans and did not in scans.last else None,
                last_boot=last_boot,
                reboot_pending=reboot,
                reboot_pending_since=since if reboot else None,
                updates=tuple(updates.get(did, [])),
                installs=tuple(mine),
                antivirus=_antivirus(av_by.get(did)),
            )
        )
    return out


def _word_key(raw: object) -> str:
    """``security_updates`` / ``Security Updates`` -> ``SECURITY_UPDATES``."""
    return _key_of(raw) if isinstance(raw, str) else ""


@functools.lru_cache(maxsize=1024)
def _key_of(raw: str) -> str:
    return "_".join(raw.upper().replace("-", " ").replace("_", " ").split())


def _antivirus(row: dict[str, Any] | None) -> Antivirus | None:
    if row is None:
        return None
    state = _word(row.get("productState"))
    definitions = _word(row.get("definitionStatus"))
    enabled = True if state == "ON" else False if state in ("OFF", "SNOOZED", "EXPIRED") else None
    current = True if definitions == "UPTODATE" else False if definitions == "OUTOFDATE" else None
    # NinjaOne's product state covers real-time protection; it gives no signature date.
    return Antivirus(enabled=enabled, realtime=None, signatures_current=current)
