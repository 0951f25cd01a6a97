"""The simulated Veeam B&R REST API v1 as a plain ASGI application.

API routes (each needs ``x-api-version``; all but the token endpoint need a bearer token)::

    POST /api/oauth2/token                               password and refresh_token grants
    GET  /api/v1/jobs/states                             skip, limit, nameFilter, typeFilter
    GET  /api/v1/sessions                                skip, limit, jobIdFilter, resultFilter
                                                         (repeatable: Success, Warning, ...),
                                                         createdAfterFilter, createdBeforeFilter,
                                                         typeFilter, stateFilter, nameFilter,
                                                         orderColumn, orderAsc
    GET  /api/v1/sessions/{id}
    GET  /api/v1/sessions/{id}/taskSessions
    GET  /api/v1/backupInfrastructure/repositories/states

Admin routes for tests and demos (no auth; bind to loopback): the shared ones of
:mod:`mspwatch.simulators.admin`, plus::

    POST /admin/jobs/delete           {"name": job name}

The request log also holds ``received``, arrival on the simulator's monotonic clock, to
measure retry gaps.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from mspwatch.simulators.admin import AdminError, SimState, admin_answer
from mspwatch.simulators.asgi import Receive, Scope, Send, read_request, respond

from .scenario import (
    FaultSpec,
    JobSpec,
    Scenario,
    SessionSpec,
    load_scenario,
    resolve_when,
    stable_id,
)

GIB = 1024**3


def iso(ts: float) -> str:
    """How VBR writes times: local offset, fractional seconds (here UTC, 7 digits)."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0+00:00"


@dataclass
class Session:
    id: str
    job_id: str
    name: str
    type: str
    start: float
    end: float | None
    result: str
    message: str
    transferred: float
    canceled: bool
    usn: int

    def done(self, now: float) -> bool:
        return self.end is not None and self.end <= now

    def result_at(self, now: float) -> str:
        return self.result if self.done(now) else "None"

    def state_at(self, now: float) -> str:
        return "Stopped" if self.done(now) else "Working"

    def model(self, now: float) -> dict[str, Any]:
        done = self.done(now)
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "jobId": self.job_id,
            "sessionType": self.type,
            "creationTime": iso(self.start),
            "state": "Stopped" if done else "Working",
            "usn": self.usn,
            "progressPercent": 100 if done else self.progress(now),
            "result": {
                "result": self.result if done else "None",
                "message": self.message if done else "",
                "isCanceled": self.canceled if done else False,
            },
            "resourceId": self.job_id,
        }
        if done:
            assert self.end is not None
            out["endTime"] = iso(self.end)
        return out

    def progress(self, now: float) -> int:
        if self.end is None:
            return 42
        return max(0, min(99, int(100 * (now - self.start) / max(self.end - self.start, 1))))


@dataclass
class Job:
    spec: JobSpec
    id: str
    next_run: float | None


@dataclass
class Fault:
    spec: FaultSpec
    seen: int = 0
    fired: int = 0


@dataclass
class State(SimState):
    scenario: Scenario = field(init=False)
    jobs: list[Job] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    access_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    refresh_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    spent_refresh_tokens: set[str] = field(default_factory=set)

    def load(self) -> None:
        sc = load_scenario(self.scenario_file)
        self.scenario = sc
        clock = self.start_clock(sc.clock)
        self.jobs, self.sessions = [], []
        usn = 1000
        for spec in sc.jobs:
            job = Job(
                spec=spec,
                id=spec.id or stable_id("job", spec.name),
                next_run=resolve_when(spec.next_run, clock) if spec.next_run else None,
            )
            self.jobs.append(job)
            specs = list(spec.sessions)
            if spec.history is not None:
                h = spec.history
                first = resolve_when(h.start, clock)
                ahead = 0
                if h.until is not None:
                    ahead = int((resolve_when(h.until, clock) - first) // h.every)
                specs += [
                    SessionSpec(
                        start=datetime.fromtimestamp(first - i * h.every, UTC).isoformat(),
                        duration=h.duration,
                        result=h.result,
                        transferred=h.transferred,
                    )
                    for i in range(-ahead, h.count)
                ]
            for s in specs:
                usn += 1
                self.sessions.append(self._session(s, job.id, spec.name, spec.session_type, usn, clock))
        for s in sc.sessions:
            usn += 1
            name = s.name or "Session"
            self.sessions.append(self._session(s, stable_id("job", name), name, "BackupJob", usn, clock))
        self.faults = [Fault(f) for f in sc.faults]
        self.access_tokens.clear()
        self.refresh_tokens.clear()
        self.spent_refresh_tokens.clear()

    def add_fault(self, spec: dict[str, Any]) -> None:
        self.faults.append(Fault(FaultSpec.model_validate(spec)))

    def revoke(self) -> None:
        self.access_tokens.clear()
        self.refresh_tokens.clear()

    def _session(self, s: SessionSpec, job_id: str, name: str, stype: str, usn: int, clock: float) -> Session:
        start = resolve_when(s.start, clock)
        return Session(
            id=stable_id("session", job_id, start),
            job_id=job_id,
            name=s.name or name,
            type=s.type or stype,
            start=start,
            end=start + s.duration if s.duration is not None else None,
            result=s.result,
            message=s.message,
            transferred=s.transferred,
            canceled=s.canceled,
            usn=usn,
        )

    def visible_sessions(self) -> list[Session]:
        return [s for s in self.sessions if s.start <= self.now]

    def sessions_by_job(self) -> dict[str, list[Session]]:
        """Visible sessions per job id, newest first."""
        out: dict[str, list[Session]] = {}
        for s in sorted(self.visible_sessions(), key=lambda s: s.start, reverse=True):
            out.setdefault(s.job_id, []).append(s)
        return out

    def job_state(self, job: Job, by_job: dict[str, list[Session]]) -> dict[str, Any]:
        mine = by_job.get(job.id, [])
        running = any(s.end is None or s.end > self.now for s in mine)
        finished = [s for s in mine if s.end is not None and s.end <= self.now]
        status = "disabled" if job.spec.disabled else "running" if running else "inactive"
        if job.spec.last_result is not None:
            last_result = job.spec.last_result
        elif running or not finished:
            last_result = "None"  # never ran, or running: not a success
        else:
            last_result = finished[0].result
        repo = next((r for r in self.scenario.repositories if r.name == job.spec.repository), None)
        out: dict[str, Any] = {
            "id": job.id,
            "name": job.spec.name,
            "type": job.spec.type,
            "description": job.spec.description,
            "status": status,
            "lastResult": last_result,
            "workload": job.spec.workload,
            "objectsCount": job.spec.objects,
            "repositoryId": (repo.id or stable_id("repo", repo.name)) if repo else None,
            "repositoryName": job.spec.repository,
            "sessionId": mine[0].id if mine else None,
        }
        if mine:
            out["lastRun"] = iso(mine[0].start)
        if job.next_run is not None and not job.spec.disabled:
            out["nextRun"] = iso(job.next_run)
        return out


class VeeamSimulator:
    """ASGI app: the documented API over a :class:`State`."""

    def __init__(self, scenario_file: Path, clock: str | None = None) -> None:
        self.state = State(scenario_file, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_request(scope, receive, send)
        if raw is None:
            return
        req = Request(
            method=raw.method,
            path=raw.path,
            query={k: v[-1] for k, v in raw.query.items()},
            headers=raw.headers,
            body=raw.body,
            arrays=raw.query,
        )
        resp = await self.handle(req)
        await respond(send, resp.status, resp.body, resp.content_type, resp.headers)

    async def handle(self, req: Request) -> Response:
        if req.path.startswith("/admin/"):
            return self.admin(req)
        received = time.monotonic()  # before any fault delay: when the client sent it
        resp = await self.api(req)
        entry: dict[str, Any] = {
            "method": req.method,
            "path": req.path,
            # a repeated parameter (an API array) is logged as a list
            "query": {k: v if len(v) > 1 else v[0] for k, v in req.arrays.items()},
            "status": resp.status,
            "received": received,
        }
        if req.path == "/api/oauth2/token":
            entry["grant_type"] = req.form().get("grant_type")
        self.state.requests.append(entry)
        return resp

    # --- the API -------------------------------------------------------------------------

    async def api(self, req: Request) -> Response:
        st = self.state
        fault = self._fault(req)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            headers = {}
            if fault.retry_after is not None:
                headers["retry-after"] = f"{fault.retry_after:g}"
            if fault.body is not None:
                return Response(fault.status, fault.body.encode(), headers=headers)
            if fault.status >= 400:
                code = "TooManyRequests" if fault.status == 429 else "InternalServerError"
                return error(fault.status, code, "Simulated fault", headers)
        version = req.headers.get("x-api-version", "")
        if not version:
            return error(400, "BadRequest", "The x-api-version header is required.")
        if not re.match(st.scenario.api_version_pattern, version):
            return error(400, "BadRequest", f"Unsupported API version {version}.")
        if req.path == "/api/oauth2/token":
            if req.method != "POST":
                return error(405, "MethodNotAllowed", "Use POST.")
            return self.token(req.form())
        if req.method != "GET":
            return error(405, "MethodNotAllowed", "Only GET is simulated.")
        user = self._bearer(req)
        if user is None:
            return error(401, "Unauthorized", "Authorization token is missing, invalid or expired.")
        parts = req.path.rstrip("/").split("/")
        try:
            if req.path == "/api/v1/jobs/states":
                return self.jobs_states(req)
            if req.path == "/api/v1/sessions":
                return self.sessions(req)
            if req.path == "/api/v1/backupInfrastructure/repositories/states":
                return self.repositories(req)
            if len(parts) == 5 and parts[:4] == ["", "api", "v1", "sessions"]:
                return self.session(parts[4])
            if len(parts) == 6 and parts[:4] == ["", "api", "v1", "sessions"] and parts[5] == "taskSessions":
                return self.task_sessions(req, parts[4])
        except BadParam as exc:
            return error(400, "BadRequest", str(exc))
        return error(404, "NotFound", f"No route for {req.path}.")

    def _fault(self, req: Request) -> FaultSpec | None:
        for f in self.state.faults:
            if f.spec.path != req.path or (f.spec.method and f.spec.method != req.method):
                continue
            if f.fired >= f.spec.count:
                continue
            f.seen += 1
            if f.seen <= f.spec.skip:
                continue
            f.fired += 1
            return f.spec
        return None

    def _bearer(self, req: Request) -> str | None:
        auth = req.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        entry = self.state.access_tokens.get(auth[7:].strip())
        if entry is None or entry[1] <= self.state.now:
            return None
        return entry[0]

    def token(self, form: dict[str, str]) -> Response:
        st = self.state
        grant = form.get("grant_type")
        if grant == "password":
            user, password = form.get("username", ""), form.get("password", "")
            if st.scenario.users.get(user) != password or not password:
                return error(401, "Unauthorized", "Invalid username or password.")
        elif grant == "refresh_token":
            rt = form.get("refresh_token", "")
            if rt in st.spent_refresh_tokens:
                return error(400, "BadRequest", "The refresh token has already been used.")
            entry = st.refresh_tokens.pop(rt, None)
            if entry is None or entry[1] <= st.now:
                return error(400, "BadRequest", "The refresh token is invalid or expired.")
            st.spent_refresh_tokens.add(rt)
            user = entry[0]
        else:
            return error(400, "BadRequest", "Unsupported grant_type.")
        access = secrets.token_urlsafe(24)
        refresh = secrets.token_urlsafe(24)
        lifetime = st.scenario.token_lifetime
        st.access_tokens[access] = (user, st.now + lifetime)
        st.refresh_tokens[refresh] = (user, st.now + st.scenario.refresh_token_lifetime)
        return json_response(
            200,
            {
                "access_token": access,
                "token_type": "bearer",
                "refresh_token": refresh,
                "expires_in": int(lifetime),
                ".issued": iso(st.now),
                ".expires": iso(st.now + lifetime),
                "username": user,
            },
        )

    def jobs_states(self, req: Request) -> Response:
        by_job = self.state.sessions_by_job()
        items = [self.state.job_state(j, by_job) for j in self.state.jobs]
        name = req.query.get("nameFilter")
        if name:
            items = [i for i in items if fnmatch.fnmatchcase(i["name"].lower(), name.lower())]
        kind = req.query.get("typeFilter")
        if kind:
            items = [i for i in items if i["type"].lower() == kind.lower()]
        items.sort(key=lambda i: i["name"])
        return self.page(req, items)

    def sessions(self, req: Request) -> Response:
        st = self.state
        q = req.query
        found = st.visible_sessions()
        if q.get("jobIdFilter"):
            found = [s for s in found if s.job_id == q["jobIdFilter"]]
        if q.get("createdAfterFilter"):
            after = parse_time_param(q["createdAfterFilter"], "createdAfterFilter")
            found = [s for s in found if s.start >= after]
        if q.get("createdBeforeFilter"):
            before = parse_time_param(q["createdBeforeFilter"], "createdBeforeFilter")
            found = [s for s in found if s.start < before]
        if q.get("typeFilter"):
            found = [s for s in found if s.type.lower() == q["typeFilter"].lower()]
        if q.get("nameFilter"):
            pat = q["nameFilter"].lower()
            found = [s for s in found if fnmatch.fnmatchcase(s.name.lower(), pat)]
        now = st.now
        if q.get("resultFilter"):
            # An array of ESessionResult: resultFilter=Success&resultFilter=Warning.
            wanted = {v.lower() for v in req.arrays.get("resultFilter", [q["resultFilter"]])}
            found = [s for s in found if s.result_at(now).lower() in wanted]
        if q.get("stateFilter"):
            want = q["stateFilter"].lower()
            found = [s for s in found if s.state_at(now).lower() == want]
        column = q.get("orderColumn", "CreationTime")
        keys: dict[str, Callable[[Session], Any]] = {
            "creationtime": lambda s: s.start,
            "endtime": lambda s: s.end if s.done(now) else 0.0,
            "name": lambda s: s.name,
            "sessiontype": lambda s: s.type,
            "state": lambda s: s.state_at(now),
        }
        key = keys.get(column.lower())
        if key is None:
            raise BadParam(f"orderColumn: unknown column {column}")
        asc = parse_bool(q.get("orderAsc", "true"), "orderAsc")
        found.sort(key=key, reverse=not asc)
        # Only the page is rendered: big scenarios stay fast.
        return self.page(req, found, lambda s: s.model(now))

    def session(self, sid: str) -> Response:
        for s in self.state.visible_sessions():
            if s.id == sid:
                return json_response(200, s.model(self.state.now))
        return error(404, "NotFound", f"Session {sid} not found.")

    def task_sessions(self, req: Request, sid: str) -> Response:
        now = self.state.now
        for s in self.state.visible_sessions():
            if s.id == sid:
                model = s.model(now)
                task = {
                    "id": stable_id("task", s.id),
                    "sessionId": s.id,
                    "name": s.name,
                    "type": "Backup",
                    "creationTime": model["creationTime"],
                    "state": model["state"],
                    "result": model["result"],
                    "progress": {
                        "progressPercent": model["progressPercent"],
                        "processedSize": int(s.transferred * 2),
                        "readSize": int(s.transferred * 1.5),
                        "transferredSize": int(s.transferred),
                        "duration": "00:00:00",
                    },
                }
                if "endTime" in model:
                    task["endTime"] = model["endTime"]
                return self.page(req, [task])
        return error(404, "NotFound", f"Session {sid} not found.")

    def repositories(self, req: Request) -> Response:
        items = []
        for r in sorted(self.state.scenario.repositories, key=lambda r: r.name):
            used = r.used_gb if r.used_gb is not None else r.capacity_gb - r.free_gb
            items.append(
                {
                    "id": r.id or stable_id("repo", r.name),
                    "name": r.name,
                    "type": r.type,
                    "description": "",
                    "hostName": "vbr-sim",
                    "path": r.path,
                    "capacityGB": r.capacity_gb,
                    "freeGB": r.free_gb,
                    "usedSpaceGB": used,
                }
            )
        return self.page(req, items)

    def page(
        self,
        req: Request,
        items: Sequence[Any],
        render: Callable[[Any], dict[str, Any]] = lambda item: item,
    ) -> Response:
        sc = self.state.scenario
        skip = parse_int(req.query.get("skip", "0"), "skip")
        limit = parse_int(req.query.get("limit", str(sc.default_limit)), "limit")
        if limit > sc.max_limit:
            raise BadParam(f"limit: at most {sc.max_limit}")
        chunk = [render(item) for item in items[skip : skip + limit]]
        return json_response(
            200,
            {
                "data": chunk,
                "pagination": {
                    "total": len(items),
                    "count": len(chunk),
                    "skip": skip,
                    "limit": limit,
                },
            },
        )

    # --- admin ---------------------------------------------------------------------------

    def admin(self, req: Request) -> Response:
        try:
            doc = admin_answer(
                "veeam",
                self.state,
                req.method,
                req.path,
                req.body,
                iso=iso,
                extra={("POST", "/admin/jobs/delete"): self.delete_job},
            )
        except AdminError as exc:
            code = "NotFound" if exc.status == 404 else "BadRequest"
            return error(exc.status, code, exc.message + "." * (exc.status == 404))
        return json_response(200, doc)

    def delete_job(self, body: dict[str, Any]) -> dict[str, Any]:
        st = self.state
        gone = {j.id for j in st.jobs if j.spec.name == body.get("name")}
        st.jobs = [j for j in st.jobs if j.id not in gone]
        st.sessions = [s for s in st.sessions if s.job_id not in gone]
        return {"deleted": len(gone)}


# --- small HTTP helpers ---------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]  # the last value of each parameter
    headers: dict[str, str]
    body: bytes
    arrays: dict[str, list[str]] = field(default_factory=dict)  # every value of each parameter

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class BadParam(ValueError):
    pass


def json_response(status: int, doc: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(doc).encode(), headers=headers or {})


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"errorCode": code, "message": message}, headers)


def parse_int(raw: str, name: str) -> int:
    if not raw.isdigit():
        raise BadParam(f"{name}: want a whole number >= 0")
    return int(raw)


def parse_bool(raw: str, name: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise BadParam(f"{name}: want true or false")
    return raw.lower() == "true"


def parse_time_param(raw: str, name: str) -> float:
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadParam(f"{name}: want ISO 8601") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
