"""The simulated NinjaOne public API v2 as a plain ASGI application.

API routes (all but the token endpoint need a bearer token)::

    POST /ws/oauth/token                 grant_type=client_credentials, client_id,
                                         client_secret, scope (monitoring management control)
    GET  /v2/organizations               pageSize, after (bare array)
    GET  /v2/devices                     df, pageSize, after (bare array, by id)
    GET  /v2/queries/operating-systems   df, pageSize, cursor
    GET  /v2/queries/os-patches          df, status, type, severity, pageSize, cursor
    GET  /v2/queries/os-patch-installs   df, status, installedAfter, installedBefore, pageSize, cursor
    GET  /v2/queries/antivirus-status    df, pageSize, cursor
    GET  /v2/activities                  class, type, status, df, after, before (epoch s),
                                         newerThan, olderThan, pageSize: newest first

Queries answer ``{"cursor": {"name", "offset", "count", "expires"}, "results": [..]}``;
the next page is ``?cursor=<name>&pageSize=N`` until ``results`` is empty. An unknown or
expired cursor answers 400 (the real API does not document this answer: unverified).

Admin routes for tests and demos (no auth; bind to loopback): those of
:mod:`mspwatch.simulators.admin`.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from mspwatch.simulators.admin import AdminError, SimState, admin_answer
from mspwatch.simulators.asgi import Receive, Scope, Send, read_request, respond
from mspwatch.simulators.veeam.scenario import resolve_when

from .scenario import DeviceSpec, FaultSpec, PatchSpec, Scenario, load_scenario

QUERY_PATHS = (
    "/v2/queries/operating-systems",
    "/v2/queries/os-patches",
    "/v2/queries/os-patch-installs",
    "/v2/queries/antivirus-status",
)
_DF = re.compile(r"^\s*org\s*(?:=\s*(\d+)|in\s*\(([\d\s,]+)\))\s*$", re.I)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Patch:
    id: int
    spec: PatchSpec
    detected: float
    attempts: list[tuple[float, bool]]  # (time, ok), oldest first


@dataclass
class Device:
    id: int
    org_id: int
    name: str
    spec: DeviceSpec
    last_contact: float | None  # None: "now", always the simulated clock (a live agent)
    last_boot: float
    patches: list[Patch]


@dataclass(frozen=True)
class Activity:
    id: int
    at: float
    device: Device
    status_code: str  # PATCH_MANAGEMENT_SCAN_STARTED | PATCH_MANAGEMENT_SCAN_COMPLETED


@dataclass
class Cursor:
    rows: list[dict[str, Any]]
    offset: int
    expires: float


@dataclass
class Fault:
    spec: FaultSpec
    seen: int = 0
    fired: int = 0


class BadParam(ValueError):
    pass


@dataclass
class State(SimState):
    scenario: Scenario = field(init=False)
    orgs: list[tuple[int, str]] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)  # by id, oldest first
    org_activities: dict[int, list[Activity]] = field(default_factory=dict)  # the same, per org
    faults: list[Fault] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (sim clock)
    cursors: dict[str, Cursor] = field(default_factory=dict)

    def load(self) -> None:
        sc = load_scenario(self.scenario_file)
        self.scenario = sc
        clock = self.start_clock(sc.clock)
        self.orgs, self.devices = [], []
        device_id = patch_id = 0
        for oi, org in enumerate(sc.organizations, start=1):
            self.orgs.append((oi, org.name))
            for spec in org.devices:
                names = (
                    [spec.name]
                    if spec.count is None
                    else [f"{spec.name}-{i:03d}" for i in range(1, spec.count + 1)]
                )
                for name in names:
                    device_id += 1
                    patches = []
                    for p in spec.patches:
                        patch_id += 1
                        attempts = sorted((resolve_when(a.at, clock), a.ok) for a in p.attempts)
                        patches.append(Patch(patch_id, p, resolve_when(p.detected, clock), attempts))
                    self.devices.append(
                        Device(
                            id=device_id,
                            org_id=oi,
                            name=name,
                            spec=spec,
                            last_contact=None
                            if spec.last_contact == "now"
                            else resolve_when(spec.last_contact, clock),
                            last_boot=resolve_when(spec.last_boot, clock),
                            patches=patches,
                        )
                    )
        scans: list[tuple[float, int, str, Device]] = []
        for d in self.devices:
            if d.spec.last_scan is None:
                continue
            at = resolve_when(d.spec.last_scan, clock)
            oldest = at - d.spec.scan_history
            while at >= oldest:  # a scan starts two minutes before it completes
                scans.append((at - 120, d.id, "PATCH_MANAGEMENT_SCAN_STARTED", d))
                scans.append((at, d.id, "PATCH_MANAGEMENT_SCAN_COMPLETED", d))
                if d.spec.scan_every <= 0:
                    break
                at -= d.spec.scan_every
        scans.sort(key=lambda s: (s[0], s[1], s[2]))
        self.activities = [Activity(i, at, d, code) for i, (at, _, code, d) in enumerate(scans, start=1)]
        self.org_activities = {}
        for a in self.activities:
            self.org_activities.setdefault(a.device.org_id, []).append(a)
        self.faults = [Fault(f) for f in sc.faults]
        self.tokens.clear()
        self.cursors.clear()

    def add_fault(self, spec: dict[str, Any]) -> None:
        self.faults.append(Fault(FaultSpec.model_validate(spec)))

    def revoke(self) -> None:
        self.tokens.clear()

    # --- what the device looks like at the simulated clock ---------------------------

    def patch_state(self, p: Patch) -> tuple[str, float | None]:
        """("INSTALLED"|"FAILED"|spec status|"HIDDEN", time of the last attempt)."""
        now = self.now
        if p.detected > now:
            return "HIDDEN", None
        done = [(at, ok) for at, ok in p.attempts if at <= now]
        if any(ok for _, ok in done):
            return "INSTALLED", max(at for at, ok in done if ok)
        if done:
            return "FAILED", done[-1][0]
        return p.spec.status, None

    def needs_reboot(self, d: Device) -> bool:
        if d.spec.needs_reboot is not None:
            return d.spec.needs_reboot
        boot = min(d.last_boot, self.now)
        return any(at > boot for p in d.patches for at, ok in p.attempts if ok and at <= self.now)

    def contact(self, d: Device) -> float:
        return self.now if d.last_contact is None else min(d.last_contact, self.now)

    def offline(self, d: Device) -> bool:
        if d.spec.offline is not None:
            return d.spec.offline
        return self.now - self.contact(d) > 900


class NinjaOneSimulator:
    """ASGI app: the documented API over a :class:`State`."""

    def __init__(self, scenario_file: Path, clock: str | None = None) -> None:
        self.state = State(scenario_file, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_request(scope, receive, send)
        if raw is None:
            return
        query = {k: v[-1] for k, v in raw.query.items()}
        if raw.path.startswith("/admin/"):
            status, body, headers = self.admin(raw.method, raw.path, raw.body)
        else:
            status, body, headers = await self.api(raw.method, raw.path, query, raw.headers, raw.body)
            entry: dict[str, Any] = {"method": raw.method, "path": raw.path, "query": query, "status": status}
            self.state.requests.append(entry)
        await respond(send, status, body, "application/json", headers)

    # --- the API ---------------------------------------------------------------------

    async def api(
        self, method: str, path: str, q: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        st = self.state
        fault = self._fault(path, q)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            extra = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            if fault.expire_cursor:
                st.cursors.pop(q.get("cursor", ""), None)
            elif fault.body is not None:
                return fault.status, fault.body.encode(), extra
            else:
                return _error(fault.status, "Simulated fault", extra)
        if path == "/ws/oauth/token":
            if method != "POST":
                return _error(405, "Method Not Allowed")
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            return self.token(form)
        if method != "GET":
            return _error(405, "Method Not Allowed")
        auth = headers.get("authorization", "")
        expiry = st.tokens.get(auth[7:].strip()) if auth.lower().startswith("bearer ") else None
        if expiry is None or expiry <= st.now:
            return _error(401, "Unauthorized")
        try:
            if path == "/v2/organizations":
                rows = [
                    {"id": i, "name": n, "description": "", "nodeApprovalMode": "AUTOMATIC"}
                    for i, n in st.orgs
                ]
                return _json(200, _after_page(rows, q, self._page_size(q)))
            if path == "/v2/devices":
                orgs = _org_filter(q.get("df"))
                rows = [self.device(d) for d in st.devices if orgs is None or d.org_id in orgs]
                return _json(200, _after_page(rows, q, self._page_size(q)))
            if path in QUERY_PATHS:
                return self.query(path, q)
            if path == "/v2/activities":
                return _json(200, self.activities(q))
        except BadParam as exc:
            return _error(400, str(exc))
        return _error(404, "Not Found")

    def _fault(self, path: str, q: dict[str, str]) -> FaultSpec | None:
        for f in self.state.faults:
            if f.spec.path != path or f.fired >= f.spec.count:
                continue
            if f.spec.expire_cursor and "cursor" not in q:
                continue
            f.seen += 1
            if f.seen <= f.spec.skip:
                continue
            f.fired += 1
            return f.spec
        return None

    def _page_size(self, q: dict[str, str]) -> int:
        sc = self.state.scenario
        raw = q.get("pageSize", str(sc.default_page_size))
        if not raw.isdigit() or int(raw) < 1:
            raise BadParam("pageSize: want a whole number >= 1")
        return min(int(raw), sc.max_page_size)

    def token(self, form: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        st = self.state
        if form.get("grant_type") != "client_credentials":
            return _json(400, {"error": "unsupported_grant_type"})
        cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        if not secret or st.scenario.clients.get(cid) != secret:
            return _json(401, {"error": "invalid_client", "error_description": "Invalid client credentials"})
        scopes = form.get("scope", "").split()
        if not scopes or any(s not in st.scenario.scopes for s in scopes):
            return _json(400, {"error": "invalid_scope"})
        token = secrets.token_urlsafe(24)
        st.tokens[token] = st.now + st.scenario.token_lifetime
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(st.scenario.token_lifetime),
            "scope": " ".join(scopes),
        }
        return _json(200, body)

    def device(self, d: Device) -> dict[str, Any]:
        return {
            "id": d.id,
            "parentDeviceId": None,
            "organizationId": d.org_id,
            "locationId": d.org_id * 10,
            "nodeClass": d.spec.class_,
            "nodeRoleId": 1,
            "rolePolicyId": 1,
            "approvalStatus": "APPROVED",
            "offline": self.state.offline(d),
            "displayName": d.name,
            "systemName": d.name.upper(),
            "dnsName": f"{d.name}.corp.local",
            "created": d.last_boot - 90 * 86400,
            "lastContact": self.state.contact(d),
            "lastUpdate": self.state.contact(d),
        }

    def activities(self, q: dict[str, str]) -> dict[str, Any]:
        """The activity log, newest first, filtered as the API documents its parameters."""
        st = self.state
        raw = q.get("pageSize", "200")
        if not raw.isdigit():
            raise BadParam("pageSize: want a whole number")
        size = max(10, min(int(raw), 1000))  # the API's documented bounds
        orgs = _org_filter(q.get("df"))
        after = _epoch(q.get("after"), "after")
        before = _epoch(q.get("before"), "before")
        newer = _int_param(q, "newerThan")
        older = _int_param(q, "olderThan")
        codes = {c.strip().upper() for c in q.get("status", "").split(",") if c.strip()}
        kind = q.get("type", "").upper()
        wanted_class = q.get("class", "ALL").upper()
        pool = st.activities if orgs is None or len(orgs) != 1 else st.org_activities.get(min(orgs), [])
        ids = [a.id for a in pool]
        # ids grow with time: newerThan/olderThan and the clock cut the list without a scan
        lo = bisect.bisect_right(ids, newer) if newer is not None else 0
        hi = bisect.bisect_left(ids, older) if older is not None else len(pool)
        times = [a.at for a in st.activities]
        last_visible = bisect.bisect_right(times, st.now)
        out = []
        for a in reversed(pool[lo:hi]):
            if a.at > st.now:
                continue
            if wanted_class not in ("ALL", "DEVICE") or (kind and kind != "PATCH_MANAGEMENT"):
                break
            if (
                (orgs is not None and a.device.org_id not in orgs)
                or (after is not None and a.at < after)
                or (before is not None and a.at >= before)
                or (codes and a.status_code not in codes)
            ):
                continue
            out.append(self.activity(a))
            if len(out) == size:
                break
        return {"lastActivityId": last_visible, "activities": out}

    def activity(self, a: Activity) -> dict[str, Any]:
        done = a.status_code.endswith("COMPLETED")
        return {
            "id": a.id,
            "activityTime": a.at,
            "deviceId": a.device.id,
            "severity": "NONE",
            "priority": "NONE",
            "seriesUid": f"00000000-0000-4000-8000-{a.device.id:012d}",
            "activityType": "PATCH_MANAGEMENT",
            "statusCode": a.status_code,
            "status": "Patch scan completed" if done else "Patch scan started",
            "activityResult": "SUCCESS" if done else "UNSPECIFIED",
            "sourceName": "OS patch management",
            "subject": "",
            "message": f"{a.device.name}: patch scan {'completed' if done else 'started'}",
            "type": "Patch Management",
        }

    def query(self, path: str, q: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        st = self.state
        size = self._page_size(q)
        name = q.get("cursor")
        if name:
            cursor = st.cursors.get(name)
            if cursor is None or cursor.expires <= st.now:
                st.cursors.pop(name, None)
                return _error(400, "Invalid or expired cursor")
        else:
            cursor = Cursor(self.rows(path, q), 0, st.now + st.scenario.cursor_lifetime)
            name = secrets.token_hex(8)
            st.cursors[name] = cursor
        chunk = cursor.rows[cursor.offset : cursor.offset + size]
        doc = {
            "cursor": {"name": name, "offset": cursor.offset, "count": len(chunk), "expires": cursor.expires},
            "results": chunk,
        }
        cursor.offset += len(chunk)
        if not chunk:
            st.cursors.pop(name, None)
        return _json(200, doc)

    def rows(self, path: str, q: dict[str, str]) -> list[dict[str, Any]]:
        st = self.state
        orgs = _org_filter(q.get("df"))
        devices = [d for d in st.devices if orgs is None or d.org_id in orgs]
        now = st.now
        out: list[dict[str, Any]] = []
        if path == "/v2/queries/operating-systems":
            for d in devices:
                out.append(
                    {
                        "deviceId": d.id,
                        "name": d.spec.os,
                        "manufacturer": "Microsoft Corporation" if "windows" in d.spec.os.lower() else "",
                        "architecture": "64-bit",
                        "buildNumber": d.spec.build,
                        "lastBootTime": min(d.last_boot, now),
                        "needsReboot": st.needs_reboot(d),
                        "timestamp": st.contact(d),
                    }
                )
        elif path == "/v2/queries/antivirus-status":
            for d in devices:
                if d.spec.av is not None:
                    av = d.spec.av
                    out.append(
                        {
                            "deviceId": d.id,
                            "productName": av.product,
                            "productState": av.state,
                            "definitionStatus": av.definitions,
                            "version": av.version,
                            "timestamp": st.contact(d),
                        }
                    )
        elif path == "/v2/queries/os-patches":
            want = {k: q[k].upper() for k in ("status", "type", "severity") if q.get(k)}
            for d in devices:
                for p in d.patches:
                    status, _ = st.patch_state(p)
                    if status in ("HIDDEN", "INSTALLED"):
                        continue
                    row = _patch_row(p, d, status)
                    row["timestamp"] = p.detected
                    if all(str(row.get(k) or "").upper() == v for k, v in want.items()):
                        out.append(row)
        else:  # os-patch-installs: every attempt in the window
            after = _epoch(q.get("installedAfter"), "installedAfter")
            before = _epoch(q.get("installedBefore"), "installedBefore")
            want_status = (q.get("status") or "").upper()
            for d in devices:
                for p in d.patches:
                    for at, ok in p.attempts:
                        status = "INSTALLED" if ok else "FAILED"
                        if (
                            at > now
                            or (after is not None and at < after)
                            or (before is not None and at >= before)
                        ):
                            continue
                        if want_status and status != want_status:
                            continue
                        row = _patch_row(p, d, status)
                        row["installedAt"] = at
                        row["timestamp"] = at
                        out.append(row)
        return out

    # --- admin -----------------------------------------------------------------------

    def admin(self, method: str, path: str, raw: bytes) -> tuple[int, bytes, dict[str, str]]:
        try:
            return _json(200, admin_answer("ninjaone", self.state, method, path, raw, iso=iso))
        except AdminError as exc:
            return _error(exc.status, exc.message)


def _patch_row(p: Patch, d: Device, status: str) -> dict[str, Any]:
    title = p.spec.name or f"{p.spec.kb} {p.spec.type.replace('_', ' ').title()}"
    return {
        "id": f"{p.id}",
        "name": title,
        "kbNumber": p.spec.kb,
        "type": p.spec.type,
        "severity": p.spec.severity,
        "status": status,
        "deviceId": d.id,
    }


def _org_filter(df: str | None) -> set[int] | None:
    if not df:
        return None
    m = _DF.match(df)
    if not m:
        raise BadParam(f"df: unsupported device filter {df!r}")
    if m.group(1):
        return {int(m.group(1))}
    return {int(x) for x in m.group(2).replace(" ", "").split(",") if x}


def _after_page(rows: list[dict[str, Any]], q: dict[str, str], size: int) -> list[dict[str, Any]]:
    raw = q.get("after")
    if raw is not None and not raw.isdigit():
        raise BadParam("after: want an id")
    after = int(raw) if raw else 0
    return [r for r in rows if int(r["id"]) > after][:size]


def _int_param(q: dict[str, str], name: str) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise BadParam(f"{name}: want an activity id")
    return int(raw)


def _epoch(raw: str | None, name: str) -> float | None:
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadParam(f"{name}: want epoch seconds or ISO 8601") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _json(status: int, doc: Any, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps(doc).encode(), headers or {}


def _error(
    status: int, message: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    return _json(status, {"resultCode": str(status), "errorMessage": message}, headers)
