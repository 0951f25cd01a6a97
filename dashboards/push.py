"""``mspwatch grafana push``: put the committed dashboards into an existing Grafana.

For MSPs that already run a Grafana (Grafana Cloud included) instead of the compose stack's
provisioned one. One folder per area (the folders under ``dashboards/json/``), optionally the
Prometheus datasource, then every dashboard, through grafana-client::

    $ GRAFANA_TOKEN=glsa_... mspwatch grafana push --url https://grafana.example.net
    Grafana 11.6.0 at https://grafana.example.net
    folder mspwatch-noc "mspwatch NOC": created
    ...
    dashboard mspwatch-noc "NOC overview" in mspwatch-noc: created
    pushed: 17 created, 0 updated, 0 unchanged

The credential comes from ``GRAFANA_TOKEN`` (a service account token), ``--token.file``, or
``GRAFANA_USER`` and ``GRAFANA_PASSWORD``; never from a flag's value, which ``ps`` shows.
Everything is read first and written after, so a refusal found while reading (a
file-provisioned dashboard with one of our uids) writes nothing. A second push with nothing
changed writes nothing: the stored dashboard, minus Grafana's ``id`` and ``version``, is
compared with the committed JSON. Every save carries the version just read and no
``overwrite``, so a dashboard changed in Grafana between the read and the write is refused
(412) rather than silently replaced.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import niquests
import yaml
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaTimeoutError

from mspwatch.common.config import parse_duration
from mspwatch.common.secrets import REDACTED, Secret
from mspwatch.common.version import mspwatch_version
from mspwatch.dashboards.generate import FOLDER_TITLES

PACKAGE_DIR = Path(__file__).resolve().parent
JSON_DIR = PACKAGE_DIR / "json"
DATASOURCE_FILE = PACKAGE_DIR / "provisioning" / "datasources" / "prometheus.yaml"
# Not the provisioning file's "Prometheus": an existing Grafana very likely has one of that
# name already, and data source names are unique per organisation.
DATASOURCE_NAME = "mspwatch Prometheus"
# folder under json/ -> the area's name in folder titles: "<prefix> <area>" ("mspwatch NOC")
AREA_TITLES = {area: title.removeprefix("mspwatch ") for area, title in FOLDER_TITLES.items()}
_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_MAX_UID = 40  # Grafana's limit for folder and dashboard uids
_IGNORED = ("id", "version")  # set by Grafana on every save

Action = Literal["create", "update", "unchanged"]


class PushError(Exception):
    """A one-line reason the push stopped (printed as ``grafana push: <reason>``)."""


@dataclass(frozen=True)
class Folder:
    uid: str
    title: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    folder: Folder
    model: dict[str, Any]


@dataclass(frozen=True)
class Datasource:
    uid: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Change:
    """One object's fate: created, updated (with what differs) or left as it is."""

    kind: Literal["folder", "datasource", "dashboard"]
    uid: str
    title: str
    action: Action
    why: str = ""
    version: int | None = None  # the stored version an update replaces
    target: Folder | Dashboard | Datasource | None = field(default=None, compare=False)

    def line(self, dry_run: bool) -> str:
        """``dashboard mspwatch-noc "NOC overview" in mspwatch-noc: updated (JSON differs)``"""
        where = f" in {self.target.folder.uid}" if isinstance(self.target, Dashboard) else ""
        done = {"create": "created", "update": "updated", "unchanged": "unchanged"}[self.action]
        if dry_run and self.action != "unchanged":
            done = f"would {self.action}"
        return f'{self.kind} {self.uid} "{self.title}"{where}: {done}' + (
            f" ({self.why})" if self.why else ""
        )


def folder_uid(prefix: str, area: str) -> str:
    """>>> folder_uid("mspwatch", "noc")
    'mspwatch-noc'
    """
    return f"{prefix}-{area}"


def check_prefix(prefix: str) -> str:
    """The folder prefix, refused when a folder uid made from it breaks Grafana's rules."""
    longest = max(len(folder_uid(prefix, area)) for area in AREA_TITLES)
    if not _UID.fullmatch(prefix):
        raise PushError(f"--folder-prefix: {prefix!r} must be letters, digits, '-' or '_'")
    if longest > _MAX_UID:
        raise PushError(f"--folder-prefix: {prefix!r} makes folder uids longer than {_MAX_UID} characters")
    return prefix


def committed(json_dir: Path, prefix: str) -> tuple[list[Folder], list[Dashboard]]:
    """The folders (one per area directory) and dashboards under ``json_dir``, sorted."""
    folders: list[Folder] = []
    dashboards: list[Dashboard] = []
    try:
        area_dirs = sorted(p for p in json_dir.iterdir() if p.is_dir())
    except OSError as exc:
        raise PushError(f"--dashboards.dir: cannot read {json_dir}: {exc.strerror or exc}") from None
    for area_dir in area_dirs:
        area = area_dir.name
        if area not in AREA_TITLES:
            raise PushError(f"{area_dir}: not an area folder (want one of {', '.join(AREA_TITLES)})")
        folder = Folder(folder_uid(prefix, area), f"{prefix} {AREA_TITLES[area]}")
        folders.append(folder)
        for path in sorted(area_dir.glob("*.json")):
            try:
                model = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise PushError(f"{path}: not a dashboard JSON file ({exc})") from None
            if not isinstance(model, dict) or not isinstance(model.get("uid"), str):
                raise PushError(f"{path}: not a dashboard (no uid)")
            dashboards.append(Dashboard(model["uid"], str(model.get("title", "")), folder, model))
    if not dashboards:
        raise PushError(f"{json_dir}: no dashboards found")
    return folders, dashboards


def datasource(url: str, provisioning: Path = DATASOURCE_FILE) -> Datasource:
    """The Prometheus datasource as the provisioning file declares it, at ``url``."""
    (spec,) = yaml.safe_load(provisioning.read_text(encoding="utf-8"))["datasources"]
    body = {
        "uid": spec["uid"],
        "name": DATASOURCE_NAME,
        "type": spec["type"],
        "access": spec["access"],
        "url": url,
        "isDefault": False,  # an existing Grafana's default is its owner's choice
        "jsonData": dict(spec.get("jsonData", {})),
    }
    return Datasource(spec["uid"], body)


def defaulting_to(d: Dashboard, ds: Datasource) -> Dashboard:
    """``d`` with its ``datasource`` variable preset to the pushed datasource.

    The committed JSON leaves the variable unset, which means "this Grafana's default
    Prometheus": right for the compose stack, where ours is the default, but an existing
    Grafana's default is someone else's Prometheus.
    """
    model = json.loads(json.dumps(d.model))
    for var in model.get("templating", {}).get("list", []):
        if var.get("type") == "datasource" and var.get("name") == "datasource":
            var["current"] = {"selected": False, "text": ds.body["name"], "value": ds.uid}
    return Dashboard(d.uid, d.title, d.folder, model)


def comparable(model: Mapping[str, Any]) -> dict[str, Any]:
    """A dashboard without the fields Grafana sets on save.

    >>> comparable({"uid": "a", "id": 7, "version": 3, "title": "A"})
    {'uid': 'a', 'title': 'A'}
    """
    return {k: v for k, v in model.items() if k not in _IGNORED}


class Grafana:
    """The Grafana HTTP API calls the push makes, typed, with errors turned into one line.

    ``None`` from a read means 404 (the object does not exist yet).
    """

    def __init__(
        self, url: str, credential: Secret | tuple[str, Secret], timeout: float, ca_file: Path | None
    ):
        parts = urlsplit(url)
        host = parts.hostname or ""
        self.url = url
        self.timeout = timeout
        auth: str | tuple[str, str] = (
            credential.reveal() if isinstance(credential, Secret) else (credential[0], credential[1].reveal())
        )
        path = parts.path.strip("/")
        self._api = GrafanaApi(
            auth=auth,
            host=f"[{host}]" if ":" in host else host,
            port=parts.port,
            url_path_prefix=f"{path}/" if path else "",  # the client appends "api" directly
            protocol=parts.scheme,
            verify=str(ca_file) if ca_file else True,
            timeout=timeout,
            user_agent=f"mspwatch/{mspwatch_version()}",
        )

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        try:
            yield
        except GrafanaTimeoutError:
            raise PushError(
                f"{what}: Grafana at {self.url} did not answer within {self.timeout:g}s (--timeout)"
            ) from None
        except GrafanaException as exc:
            raise PushError(refusal(what, exc.status_code, exc.response, self.url)) from None
        except niquests.exceptions.ConnectionError as exc:
            raise PushError(f"cannot reach Grafana at {self.url}: {connection_reason(exc)}") from None
        except niquests.exceptions.RequestException as exc:
            raise PushError(f"{what}: {type(exc).__name__}: {exc}") from None
        except ValueError:  # a body that is not JSON: something else answers at that URL
            raise PushError(f"{what}: the answer is not JSON; is {self.url} a Grafana?") from None

    def _get(self, what: str, call: Any, uid: str) -> dict[str, Any] | None:
        with self._calling(what):
            try:
                got = call(uid)
            except GrafanaClientError as exc:
                if exc.status_code == 404:
                    return None
                raise
        if not isinstance(got, dict):
            raise PushError(f"{what}: unexpected answer from Grafana (not a JSON object)")
        return got

    def build_info(self) -> dict[str, Any]:
        """``{"version": "11.6.0", ...}`` from /api/frontend/settings."""
        with self._calling("reading Grafana's version"):
            info = self._api.health.check()  # type: ignore[no-untyped-call]
        return info if isinstance(info, dict) else {}

    def folder(self, uid: str) -> dict[str, Any] | None:
        return self._get(f"folder {uid}", self._api.folder.get_folder, uid)

    def dashboard(self, uid: str) -> dict[str, Any] | None:
        return self._get(f"dashboard {uid}", self._api.dashboard.get_dashboard, uid)

    def datasource(self, uid: str) -> dict[str, Any] | None:
        return self._get(f"datasource {uid}", self._api.datasource.get_datasource_by_uid, uid)

    def create_folder(self, f: Folder) -> None:
        with self._calling(f"folder {f.uid}"):
            self._api.folder.create_folder(f.title, uid=f.uid)  # type: ignore[no-untyped-call]

    def update_folder(self, f: Folder, version: int | None) -> None:
        with self._calling(f"folder {f.uid}"):
            self._api.folder.update_folder(f.uid, title=f.title, version=version)  # type: ignore[no-untyped-call]

    def save_dashboard(self, d: Dashboard, version: int | None) -> None:
        model = dict(d.model)
        if version is not None:
            model["version"] = version  # optimistic lock: 412 if someone saved since we read
        body = {
            "dashboard": model,
            "folderUid": d.folder.uid,
            "message": f"mspwatch grafana push (mspwatch {mspwatch_version()})",
            "overwrite": False,
        }
        with self._calling(f"dashboard {d.uid}"):
            self._api.dashboard.update_dashboard(body)  # type: ignore[no-untyped-call]

    def create_datasource(self, ds: Datasource) -> None:
        with self._calling(f"datasource {ds.uid}"):
            self._api.datasource.create_datasource(ds.body)  # type: ignore[no-untyped-call]

    def update_datasource(self, ds: Datasource) -> None:
        with self._calling(f"datasource {ds.uid}"):
            self._api.datasource.update_datasource_by_uid(ds.uid, ds.body)  # type: ignore[no-untyped-call]


def _message(response: object) -> str:
    if isinstance(response, dict):
        return str(response.get("message", "")).strip()
    return str(response or "").strip()[:200]


def refusal(what: str, status: int, response: object, url: str) -> str:
    """The one line for an HTTP error answer: what was refused and what to do about it.

    >>> refusal("dashboard mspwatch-noc", 401, {"message": "Invalid API key"}, "http://g")[:52]
    'Grafana at http://g refused the credentials (401 Inv'
    """
    message = _message(response)
    status_word = response.get("status") if isinstance(response, dict) else None
    if status == 401:
        return (
            f"Grafana at {url} refused the credentials (401 {message or 'Unauthorized'}): check "
            "GRAFANA_TOKEN or --token.file (a service account token), or GRAFANA_USER/GRAFANA_PASSWORD"
        )
    if status == 403:
        return (
            f"{what}: forbidden (403 {message or 'Forbidden'}): the service account needs the Editor "
            "role for folders and dashboards, Admin for the datasource"
        )
    if status == 412 and status_word == "version-mismatch":
        return f"{what}: changed in Grafana while this push ran (412 version-mismatch); run the push again"
    if status == 412 and status_word == "name-exists":
        return (
            f"{what}: another dashboard in the same folder has this title (412 name-exists); "
            "rename or delete that one in Grafana, then push again"
        )
    if status == 400 and "provisioned" in message.lower():
        return (
            f"{what}: Grafana refuses to overwrite a file-provisioned dashboard (400 {message}); "
            "this Grafana provisions mspwatch's dashboards from files already: update those files "
            "instead, or remove that provisioning and push again"
        )
    if status == 409:
        return (
            f"{what}: Grafana reports a conflict (409 {message}): another object has this name; "
            "rename it in Grafana, or push with another --folder-prefix"
        )
    return f"{what}: Grafana answered {status}" + (f" ({message})" if message else "")


def connection_reason(exc: BaseException) -> str:
    """The operating system's words for a failed connection, without the library's wrapping.

    >>> connection_reason(OSError("... [Errno 111] Connection refused'))"))
    'connection refused'
    """
    text = str(exc)
    if m := re.search(r"\[Errno -?\d+\] ([^'\")]+)", text):
        return m.group(1).strip().rstrip(".").lower()
    if "certificate" in text.lower():
        return "TLS certificate verification failed (--tls.ca-file names the CA that signed it)"
    return type(exc).__name__


def plan_folder(grafana: Grafana, f: Folder) -> Change:
    stored = grafana.folder(f.uid)
    if stored is None:
        return Change("folder", f.uid, f.title, "create", target=f)
    if stored.get("title") != f.title:
        why = f"title was {stored.get('title')!r}"
        return Change("folder", f.uid, f.title, "update", why, _version(stored), target=f)
    return Change("folder", f.uid, f.title, "unchanged", target=f)


def plan_datasource(grafana: Grafana, ds: Datasource) -> Change:
    stored = grafana.datasource(ds.uid)
    title = ds.body["name"]
    if stored is None:
        return Change("datasource", ds.uid, title, "create", target=ds)
    if stored.get("readOnly"):
        raise PushError(
            f"datasource {ds.uid}: provisioned from a file in this Grafana (read-only); change it "
            "there, or push without --datasource-url"
        )
    differs = [k for k, v in ds.body.items() if k != "jsonData" and stored.get(k) != v]
    stored_json = stored.get("jsonData") or {}
    differs += [f"jsonData.{k}" for k, v in ds.body["jsonData"].items() if stored_json.get(k) != v]
    if differs:
        return Change("datasource", ds.uid, title, "update", f"{', '.join(differs)} differ", target=ds)
    return Change("datasource", ds.uid, title, "unchanged", target=ds)


def plan_dashboard(grafana: Grafana, d: Dashboard) -> Change:
    stored = grafana.dashboard(d.uid)
    if stored is None:
        return Change("dashboard", d.uid, d.title, "create", target=d)
    meta = stored.get("meta") or {}
    model = stored.get("dashboard") or {}
    if meta.get("provisioned"):
        raise PushError(
            f"dashboard {d.uid}: provisioned from a file in this Grafana "
            f"({meta.get('provisionedExternalId') or 'file provisioning'}), which the API cannot "
            "overwrite: update that file instead, or remove the provisioning and push again"
        )
    version = _version(model)
    why = []
    if comparable(model) != comparable(d.model):
        why.append("JSON differs")
    if meta.get("folderUid", "") != d.folder.uid:
        why.append(f"folder was {meta.get('folderUid') or 'the root'}")
    if why:
        return Change("dashboard", d.uid, d.title, "update", ", ".join(why), version, target=d)
    return Change("dashboard", d.uid, d.title, "unchanged", version=version, target=d)


def _version(obj: Mapping[str, Any]) -> int | None:
    v = obj.get("version")
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def plan(
    grafana: Grafana, folders: list[Folder], dashboards: list[Dashboard], ds: Datasource | None
) -> list[Change]:
    """What a push would do, from reads only: folders first, the datasource, then dashboards."""
    changes = [plan_folder(grafana, f) for f in folders]
    if ds is not None:
        changes.append(plan_datasource(grafana, ds))
    changes += [plan_dashboard(grafana, d) for d in dashboards]
    return changes


def apply(grafana: Grafana, change: Change) -> None:
    """Write one planned change (nothing for ``unchanged``)."""
    target = change.target
    if change.action == "unchanged" or target is None:
        return
    if isinstance(target, Folder):
        if change.action == "create":
            grafana.create_folder(target)
        else:
            grafana.update_folder(target, change.version)
    elif isinstance(target, Datasource):
        if change.action == "create":
            grafana.create_datasource(target)
        else:
            grafana.update_datasource(target)
    else:
        grafana.save_dashboard(target, change.version if change.action == "update" else None)


def credential(args: argparse.Namespace, environ: Mapping[str, str]) -> Secret | tuple[str, Secret]:
    """The token from ``--token.file`` or ``GRAFANA_TOKEN``, else basic auth from the environment."""
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise PushError(f"--token.file: cannot read {args.token_file}: {reason}") from None
        if not token:
            raise PushError(f"--token.file: {args.token_file} is empty")
        return Secret(token)
    if environ.get("GRAFANA_TOKEN", "").strip():
        return Secret(environ["GRAFANA_TOKEN"].strip())
    user, password = environ.get("GRAFANA_USER", ""), environ.get("GRAFANA_PASSWORD", "")
    if user and password:
        return (user, Secret(password))
    raise PushError(
        "no credentials: set GRAFANA_TOKEN (a service account token with the Editor role), "
        "or --token.file, or GRAFANA_USER and GRAFANA_PASSWORD"
    )


def check_url(url: str, flag: str = "--url") -> str:
    """An http(s) URL without credentials in it (a flag's value shows in ``ps``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"{flag}: want http://host:port or https://host, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise PushError(
            f"{flag}: put no credentials in the URL; use GRAFANA_TOKEN, --token.file or "
            "GRAFANA_USER/GRAFANA_PASSWORD"
        )
    try:
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        raise PushError(f"{flag}: bad port in {url!r}") from None
    return url.rstrip("/")


def push(args: argparse.Namespace, environ: Mapping[str, str], out: Any = None) -> int:
    """Plan, print and (unless ``--dry-run``) write; return the exit code."""
    out = out or sys.stdout
    url = check_url(args.url)
    prefix = check_prefix(args.folder_prefix)
    try:
        timeout = parse_duration(args.timeout)
    except ValueError as exc:
        raise PushError(f"--timeout: {exc}") from None
    ds = datasource(check_url(args.datasource_url, "--datasource-url")) if args.datasource_url else None
    folders, dashboards = committed(args.dashboards_dir, prefix)
    if ds is not None:
        dashboards = [defaulting_to(d, ds) for d in dashboards]
    grafana = Grafana(url, credential(args, environ), timeout, args.tls_ca_file)
    version = grafana.build_info().get("version", "of unknown version")
    print(f"Grafana {version} at {url}", file=out)
    changes = plan(grafana, folders, dashboards, ds)
    for change in changes:
        if not args.dry_run:
            apply(grafana, change)
        print(change.line(args.dry_run), file=out)
    counts = {a: sum(c.action == a for c in changes) for a in ("create", "update", "unchanged")}
    if args.dry_run:
        print(
            f"dry run: {counts['create']} to create, {counts['update']} to update, "
            f"{counts['unchanged']} unchanged; nothing written",
            file=out,
        )
    else:
        print(
            f"pushed: {counts['create']} created, {counts['update']} updated, "
            f"{counts['unchanged']} unchanged",
            file=out,
        )
    if ds is None:
        print(
            "datasource: not pushed (no --datasource-url); the dashboards' datasource variable "
            "starts at this Grafana's default Prometheus",
            file=out,
        )
    return 0


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """The command: the push, or one line on stderr and exit code 1."""
    environ = os.environ if environ is None else environ
    try:
        return push(args, environ)
    except PushError as exc:
        text = str(exc)
        for secret in _secrets(environ, args):
            text = text.replace(secret, REDACTED)  # belt and braces: no answer may echo one
        print(f"grafana push: {text}", file=sys.stderr)
        return 1


def _secrets(environ: Mapping[str, str], args: argparse.Namespace) -> list[str]:
    found = [environ.get(k, "").strip() for k in ("GRAFANA_TOKEN", "GRAFANA_PASSWORD")]
    if args.token_file is not None:
        with suppress(OSError, UnicodeDecodeError):
            found.append(args.token_file.read_text(encoding="utf-8").strip())
    return [s for s in found if len(s) >= 4]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "grafana", help="push the dashboards to an existing Grafana", description=__doc__.split("\n\n")[0]
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    push_p = sub.add_parser(
        "push",
        help="create or update the folders, datasource and dashboards in a Grafana",
        description="Push the folders (one per area), the Prometheus datasource (with "
        "--datasource-url) and every dashboard. Credentials: GRAFANA_TOKEN, --token.file, or "
        "GRAFANA_USER and GRAFANA_PASSWORD.",
    )
    push_p.add_argument("--url", required=True, help="Grafana's URL, e.g. https://example.grafana.net")
    push_p.add_argument(
        "--token.file",
        dest="token_file",
        type=Path,
        help="read the service account token from this file (instead of GRAFANA_TOKEN)",
    )
    push_p.add_argument(
        "--folder-prefix",
        default="mspwatch",
        help="folder uids are <prefix>-<area>, titles '<prefix> <Area>' (default: %(default)s)",
    )
    push_p.add_argument(
        "--datasource-url",
        help="also push the Prometheus datasource (uid mspwatch-prometheus) pointing at this URL",
    )
    push_p.add_argument(
        "--timeout",
        default="10s",
        help="give up on a request Grafana does not answer within this duration (default: %(default)s)",
    )
    push_p.add_argument(
        "--tls.ca-file", dest="tls_ca_file", type=Path, help="CA bundle (PEM) for Grafana's certificate"
    )
    push_p.add_argument(
        "--dashboards.dir",
        dest="dashboards_dir",
        type=Path,
        default=JSON_DIR,
        help="the dashboards' JSON, one folder per area (default: the package's json/)",
    )
    push_p.add_argument("--dry-run", action="store_true", help="list what would change; write nothing")
    push_p.set_defaults(func=run)
