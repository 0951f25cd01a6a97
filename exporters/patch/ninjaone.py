"""NinjaOne public API v2 client: one organisation's devices and their patch state.

Per scrape (``df=org = <id>`` on every call)::

    POST /ws/oauth/token                  client credentials, scope "monitoring" (cached)
    GET  /v2/organizations                name -> id, once (paged by ``after``)
    GET  /v2/devices                      paged by ``after`` = last id until a short page
    GET  /v2/queries/operating-systems    OS name/build, lastBootTime, needsReboot
    GET  /v2/queries/os-patches           pending, approved, failed, rejected updates
    GET  /v2/queries/os-patch-installs    install attempts since now - install_lookback
    GET  /v2/queries/antivirus-status     productState, definitionStatus

Queries page with ``cursor=<name>`` until ``results`` is empty; a cursor the server no
longer knows (4xx on a cursor page) restarts that query from its first page, a bounded
number of times. A 429 waits for ``Retry-After`` when the deadline allows; a 5xx is retried
once; a 401 gets a new token once. The token and the client secret never reach a log line
or an error message. The API client needs read access (scope ``monitoring``) only.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from mspwatch.common.secrets import Secret
from mspwatch.exporters.core.deadline import Deadline

from .records import (
    Antivirus,
    Classification,
    DeviceRecord,
    InstallAttempt,
    OsFamily,
    RequestStats,
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


def _epoch(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        return None
    return float(raw)


def _word(raw: object) -> str:
    """Compare enum values without case and separators: ``Out-of-Date`` == ``OUT_OF_DATE``."""
    return "".join(ch for ch in raw.upper() if ch.isalnum()) if isinstance(raw, str) else ""


@dataclass(frozen=True)
class NinjaOptions:
    page_size: int = 1000
    request_timeout: float = 10.0
    install_lookback: float = 35 * 86400.0
    max_cursor_restarts: int = 2
    scope: str = "monitoring"


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
        self._client_id = client_id
        self._secret = client_secret
        self._options = options
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            verify=verify,
            headers={"accept": "application/json", "user-agent": "mspwatch"},
            trust_env=False,
            follow_redirects=False,
            transport=transport,
        )
        self._token: tuple[str, float] | None = None  # (token, monotonic expiry)
        self._token_lock = asyncio.Lock()
        self._org: tuple[int, float] | None = None  # (id, monotonic time looked up)

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- HTTP (to move onto exporters/core/http.py when it lands) -----------------------

    async def _send(
        self,
        method: str,
        path: str,
        deadline: Deadline,
        stats: RequestStats,
        *,
        params: Mapping[str, str | int] | None = None,
        form: Mapping[str, str] | None = None,
        bearer: str | None = None,
    ) -> httpx.Response:
        remaining = deadline.remaining()
        if remaining <= 0.01:
            raise SourceError(SourceReason.DEADLINE, f"scrape deadline reached before {path}")
        timeout = min(self._options.request_timeout, remaining)
        headers = {"authorization": f"Bearer {bearer}"} if bearer else None
        stats.requests += 1
        try:
            async with asyncio.timeout(timeout):
                return await self._http.request(
                    method, path, params=params, data=form, headers=headers, timeout=timeout
                )
        except (TimeoutError, httpx.TimeoutException):
            reason = SourceReason.DEADLINE if deadline.remaining() <= 0.01 else SourceReason.TIMEOUT
            raise SourceError(reason, f"no answer to {path} within {timeout:.1f}s") from None
        except httpx.ConnectError as exc:
            if _is_tls_error(exc):
                raise SourceError(SourceReason.TLS, "TLS handshake failed") from None
            raise SourceError(SourceReason.UNREACHABLE, f"cannot connect for {path}") from None
        except httpx.TransportError as exc:
            raise SourceError(SourceReason.UNREACHABLE, f"{type(exc).__name__} on {path}") from None

    async def _retrying(
        self,
        method: str,
        path: str,
        deadline: Deadline,
        stats: RequestStats,
        **kw: Any,
    ) -> httpx.Response:
        """One call; a 429 waits out ``Retry-After`` within the deadline, a 5xx is retried once."""
        throttled = server_errors = 0
        while True:
            resp = await self._send(method, path, deadline, stats, **kw)
            status = resp.status_code
            if status == 429:
                wait = _retry_after(resp)
                throttled += 1
                if throttled <= 3 and wait < deadline.remaining() - 0.05:
                    log.info("throttled", extra={"source": self.name, "path": path, "retry_after": wait})
                    stats.retries += 1
                    await asyncio.sleep(wait)
                    continue
                raise SourceError(SourceReason.THROTTLED, f"HTTP 429 on {path}, Retry-After {wait:g}s")
            if status >= 500:
                server_errors += 1
                wait = min(_retry_after(resp, default=0.2), 5.0)
                if server_errors == 1 and wait < deadline.remaining() - 0.05:
                    stats.retries += 1
                    await asyncio.sleep(wait)
                    continue
                raise SourceError(SourceReason.SERVER_ERROR, f"HTTP {status} on {path}")
            return resp

    async def _token_value(self, deadline: Deadline, stats: RequestStats) -> str:
        async with self._token_lock:
            if self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            form = {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._secret.reveal(),
                "scope": self._options.scope,
            }
            resp = await self._retrying("POST", "/ws/oauth/token", deadline, stats, form=form)
            if resp.status_code in (400, 401, 403):
                raise SourceError(
                    SourceReason.AUTH,
                    f"token endpoint refused the client credentials: "
                    f"HTTP {resp.status_code} {_oauth_error(resp)}".strip(),
                )
            if resp.status_code != 200:
                raise SourceError(SourceReason.HTTP_ERROR, f"token endpoint answered HTTP {resp.status_code}")
            body = _json(resp, "/ws/oauth/token")
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise SourceError(SourceReason.MALFORMED, "token answer without access_token")
            raw = body.get("expires_in")
            lifetime = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 3600.0
            self._token = (token, time.monotonic() + max(lifetime - _TOKEN_SLACK, 1.0))
            return token

    async def _get(
        self, path: str, deadline: Deadline, stats: RequestStats, params: Mapping[str, str | int]
    ) -> httpx.Response:
        """GET with a valid token; a 401 (expired or revoked early) gets a new token, once."""
        for attempt in range(2):
            token = await self._token_value(deadline, stats)
            resp = await self._retrying("GET", path, deadline, stats, params=params, bearer=token)
            if resp.status_code == 401 and attempt == 0:
                if self._token is not None and self._token[0] == token:
                    self._token = None
                stats.retries += 1
                continue
            return resp
        return resp

    async def _get_json(
        self, path: str, deadline: Deadline, stats: RequestStats, params: Mapping[str, str | int]
    ) -> Any:
        resp = await self._get(path, deadline, stats, params)
        _raise_for_status(resp, path)
        return _json(resp, path)

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
                stats.cursor_restarts += 1
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
            resp = await self._get(path, deadline, stats, query)
            if page > 0 and resp.status_code in (400, 404, 410):
                raise _CursorGone()
            _raise_for_status(resp, path)
            body = _json(resp, path)
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
        org = await self._org_id(deadline, stats)  # settles the token before the fan-out
        df = {"df": f"org = {org}"}
        devices, oses, patches, installs, avs = await asyncio.gather(
            self._after_pages("/v2/devices", deadline, stats, df),
            self._query("/v2/queries/operating-systems", deadline, stats, df),
            self._query("/v2/queries/os-patches", deadline, stats, df),
            self._query(
                "/v2/queries/os-patch-installs",
                deadline,
                stats,
                {**df, "installedAfter": int(now - self._options.install_lookback)},
            ),
            self._query("/v2/queries/antivirus-status", deadline, stats, df),
        )
        return SourceData(devices=build_devices(devices, oses, patches, installs, avs))


class _CursorGone(Exception):
    pass


def build_devices(
    devices: list[dict[str, Any]],
    oses: list[dict[str, Any]],
    patches: list[dict[str, Any]],
    installs: list[dict[str, Any]],
    avs: list[dict[str, Any]],
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
                last_scan=None,  # these endpoints carry no patch-scan time: not judged
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
    if not isinstance(raw, str):
        return ""
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


def _raise_for_status(resp: httpx.Response, path: str) -> None:
    status = resp.status_code
    if status < 400:
        return
    if status == 401:
        raise SourceError(SourceReason.AUTH, f"HTTP 401 on {path} with a fresh token")
    if status == 403:
        raise SourceError(SourceReason.FORBIDDEN, f"HTTP 403 on {path}: the API client lacks access")
    raise SourceError(SourceReason.HTTP_ERROR, f"HTTP {status} on {path}")


def _json(resp: httpx.Response, path: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise SourceError(SourceReason.MALFORMED, f"{path}: answer is not JSON") from None


def _oauth_error(resp: httpx.Response) -> str:
    """The OAuth ``error`` code only (``invalid_client``): descriptions may echo input."""
    try:
        body = resp.json()
    except ValueError:
        return ""
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) < 40 else ""


def _retry_after(resp: httpx.Response, default: float = 1.0) -> float:
    raw = resp.headers.get("retry-after", "")
    try:
        return min(max(float(raw), 0.0), 120.0)
    except ValueError:
        return default


def _is_tls_error(exc: BaseException) -> bool:
    cur: BaseException | None = exc
    for _ in range(10):
        if cur is None:
            break
        if isinstance(cur, ssl.SSLError):
            return True
        cur = cur.__cause__ or cur.__context__
    return "CERTIFICATE" in str(exc).upper() or "SSL" in str(exc)
