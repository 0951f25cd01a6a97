"""A loopback stand-in for the parts of Grafana's HTTP API that ``mspwatch grafana push`` uses.

No Grafana server runs on these machines, so this ASGI app plays one: folders, dashboards,
data sources and /api/frontend/settings, with Grafana's status codes and messages (the
documented Folder, Dashboard and Data source HTTP API pages, Grafana 11.6). It checks what
a real Grafana checks -- the Authorization header, the role, each body's keys and types,
uid rules, version locking on save, provisioned objects -- and answers a body that does not
match the documented shape with Grafana's 400. Every request is recorded, so a test can
assert that a dry run or a no-op push wrote nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from mspwatch.common.procs import free_port
from mspwatch.simulators.asgi import Receive, Scope, Send, read_request, respond

ROLES = ("Viewer", "Editor", "Admin")
_UID = re.compile(r"[a-zA-Z0-9_-]{1,40}")
FOLDER_CREATE_KEYS = {"uid", "title", "description", "parentUid"}
FOLDER_UPDATE_KEYS = {"uid", "title", "description", "version", "overwrite"}
DASHBOARD_SAVE_KEYS = {"dashboard", "folderId", "folderUid", "message", "overwrite"}
DATASOURCE_KEYS = {
    "name", "type", "url", "access", "uid", "database", "user", "basicAuth", "basicAuthUser",
    "withCredentials", "isDefault", "jsonData", "secureJsonData", "version",
}  # fmt: skip


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any
    authorization: str


class Refused(Exception):
    def __init__(self, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = code
        self.body = {"message": message, **extra}


@dataclass
class GrafanaStandin:
    """The state of one Grafana organisation, and the ASGI app that serves it."""

    tokens: dict[str, str] = field(default_factory=dict)  # service account token -> role
    users: dict[tuple[str, str], str] = field(default_factory=dict)  # (user, password) -> role
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> {dashboard, meta}
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    # uids whose next GET is followed by someone else saving the dashboard (a version bump)
    edited_after_read: set[str] = field(default_factory=set)
    provisioned: set[str] = field(default_factory=set)  # dashboard uids read from files
    hang: set[str] = field(default_factory=set)  # paths accepted and left unanswered (30 s)
    calls: list[Call] = field(default_factory=list)
    version: str = "11.6.0"
    _next_id: int = 1

    def reset(self) -> None:
        self.folders.clear()
        self.dashboards.clear()
        self.datasources.clear()
        self.edited_after_read.clear()
        self.provisioned.clear()
        self.hang.clear()
        self.calls.clear()

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- what tests arrange -------------------------------------------------------------

    def provision_dashboard(self, model: dict[str, Any], folder_uid: str) -> None:
        """A dashboard read from a provisioning file: the API may read it, never save it."""
        self.provisioned.add(model["uid"])
        self._store_dashboard(model, folder_uid, provisioned=True)

    def _store_dashboard(self, model: dict[str, Any], folder_uid: str, provisioned: bool = False) -> int:
        uid = model["uid"]
        old = self.dashboards.get(uid)
        version = old["dashboard"]["version"] + 1 if old else 1
        stored = {
            **model,
            "id": old["dashboard"]["id"] if old else self._id(),
            "uid": uid,
            "version": version,
        }
        folder = self.folders.get(folder_uid)
        self.dashboards[uid] = {
            "dashboard": stored,
            "meta": {
                "type": "db",
                "canSave": not provisioned,
                "canEdit": True,
                "canAdmin": True,
                "slug": _slug(str(model.get("title", ""))),
                "url": f"/d/{uid}/{_slug(str(model.get('title', '')))}",
                "version": version,
                "folderId": folder["id"] if folder else 0,
                "folderUid": folder_uid,
                "folderTitle": folder["title"] if folder else "Dashboards",
                "provisioned": provisioned,
                "provisionedExternalId": f"{uid}.json" if provisioned else "",
            },
        }
        return version

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive, send)
        if request is None:
            return
        authorization = request.headers.get("authorization", "")
        if request.path in self.hang:
            await asyncio.sleep(30)  # far past any client timeout the tests set
        body: Any = None
        try:
            if request.method in ("POST", "PUT"):
                if not request.headers.get("content-type", "").startswith("application/json"):
                    raise Refused(400, "bad request data: Content-Type must be application/json")
                try:
                    body = json.loads(request.body)
                except ValueError:
                    raise Refused(400, "bad request data") from None
            self.calls.append(Call(request.method, request.path, body, authorization))
            role = self._role(authorization)
            status, answer = self._route(request.method, request.path, body, role)
        except Refused as exc:
            status, answer = exc.status, exc.body
        await respond(send, status, json.dumps(answer).encode(), "application/json", {})

    def _role(self, authorization: str) -> str:
        scheme, _, value = authorization.partition(" ")
        if scheme == "Bearer" and value in self.tokens:
            return self.tokens[value]
        if scheme == "Basic":
            user, _, password = base64.b64decode(value).decode().partition(":")
            if (user, password) in self.users:
                return self.users[(user, password)]
            raise Refused(401, "invalid username or password")
        if scheme == "Bearer":
            raise Refused(401, "Invalid API key", messageId="api-key.invalid", statusCode=401)
        raise Refused(401, "Unauthorized")

    def _route(self, method: str, path: str, body: Any, role: str) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if method == "GET" and parts == ["api", "frontend", "settings"]:
            return 200, {
                "buildInfo": {"version": self.version, "edition": "Open Source", "env": "production"}
            }
        if parts[:2] == ["api", "folders"]:
            if method == "POST" and len(parts) == 2:
                return self._create_folder(body, role)
            if len(parts) == 3 and method == "GET":
                return self._get_folder(parts[2])
            if len(parts) == 3 and method == "PUT":
                return self._update_folder(parts[2], body, role)
        if parts[:3] == ["api", "dashboards", "uid"] and len(parts) == 4 and method == "GET":
            return self._get_dashboard(parts[3])
        if parts == ["api", "dashboards", "db"] and method == "POST":
            return self._save_dashboard(body, role)
        if parts[:3] == ["api", "datasources", "uid"] and len(parts) == 4:
            if method == "GET":
                return self._get_datasource(parts[3])
            if method == "PUT":
                return self._update_datasource(parts[3], body, role)
        if parts == ["api", "datasources"] and method == "POST":
            return self._create_datasource(body, role)
        raise Refused(404, "Not found")

    # -- folders ------------------------------------------------------------------------

    def _get_folder(self, uid: str) -> tuple[int, Any]:
        if uid not in self.folders:
            raise Refused(404, "folder not found", status="not-found")
        return 200, self.folders[uid]

    def _create_folder(self, body: Any, role: str) -> tuple[int, Any]:
        _need(role, "Editor", "folders:create")
        _shape(body, FOLDER_CREATE_KEYS, required={"title": str}, optional={"uid": str, "parentUid": str})
        uid = body.get("uid") or f"auto{self._id()}"
        _check_uid(uid)
        if uid in self.folders:
            raise Refused(409, "a folder with the same uid already exists")
        if any(f["title"] == body["title"] for f in self.folders.values()):
            raise Refused(409, "a dashboard or folder with the same name already exists")
        self.folders[uid] = _folder(self._id(), uid, body["title"], 1)
        return 200, self.folders[uid]

    def _update_folder(self, uid: str, body: Any, role: str) -> tuple[int, Any]:
        _need(role, "Editor", "folders:write")
        _shape(
            body, FOLDER_UPDATE_KEYS, required={"title": str}, optional={"version": int, "overwrite": bool}
        )
        old = self.folders.get(uid)
        if old is None:
            raise Refused(404, "folder not found", status="not-found")
        if not body.get("overwrite") and body.get("version") != old["version"]:
            raise Refused(412, "the folder has been changed by someone else", status="version-mismatch")
        self.folders[uid] = _folder(old["id"], uid, body["title"], old["version"] + 1)
        return 200, self.folders[uid]

    # -- dashboards ---------------------------------------------------------------------

    def _get_dashboard(self, uid: str) -> tuple[int, Any]:
        if uid not in self.dashboards:
            raise Refused(404, "Dashboard not found")
        answer = json.loads(json.dumps(self.dashboards[uid]))
        if uid in self.edited_after_read:  # someone saves it in the UI right after this read
            self.edited_after_read.discard(uid)
            stored = self.dashboards[uid]
            self._store_dashboard(stored["dashboard"], stored["meta"]["folderUid"])
        return 200, answer

    def _save_dashboard(self, body: Any, role: str) -> tuple[int, Any]:
        _need(role, "Editor", "dashboards:write")
        _shape(
            body,
            DASHBOARD_SAVE_KEYS,
            required={"dashboard": dict},
            optional={"folderUid": str, "folderId": int, "message": str, "overwrite": bool},
        )
        model = body["dashboard"]
        if not isinstance(model.get("title"), str) or not model["title"].strip():
            raise Refused(400, "Dashboard title cannot be empty", status="empty-name")
        uid = model.get("uid")
        if not isinstance(uid, str):
            raise Refused(400, "bad request data: dashboard.uid must be a string")
        _check_uid(uid)
        folder_uid = body.get("folderUid", "")
        if folder_uid and folder_uid not in self.folders:
            raise Refused(400, "folder not found", status="not-found")
        old = self.dashboards.get(uid)
        if uid in self.provisioned:
            raise Refused(400, "Cannot save provisioned dashboard")
        overwrite = bool(body.get("overwrite"))
        if old is not None and not overwrite and model.get("version") != old["dashboard"]["version"]:
            raise Refused(412, "The dashboard has been changed by someone else", status="version-mismatch")
        for other in self.dashboards.values():
            same_place = other["meta"]["folderUid"] == folder_uid
            if (
                other["dashboard"]["uid"] != uid
                and same_place
                and other["dashboard"]["title"] == model["title"]
            ):
                raise Refused(
                    412, "A dashboard with the same name in the folder already exists", status="name-exists"
                )
        version = self._store_dashboard(
            {k: v for k, v in model.items() if k not in ("id", "version")}, folder_uid
        )
        stored = self.dashboards[uid]
        return 200, {
            "id": stored["dashboard"]["id"],
            "uid": uid,
            "url": stored["meta"]["url"],
            "status": "success",
            "version": version,
            "slug": stored["meta"]["slug"],
            "folderUid": folder_uid,
        }

    # -- data sources -------------------------------------------------------------------

    def _get_datasource(self, uid: str) -> tuple[int, Any]:
        if uid not in self.datasources:
            raise Refused(404, "Data source not found")
        return 200, self.datasources[uid]

    def _check_datasource(self, body: Any) -> None:
        _shape(
            body,
            DATASOURCE_KEYS,
            required={"name": str, "type": str, "access": str},
            optional={"uid": str, "url": str, "isDefault": bool, "jsonData": dict, "basicAuth": bool},
        )
        if body["access"] not in ("proxy", "direct"):
            raise Refused(400, "bad request data: access must be proxy or direct")

    def _create_datasource(self, body: Any, role: str) -> tuple[int, Any]:
        _need(role, "Admin", "datasources:create")
        self._check_datasource(body)
        uid = body.get("uid") or f"auto{self._id()}"
        if uid in self.datasources:
            raise Refused(409, "data source with the same uid already exists")
        if any(d["name"] == body["name"] for d in self.datasources.values()):
            raise Refused(409, "data source with the same name already exists")
        stored = {
            **_datasource_defaults(),
            **body,
            "id": self._id(),
            "uid": uid,
            "version": 1,
            "readOnly": False,
        }
        self.datasources[uid] = stored
        return 200, {
            "datasource": stored,
            "id": stored["id"],
            "message": "Datasource added",
            "name": body["name"],
        }

    def _update_datasource(self, uid: str, body: Any, role: str) -> tuple[int, Any]:
        _need(role, "Admin", "datasources:write")
        self._check_datasource(body)
        old = self.datasources.get(uid)
        if old is None:
            raise Refused(404, "Data source not found")
        if old["readOnly"]:
            raise Refused(403, "Cannot update read-only data source")
        stored = {**old, **body, "id": old["id"], "uid": uid, "version": old["version"] + 1}
        self.datasources[uid] = stored
        return 200, {
            "datasource": stored,
            "id": stored["id"],
            "message": "Datasource updated",
            "name": body["name"],
        }


def _need(role: str, least: str, permission: str) -> None:
    if ROLES.index(role) < ROLES.index(least):
        raise Refused(
            403,
            f"You'll need additional permissions to perform this action. Permissions needed: {permission}",
            accessErrorId="ACE0000000000",
        )


def _shape(body: Any, allowed: set[str], required: dict[str, type], optional: dict[str, type]) -> None:
    """Grafana binds JSON to a struct: unknown keys are ignored there, but a key we never
    expect a client to send is a bug in the client, so the stand-in refuses it."""
    if not isinstance(body, dict):
        raise Refused(400, "bad request data")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Refused(400, f"bad request data: unknown field {unknown[0]!r}")
    for key, kind in {**required, **optional}.items():
        if key in required and key not in body:
            raise Refused(400, f"bad request data: {key} is required")
        value = body.get(key)
        if key in body and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise Refused(400, f"bad request data: {key} must be {kind.__name__}")


def _check_uid(uid: str) -> None:
    if not _UID.fullmatch(uid):
        raise Refused(400, "uid contains illegal characters or is longer than 40", status="bad-uid")


def _folder(id_: int, uid: str, title: str, version: int) -> dict[str, Any]:
    return {
        "id": id_,
        "uid": uid,
        "title": title,
        "url": f"/dashboards/f/{uid}/{_slug(title)}",
        "hasAcl": False,
        "canSave": True,
        "canEdit": True,
        "canAdmin": True,
        "version": version,
    }


def _datasource_defaults() -> dict[str, Any]:
    return {"orgId": 1, "typeLogoUrl": "", "url": "", "user": "", "database": "", "basicAuth": False,
            "isDefault": False, "jsonData": {}}  # fmt: skip


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


@dataclass(frozen=True)
class Served:
    standin: GrafanaStandin
    url: str


def serve(standin: GrafanaStandin) -> Iterator[Served]:
    """Serve ``standin`` with uvicorn in a thread of this process until the generator closes."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            standin,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,  # do not wait for a request held by `hang`
        )
    )
    thread = threading.Thread(target=server.run, name="grafana-standin", daemon=True)
    thread.start()
    for _ in range(1000):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "the Grafana stand-in did not start"
    try:
        yield Served(standin, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)
