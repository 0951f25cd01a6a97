"""``mspwatch grafana push`` against the loopback Grafana stand-in, through the real
grafana-client: create, no-op, update, dry run, and every refusal as one line."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mspwatch.cli import build_parser
from mspwatch.common.procs import free_port
from mspwatch.dashboards import push
from tests.conftest import ROOT
from tests.dashboards.grafana_standin import GrafanaStandin, Served, serve

TOKEN = "glsa_standin_editor_0f9e8d7c6b5a"
VIEWER = "glsa_standin_viewer_123456789"
ADMIN = {"GRAFANA_TOKEN": "glsa_admin_token_42"}
JSON_DIR = ROOT / "dashboards" / "json"
COMMITTED = sorted(JSON_DIR.glob("*/*.json"))
AREAS = sorted(p.name for p in JSON_DIR.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    standin = GrafanaStandin(
        tokens={TOKEN: "Editor", VIEWER: "Viewer", "glsa_admin_token_42": "Admin"},
        users={("admin", "s3cret-pw"): "Admin"},
    )
    yield from serve(standin)


@pytest.fixture
def grafana(served: Served) -> Iterator[Served]:
    served.standin.reset()
    yield served
    served.standin.reset()


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    args = ["grafana", "push", *argv]
    parsed = build_parser(args).parse_args(args)
    code = push.run(parsed, {"GRAFANA_TOKEN": TOKEN} if env is None else env)
    out, err = capsys.readouterr()
    return code, out, err


def committed_models() -> dict[str, tuple[str, dict[str, Any]]]:
    return {(m := json.loads(p.read_text()))["uid"]: (f"mspwatch-{p.parent.name}", m) for p in COMMITTED}


def test_first_push_creates_every_folder_and_dashboard(
    grafana: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--url", grafana.url)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"Grafana 11.6.0 at {grafana.url}"
    assert 'folder mspwatch-noc "mspwatch NOC": created' in lines
    assert 'dashboard mspwatch-noc "NOC overview" in mspwatch-noc: created' in lines
    n = len(AREAS) + len(COMMITTED)
    assert f"pushed: {n} created, 0 updated, 0 unchanged" in lines
    state = grafana.standin
    assert sorted(state.folders) == [f"mspwatch-{a}" for a in AREAS]
    assert state.folders["mspwatch-m365"]["title"] == "mspwatch Microsoft 365"
    # every committed dashboard is stored as committed (plus Grafana's id and version), in its area
    expected = committed_models()
    assert sorted(state.dashboards) == sorted(expected)
    for uid, (folder, model) in expected.items():
        stored = state.dashboards[uid]
        assert stored["meta"]["folderUid"] == folder
        assert push.comparable(stored["dashboard"]) == model
        assert stored["dashboard"]["version"] == 1
    # without --datasource-url no datasource is written
    assert state.datasources == {}
    assert "datasource: not pushed" in out
    # every request carried the token as a bearer credential
    assert {c.authorization for c in state.calls} == {f"Bearer {TOKEN}"}
    saves = [c for c in state.calls if c.path == "/api/dashboards/db"]
    assert len(saves) == len(COMMITTED)
    assert all(c.body["overwrite"] is False and "version" not in c.body["dashboard"] for c in saves)


def test_second_push_changes_nothing(grafana: Served, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("--url", grafana.url, "--datasource-url", "http://prometheus:9090")
    run(capsys, *argv, env=ADMIN)
    grafana.standin.calls.clear()
    code, out, err = run(capsys, *argv, env=ADMIN)
    assert (code, err) == (0, "")
    assert grafana.standin.writes() == []
    n = len(AREAS) + len(COMMITTED) + 1
    assert f"pushed: 0 created, 0 updated, {n} unchanged" in out.splitlines()
    assert 'datasource mspwatch-prometheus "mspwatch Prometheus": unchanged' in out.splitlines()
    assert {d["dashboard"]["version"] for d in grafana.standin.dashboards.values()} == {1}


def test_changed_dashboards_are_updated_with_the_version_read(
    grafana: Served, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "--url", grafana.url)
    state = grafana.standin
    # someone edited the backup dashboard in the UI (version 2), and moved the SLA one
    edited = state.dashboards["mspwatch-backup"]["dashboard"]
    state._store_dashboard({**edited, "title": "Backups (edited)"}, "mspwatch-backup")
    sla = state.dashboards["mspwatch-sla"]
    state._store_dashboard(sla["dashboard"], "mspwatch-noc")
    # and a builder changed the patch dashboard in the repo
    local = tmp_path / "json"
    shutil.copytree(JSON_DIR, local)
    patch_file = local / "patch" / "mspwatch-patch.json"
    model = json.loads(patch_file.read_text())
    model["description"] = "changed in the repo"
    patch_file.write_text(json.dumps(model))
    state.calls.clear()

    code, out, err = run(capsys, "--url", grafana.url, "--dashboards.dir", str(local))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert 'dashboard mspwatch-backup "Backups" in mspwatch-backup: updated (JSON differs)' in lines
    assert (
        'dashboard mspwatch-sla "SLA and error budget" in mspwatch-sla: updated (folder was mspwatch-noc)'
        in (lines)
    )
    assert 'dashboard mspwatch-patch "Patch compliance" in mspwatch-patch: updated (JSON differs)' in lines
    unchanged = len(AREAS) + len(COMMITTED) - 3
    assert f"pushed: 0 created, 3 updated, {unchanged} unchanged" in lines
    saved = {c.body["dashboard"]["uid"]: c.body for c in state.writes()}
    assert sorted(saved) == ["mspwatch-backup", "mspwatch-patch", "mspwatch-sla"]
    assert saved["mspwatch-backup"]["dashboard"]["version"] == 2  # the version it replaces
    assert state.dashboards["mspwatch-backup"]["dashboard"]["title"] == "Backups"
    assert state.dashboards["mspwatch-backup"]["dashboard"]["version"] == 3
    assert state.dashboards["mspwatch-sla"]["meta"]["folderUid"] == "mspwatch-sla"
    assert state.dashboards["mspwatch-patch"]["dashboard"]["description"] == "changed in the repo"


def test_renamed_folder_is_updated(grafana: Served, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "--url", grafana.url)
    grafana.standin.folders["mspwatch-sla"]["title"] = "SLA (old name)"
    grafana.standin.calls.clear()
    code, out, _ = run(capsys, "--url", grafana.url)
    assert code == 0
    assert "folder mspwatch-sla \"mspwatch SLA\": updated (title was 'SLA (old name)')" in out.splitlines()
    (write,) = grafana.standin.writes()
    assert (write.method, write.path, write.body) == (
        "PUT",
        "/api/folders/mspwatch-sla",
        {"title": "mspwatch SLA", "version": 1},
    )


def test_dry_run_writes_nothing(grafana: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--url", grafana.url, "--dry-run", "--datasource-url", "http://prom:9090")
    assert (code, err) == (0, "")
    assert grafana.standin.writes() == []
    assert grafana.standin.dashboards == {} and grafana.standin.folders == {}
    lines = out.splitlines()
    assert 'folder mspwatch-noc "mspwatch NOC": would create' in lines
    assert 'datasource mspwatch-prometheus "mspwatch Prometheus": would create' in lines
    n = len(AREAS) + len(COMMITTED) + 1
    assert f"dry run: {n} to create, 0 to update, 0 unchanged; nothing written" in lines


def test_datasource_is_created_then_updated_when_its_url_changes(
    grafana: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    env = ADMIN
    code, out, _ = run(capsys, "--url", grafana.url, "--datasource-url", "http://prom-a:9090", env=env)
    assert code == 0
    stored = grafana.standin.datasources["mspwatch-prometheus"]
    assert {k: stored[k] for k in ("name", "type", "access", "url", "isDefault", "jsonData")} == {
        "name": "mspwatch Prometheus",
        "type": "prometheus",
        "access": "proxy",
        "url": "http://prom-a:9090",
        "isDefault": False,
        "jsonData": {"timeInterval": "1m"},  # as the provisioning file says
    }
    # the dashboards' datasource variable defaults to it (not to this Grafana's default)
    for uid, (_, model) in committed_models().items():
        stored = grafana.standin.dashboards[uid]["dashboard"]
        (var,) = [v for v in stored["templating"]["list"] if v["name"] == "datasource"]
        assert var["current"] == {
            "selected": False,
            "text": "mspwatch Prometheus",
            "value": "mspwatch-prometheus",
        }
        assert "current" not in next(v for v in model["templating"]["list"] if v["name"] == "datasource")
        assert push.comparable(stored)["panels"] == model["panels"]
    code, out, _ = run(capsys, "--url", grafana.url, "--datasource-url", "http://prom-b:9090", env=env)
    assert code == 0
    assert 'datasource mspwatch-prometheus "mspwatch Prometheus": updated (url differ)' in out.splitlines()
    assert grafana.standin.datasources["mspwatch-prometheus"]["url"] == "http://prom-b:9090"
    assert f"pushed: 0 created, 1 updated, {len(AREAS) + len(COMMITTED)} unchanged" in out.splitlines()
    # pushing without the datasource afterwards puts the committed (unset) variable back
    code, out, _ = run(capsys, "--url", grafana.url, env=env)
    assert f"pushed: 0 created, {len(COMMITTED)} updated, {len(AREAS)} unchanged" in out.splitlines()


def test_folder_prefix(grafana: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "--url", grafana.url, "--folder-prefix", "acme")
    assert code == 0
    assert sorted(grafana.standin.folders) == [f"acme-{a}" for a in AREAS]
    assert grafana.standin.folders["acme-noc"]["title"] == "acme NOC"
    assert grafana.standin.dashboards["mspwatch-noc"]["meta"]["folderUid"] == "acme-noc"


def test_basic_auth_from_the_environment(grafana: Served, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"GRAFANA_USER": "admin", "GRAFANA_PASSWORD": "s3cret-pw"}
    code, _, err = run(capsys, "--url", grafana.url, env=env)
    assert (code, err) == (0, "")
    assert {c.authorization.split()[0] for c in grafana.standin.calls} == {"Basic"}


def test_token_file(grafana: Served, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    code, _, err = run(capsys, "--url", grafana.url, "--token.file", str(token_file), env={})
    assert (code, err) == (0, "")
    assert {c.authorization for c in grafana.standin.calls} == {f"Bearer {TOKEN}"}


def test_bad_token_is_one_line_without_the_token(grafana: Served, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = "glsa_wrong_token_5a4b3c2d1e"
    code, out, err = run(capsys, "--url", grafana.url, env={"GRAFANA_TOKEN": wrong})
    assert code == 1 and out == ""
    assert err == (
        f"grafana push: Grafana at {grafana.url} refused the credentials (401 Invalid API key): check "
        "GRAFANA_TOKEN or --token.file (a service account token), or GRAFANA_USER/GRAFANA_PASSWORD\n"
    )
    assert grafana.standin.writes() == []


def test_forbidden(grafana: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--url", grafana.url, env={"GRAFANA_TOKEN": VIEWER})
    assert code == 1
    assert err == (
        "grafana push: folder mspwatch-backup: forbidden (403 You'll need additional permissions to "
        "perform this action. Permissions needed: folders:create): the service account needs the "
        "Editor role for folders and dashboards, Admin for the datasource\n"
    )
    assert grafana.standin.writes()[0].path == "/api/folders"  # the first write was refused


def test_version_conflict(grafana: Served, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "--url", grafana.url)
    state = grafana.standin
    state._store_dashboard(
        {**state.dashboards["mspwatch-noc"]["dashboard"], "title": "edited"}, "mspwatch-noc"
    )
    state.edited_after_read.add("mspwatch-noc")  # saved again in the UI between our read and write
    code, _, err = run(capsys, "--url", grafana.url)
    assert code == 1
    assert err == (
        "grafana push: dashboard mspwatch-noc: changed in Grafana while this push ran "
        "(412 version-mismatch); run the push again\n"
    )
    assert state.dashboards["mspwatch-noc"]["dashboard"]["title"] == "edited"  # not replaced
    code, _, _ = run(capsys, "--url", grafana.url)  # the advice works
    assert code == 0 and state.dashboards["mspwatch-noc"]["dashboard"]["title"] == "NOC overview"


def test_same_title_in_folder(grafana: Served, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "--url", grafana.url)
    state = grafana.standin
    del state.dashboards["mspwatch-sla"]
    state._store_dashboard({"uid": "someone-elses", "title": "SLA and error budget"}, "mspwatch-sla")
    code, _, err = run(capsys, "--url", grafana.url)
    assert code == 1
    assert err == (
        "grafana push: dashboard mspwatch-sla: another dashboard in the same folder has this title "
        "(412 name-exists); rename or delete that one in Grafana, then push again\n"
    )


def test_provisioned_dashboard_is_refused_before_anything_is_written(
    grafana: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    model = json.loads((JSON_DIR / "noc" / "mspwatch-alerts.json").read_text())
    grafana.standin.provision_dashboard(model, "")
    code, _, err = run(capsys, "--url", grafana.url)
    assert code == 1
    assert err == (
        "grafana push: dashboard mspwatch-alerts: provisioned from a file in this Grafana "
        "(mspwatch-alerts.json), which the API cannot overwrite: update that file instead, or "
        "remove the provisioning and push again\n"
    )
    assert grafana.standin.writes() == []


def test_provisioned_refusal_on_save(grafana: Served, capsys: pytest.CaptureFixture[str]) -> None:
    # A Grafana whose read does not say "provisioned" (the flag came with 5.x): the save's
    # 400 "Cannot save provisioned dashboard" is the refusal.
    model = json.loads((JSON_DIR / "noc" / "mspwatch-alerts.json").read_text())
    grafana.standin.provision_dashboard({**model, "title": "old"}, "")
    grafana.standin.dashboards["mspwatch-alerts"]["meta"]["provisioned"] = False
    code, _, err = run(capsys, "--url", grafana.url)
    assert code == 1
    assert err.startswith(
        "grafana push: dashboard mspwatch-alerts: Grafana refuses to overwrite a file-provisioned "
        "dashboard (400 Cannot save provisioned dashboard);"
    )
    assert grafana.standin.dashboards["mspwatch-alerts"]["dashboard"]["title"] == "old"


def test_read_only_datasource(grafana: Served, capsys: pytest.CaptureFixture[str]) -> None:
    grafana.standin.datasources["mspwatch-prometheus"] = {
        "uid": "mspwatch-prometheus", "name": "Prometheus", "readOnly": True, "type": "prometheus",
    }  # fmt: skip
    code, _, err = run(capsys, "--url", grafana.url, "--datasource-url", "http://p:9090")
    assert code == 1
    assert err == (
        "grafana push: datasource mspwatch-prometheus: provisioned from a file in this Grafana "
        "(read-only); change it there, or push without --datasource-url\n"
    )


def test_unreachable_port(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(capsys, "--url", url)
    assert (code, out) == (1, "")
    assert err == f"grafana push: cannot reach Grafana at {url}: connection refused\n"


def test_endpoint_that_accepts_and_never_answers_is_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        code, out, err = run(capsys, "--url", url, "--timeout", "500ms")
    assert (code, out) == (1, "")
    assert err == (
        f"grafana push: reading Grafana's version: Grafana at {url} did not answer within 0.5s (--timeout)\n"
    )


def test_a_write_that_is_never_answered_is_bounded_too(
    grafana: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    # Grafana answers the reads, then holds the first dashboard save: every call has the timeout
    grafana.standin.hang.add("/api/dashboards/db")
    code, out, err = run(capsys, "--url", grafana.url, "--timeout", "500ms")
    assert code == 1
    assert err == (
        f"grafana push: dashboard mspwatch-backup: Grafana at {grafana.url} did not answer within "
        "0.5s (--timeout)\n"
    )
    assert out.splitlines()[-1] == 'folder mspwatch-sla "mspwatch SLA": created'  # the folders were written


def test_not_grafana(capsys: pytest.CaptureFixture[str], grafana: Served) -> None:
    # something else answers at the URL: a 404 page for /api/frontend/settings
    code, _, err = run(capsys, "--url", grafana.url + "/not-grafana")
    assert code == 1
    assert err == "grafana push: reading Grafana's version: Grafana answered 404 (Not found)\n"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            ["--url", "http://admin:pw@127.0.0.1:3000"],
            None,
            "--url: put no credentials in the URL; use GRAFANA_TOKEN, --token.file or "
            "GRAFANA_USER/GRAFANA_PASSWORD",
        ),
        (
            ["--url", "ftp://grafana"],
            None,
            "--url: want http://host:port or https://host, got 'ftp://grafana'",
        ),
        (
            ["--url", "http://g"],
            {},
            "no credentials: set GRAFANA_TOKEN (a service account token with the Editor role), "
            "or --token.file, or GRAFANA_USER and GRAFANA_PASSWORD",
        ),
        (
            ["--url", "http://g", "--token.file", "/nonexistent/token"],
            {},
            "--token.file: cannot read /nonexistent/token: No such file or directory",
        ),
        (
            ["--url", "http://g", "--timeout", "soon"],
            None,
            "--timeout: invalid duration 'soon', want a duration such as 500ms, 30s, 1h30m or 7d",
        ),
        (
            ["--url", "http://g", "--dashboards.dir", "/nonexistent/json"],
            None,
            "--dashboards.dir: cannot read /nonexistent/json: No such file or directory",
        ),
        (
            ["--url", "http://g", "--folder-prefix", "a b"],
            None,
            "--folder-prefix: 'a b' must be letters, digits, '-' or '_'",
        ),
        (
            ["--url", "http://g", "--folder-prefix", "x" * 32],
            None,
            f"--folder-prefix: {'x' * 32!r} makes folder uids longer than 40 characters",
        ),
    ],
)
def test_bad_flags(
    capsys: pytest.CaptureFixture[str], argv: list[str], env: dict[str, str] | None, message: str
) -> None:
    code, out, err = run(capsys, *argv, env=env)
    assert (code, out, err) == (1, "", f"grafana push: {message}\n")


def test_token_never_in_output_or_logs(
    grafana: Served, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every library's debug logging, niquests and urllib3 included
    outputs = []
    for token in (TOKEN, VIEWER, "glsa_never_valid_99887766"):
        for argv in ([], ["--dry-run"], ["--datasource-url", "http://p:9090"]):
            _, out, err = run(capsys, "--url", grafana.url, *argv, env={"GRAFANA_TOKEN": token})
            outputs.append(out + err)
        _, out, err = run(capsys, "--url", f"http://127.0.0.1:{free_port()}", env={"GRAFANA_TOKEN": token})
        outputs.append(out + err)
        for text in [*outputs, caplog.text]:
            assert token not in text
    assert any("refused the credentials" in o for o in outputs)  # the failures did happen


def test_cli_end_to_end_in_a_subprocess(grafana: Served) -> None:
    # the installed entry point's path: argv parsing, the subcommand table, exit code, stderr
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "GRAFANA_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "mspwatch.cli", "grafana", "push", "--url", grafana.url]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert (first.returncode, first.stderr) == (0, "")
    second = subprocess.run(
        [*cmd, "--dry-run"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert second.returncode == 0
    assert second.stdout.splitlines()[-2] == (
        f"dry run: 0 to create, 0 to update, {len(AREAS) + len(COMMITTED)} unchanged; nothing written"
    )
    env["GRAFANA_TOKEN"] = "glsa_wrong_in_subprocess_1234"
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1 and bad.stdout == ""
    assert len(bad.stderr.splitlines()) == 1 and "Traceback" not in bad.stderr
    assert "glsa_wrong_in_subprocess_1234" not in bad.stderr


def test_standin_refuses_bodies_that_do_not_match_the_api(grafana: Served) -> None:
    import niquests

    headers = {"Authorization": f"Bearer {ADMIN['GRAFANA_TOKEN']}"}
    bad_ds = {"name": "p", "type": "prometheus", "access": "browser"}
    cases = [
        ("POST", "/api/dashboards/db", {"folderUid": "x"}, 400, "bad request data: dashboard is required"),
        ("POST", "/api/dashboards/db", {"dashboard": {"uid": "u"}, "force": True}, 400,
         "bad request data: unknown field 'force'"),
        ("POST", "/api/folders", {"uid": "x" * 41, "title": "t"}, 400,
         "uid contains illegal characters or is longer than 40"),
        ("PUT", "/api/folders/none", {"title": "t"}, 404, "folder not found"),
        ("POST", "/api/datasources", bad_ds, 400, "bad request data: access must be proxy or direct"),
    ]  # fmt: skip
    with niquests.Session() as s:
        for method, path, body, status, message in cases:
            r = s.request(method, grafana.url + path, json=body, headers=headers, timeout=10)
            assert (r.status_code, r.json()["message"]) == (status, message), path
        r = s.get(grafana.url + "/api/folders/x", timeout=10)
        assert (r.status_code, r.json()["message"]) == (401, "Unauthorized")
