"""The compose ``demo`` profile's site (compose/demo/, ``python -m mspwatch.demo.compose_site``):
committed as the generator writes it, mounted by compose.yaml in place of the operator's
files, every address it names served by a container of the profile, and every config loading
with the exporters' own loaders and passing ``mspwatch targets``' cross-check.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mspwatch.demo import compose_site
from mspwatch.exporters.backup.config import load_config as load_backup
from mspwatch.exporters.m365.config import load_config as load_m365
from mspwatch.exporters.patch.config import load_config as load_patch
from mspwatch.exporters.snmp.config import load_config as load_snmp
from mspwatch.inventory import load_inventory
from mspwatch.simulators.estate import backup_data
from mspwatch.targets import generate as targets_generate
from tests.backup.conftest import Exporter, value
from tests.conftest import ROOT, assert_golden, require_tool
from tests.stack.test_compose import PASSWORD, compose_binary

DEMO = ROOT / "compose" / "demo"


def test_the_committed_demo_site_is_what_the_generator_writes(tmp_path: Path, update_goldens: bool) -> None:
    files = compose_site.generate(tmp_path)
    # Input, not output: demo.env. (No certificate or key: the graph-tls container makes them.)
    inputs = {"demo.env"}
    committed = {str(p.relative_to(DEMO)) for p in DEMO.rglob("*") if p.is_file()} - inputs
    assert committed == set(files), "run: python -m mspwatch.demo.compose_site --out=compose/demo"
    for rel, text in files.items():
        assert_golden(DEMO / rel, text, update_goldens)


def resolve(profiles: str | None = None) -> dict[str, Any]:
    """compose.yaml's services as `docker compose --env-file .env --env-file demo/demo.env`
    sees them (``profiles``: COMPOSE_PROFILES from the environment instead of demo.env's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GF_", "MSPWATCH_", "PROMETHEUS_"))}
    env.pop("COMPOSE_PROFILES", None)
    env["GF_ADMIN_PASSWORD"] = PASSWORD
    if profiles is not None:
        env["COMPOSE_PROFILES"] = profiles
    args = [str(compose_binary()), "--env-file", ".env.example", "--env-file", "demo/demo.env"]
    proc = subprocess.run(
        [*args, "config", "--format", "json"],
        cwd=ROOT / "compose",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout)["services"])


@pytest.fixture(scope="module")
def demo_services() -> dict[str, Any]:
    return resolve()


def test_the_demo_env_mounts_the_demo_site_for_the_exporters_and_prometheus(
    demo_services: dict[str, Any],
) -> None:
    for name in ("snmp-exporter", "backup-exporter", "m365-exporter", "patch-exporter", "inventory-exporter"):
        mounts = {v["target"]: (v["source"], v.get("read_only")) for v in demo_services[name]["volumes"]}
        assert mounts["/etc/mspwatch"] == (str(DEMO / "site"), True), name
        assert mounts["/run/secrets/mspwatch"] == (str(DEMO / "secrets" / "exporters"), True), name
    mounts = {v["target"]: v["source"] for v in demo_services["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus/targets"] == str(DEMO / "targets")
    # COMPOSE_PROFILES=demo in demo.env: the simulators come up with the stack.
    assert {"snmpsim", "veeam-acme-vbr", "veeam-bolt-vbr", "ninjaone-simulator"} <= set(demo_services)


def test_every_address_of_the_demo_site_is_a_container_of_the_profile(demo_services: dict[str, Any]) -> None:
    inv = load_inventory(DEMO / "site" / "inventory.yml")
    aliases = demo_services["snmpsim"]["networks"]["default"]["aliases"]
    hosts = [d.address.rsplit(":", 1)[0] for c in inv.customers for s in c.sites for d in s.devices]
    assert sorted(aliases) == sorted(hosts) == sorted(compose_site.device_hosts())
    assert len(hosts) == 15
    entry = demo_services["snmpsim"]["entrypoint"]
    assert "--agent-udpv4-endpoint=0.0.0.0:1161" in entry
    urls = [s.url for c in inv.customers for s in [*c.backup_sources, *c.patch_sources] if hasattr(s, "url")]
    assert len(urls) == 4
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        svc = demo_services[parts.hostname or ""]
        assert f"--listen=0.0.0.0:{parts.port}" in svc["command"], url
    # Every scenario a simulator container is given is in the image (the repository's simulators/).
    for name, svc in demo_services.items():
        for arg in svc.get("command") or []:
            if arg.startswith("--scenario=/opt/mspwatch/"):
                assert (ROOT / arg.removeprefix("--scenario=/opt/mspwatch/")).is_file(), name
    # The v3 keys snmpsim is given are the ones the exporter reads.
    secrets = DEMO / "secrets" / "exporters"
    assert f"--v3-auth-key={(secrets / 'snmp-v3-auth').read_text()}" in entry
    assert f"--v3-priv-key={(secrets / 'snmp-v3-priv').read_text()}" in entry


def test_the_demo_configs_load_and_pass_the_targets_cross_check(tmp_path: Path, graph_tls: Path) -> None:
    """As the containers see them: secrets at /run/secrets/mspwatch and the Graph CA in the
    demo-graph-tls volume, here moved to a copy and to what the graph-tls command wrote."""
    site = tmp_path / "site"
    shutil.copytree(DEMO / "site", site)
    secrets = DEMO / "secrets" / "exporters"
    for path in site.glob("*.yml"):
        text = path.read_text().replace(compose_site.SECRETS, str(secrets))
        path.write_text(text.replace(compose_site.GRAPH_CA, str(graph_tls / "ca.pem")))
    snmp = load_snmp(site / "snmp.yml")
    assert snmp.auths["acme-core-v3"].auth_password.reveal() == (secrets / "snmp-v3-auth").read_text()
    load_backup(site / "backup.yml")
    load_m365(site / "m365.yml")
    load_patch(site / "patch.yml")
    args = argparse.Namespace(
        inventory=site / "inventory.yml",
        output_dir=tmp_path / "targets",
        alertmanager_base=None,
        alertmanager_output=None,
        snmp_config=site / "snmp.yml",
        backup_config=site / "backup.yml",
        m365_config=site / "m365.yml",
        patch_config=site / "patch.yml",
    )
    files = targets_generate(args)
    # What `docker compose run --rm targets` would write is what is committed.
    assert {p.name: t for p, t in files.items()} == {
        p.name: p.read_text() for p in (DEMO / "targets").glob("*.json")
    }


def test_every_file_a_container_is_told_to_read_is_there_with_the_demo_site() -> None:
    """With demo.env every operator file is the committed demo's, so every path a command line
    names below a bind mount must exist (a glob must match): configs, rules, scenarios."""
    checked = []
    for name, svc in resolve("demo,scale,tools").items():
        binds = {v["target"]: Path(v["source"]) for v in svc.get("volumes", []) if v["type"] == "bind"}
        args = [*(svc.get("entrypoint") or []), *(svc.get("command") or [])]
        for arg in args:
            if arg.startswith("--out"):
                continue  # what a tool writes (--out, --output.dir), not what it reads
            value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
            for target, source in binds.items():
                if value == target:  # a file, or a directory (--tls-dir)
                    assert source.exists(), f"{name}: {arg}"
                    checked.append(f"{name}: {arg}")
                elif value.startswith(target + "/"):
                    rel = value.removeprefix(target + "/")
                    found = list(source.glob(rel)) if "*" in rel else [source / rel]
                    assert found and all(p.exists() for p in found), f"{name}: {arg}"
                    checked.append(f"{name}: {arg}")
    # Prometheus' and the shard's configs, the exporters' configs, vmalert's rules, at least.
    assert any("prometheus: --config.file" in c for c in checked)
    assert any("prometheus-shard-1: --config.file" in c for c in checked)
    assert any("vmalert: -rule=" in c for c in checked)
    assert sum("--config.file=/etc/mspwatch/" in c for c in checked) == 4, checked
    assert "inventory-exporter: --inventory.file=/etc/mspwatch/inventory.yml" in checked


def test_every_simulator_container_runs_a_module_of_the_image(demo_services: dict[str, Any]) -> None:
    """``python -m <module>``: the module is in the package the image installs."""
    modules = {
        name: svc["command"][0]
        for name, svc in demo_services.items()
        if svc.get("entrypoint") == ["python", "-m"]
    }
    assert {"backup-files", "demo-receiver", "graph-simulator"} <= set(modules)
    for name, module in modules.items():
        assert module.startswith("mspwatch.") and importlib.util.find_spec(module), name


def _volume(svc: dict[str, Any], source: str) -> dict[str, Any]:
    [vol] = [v for v in svc["volumes"] if v["type"] == "volume" and v["source"] == source]
    return vol


async def test_the_backup_files_container_writes_what_the_backup_exporter_reads(
    demo_services: dict[str, Any], tmp_path: Path
) -> None:
    writer = demo_services["backup-files"]
    out = f"--out={compose_site.BACKUP_FILES}"
    assert writer["command"] == ["mspwatch.simulators.estate.backup_data", out]
    written = _volume(writer, "demo-backup-files")
    read = _volume(demo_services["backup-exporter"], "demo-backup-files")
    assert written["target"] == read["target"] == compose_site.BACKUP_FILES
    assert not written.get("read_only") and read.get("read_only") is True
    # The writer, as the container runs it (once), into a copy of the volume; the demo site
    # with the volume's and the secrets' paths moved there.
    files = tmp_path / "backup-files"
    assert backup_data.main(["--once", f"--out={files}"]) == 0
    site = tmp_path / "site"
    shutil.copytree(DEMO / "site", site)
    for path in site.glob("*.yml"):
        text = path.read_text().replace(compose_site.BACKUP_FILES, str(files))
        path.write_text(text.replace(compose_site.SECRETS, str(DEMO / "secrets" / "exporters")))
    inv = load_inventory(site / "inventory.yml")
    kinds = {s.name: s.kind for c in inv.customers for s in c.backup_sources}
    assert kinds == {
        "acme-vbr": "veeam",
        "acme-offsite": "restic",
        "bolt-vbr": "veeam",
        "bolt-cloud": "folder",
    }
    exporter = Exporter(site / "backup.yml", clock=time.time)
    try:
        restic = await exporter.scrape("acme-offsite")
        cloud = await exporter.scrape("bolt-cloud")
    finally:
        await exporter.close()
    assert (value(restic, "backup_up"), value(restic, "backup_jobs")) == (1, 1)
    assert value(restic, 'backup_repository_check_success{repository="b2:acme-dental-offsite"}') == 1
    # The restore-test log the writer seeds (40 days ago) is read from the volume too.
    tested = value(
        restic, 'backup_restore_test_last_timestamp_seconds{job_name="pms-server:/srv/pms-export"}'
    )
    assert tested is not None and 39 * 86400 < time.time() - tested < 41 * 86400
    assert (value(cloud, "backup_up"), value(cloud, "backup_jobs")) == (1, 2)


def test_the_demo_alertmanager_delivers_every_webhook_to_the_demo_receiver(
    demo_services: dict[str, Any], tmp_path: Path
) -> None:
    mounts = {
        v["target"]: Path(v["source"])
        for v in demo_services["alertmanager"]["volumes"]
        if v["type"] == "bind"
    }
    config_file = mounts["/etc/alertmanager/alertmanager.yml"]
    assert config_file == DEMO / "alertmanager.yml"
    assert mounts["/etc/alertmanager/secrets"] == DEMO / "secrets" / "alertmanager"
    receiver = demo_services["demo-receiver"]["command"]
    assert "--listen=0.0.0.0:9097" in receiver
    config = yaml.safe_load(config_file.read_text())
    hooks = [h for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert len(hooks) >= 5
    for receiver_cfg in config["receivers"]:
        for hook in receiver_cfg.get("webhook_configs", []):
            assert hook["url"] == f"http://demo-receiver:9097/hook/{receiver_cfg['name']}"
            token = hook["http_config"]["authorization"]["credentials_file"]
            assert (
                mounts["/etc/alertmanager/secrets"] / Path(token).relative_to("/etc/alertmanager/secrets")
            ).is_file()
    # Routing, inhibitions and maintenance windows are the estate's (compose/alertmanager.yml,
    # which `mspwatch targets` writes from the same inventory); only where it sends differs.
    estate = yaml.safe_load((ROOT / "compose" / "alertmanager.yml").read_text())
    for key in ("route", "inhibit_rules", "time_intervals"):
        assert config[key] == estate[key], key
    assert [r["name"] for r in config["receivers"]] == [r["name"] for r in estate["receivers"]]
    local = tmp_path / "alertmanager.yml"
    local.write_text(
        config_file.read_text().replace("/etc/alertmanager/secrets", str(mounts["/etc/alertmanager/secrets"]))
    )
    proc = subprocess.run(
        [require_tool("amtool"), "check-config", str(local)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_backup_files_writer_writes_at_start_and_stops_on_sigterm(tmp_path: Path) -> None:
    """A container's stop is a SIGTERM to PID 1, where the default action does nothing."""
    import signal
    import sys

    out = tmp_path / "files"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mspwatch.simulators.estate.backup_data", f"--out={out}", "--every=3600"],
        cwd=ROOT,
    )
    try:
        snapshots = out / backup_data.RESTIC_SNAPSHOTS
        deadline = time.monotonic() + 60
        while not snapshots.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert snapshots.exists() and proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (out / backup_data.DROP_FOLDER / "cloud-backup.jsonl").is_file()
    assert (out / backup_data.RESTORE_TEST_LOG).is_file()


# --- the Graph simulator's certificate (made by the graph-tls container) --------------------


@pytest.fixture(scope="module")
def graph_tls(demo_services: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory the graph-tls container's own command writes (its volume moved here)."""
    out = tmp_path_factory.mktemp("graph-tls")
    _run_graph_tls(demo_services["graph-tls"], out)
    return out


def _run_graph_tls(svc: dict[str, Any], out: Path) -> None:
    """The graph-tls container's command, with its volume at ``out``."""
    volume = next(v["target"] for v in svc["volumes"] if v["source"] == "demo-graph-tls")
    args = [a.replace(volume, str(out)) for a in svc["command"]]
    assert svc["entrypoint"] == ["python", "-m"] and args[0] == "mspwatch.simulators.tls"
    subprocess.run([sys.executable, "-m", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def graph_tls_server(graph_tls: Path) -> Iterator[int]:
    """A TLS server on loopback with that certificate and key (the Graph simulator's in the
    demo profile), answering every GET with ``{}``; yields its port."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(graph_tls / "server.pem", graph_tls / "server-key.pem")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def _get_as(port: int, server_name: str, tmp_path: Path, graph_tls: Path) -> int:
    """GET / from the loopback server through the Microsoft 365 exporter's own HTTP client
    (its TLS context from graph.ca_file), verifying the certificate for ``server_name``."""
    from mspwatch.exporters.graph.client import make_http_client

    site = tmp_path / "site"
    if not site.exists():
        shutil.copytree(DEMO / "site", site)
        for path in site.glob("*.yml"):
            text = path.read_text().replace(compose_site.SECRETS, str(DEMO / "secrets" / "exporters"))
            path.write_text(text.replace(compose_site.GRAPH_CA, str(graph_tls / "ca.pem")))
    config, tenants = load_m365(site / "m365.yml")
    assert [t.name for t in tenants] == ["acme", "bolt"]
    assert config.graph.url == compose_site.GRAPH and config.graph.ca_file == graph_tls / "ca.pem"
    async with make_http_client(config.graph) as client:
        # Connect to 127.0.0.1 (no DNS for graph-simulator here) but send server_name as SNI
        # and verify the certificate against it, as a connection to https://graph-simulator does.
        resp = await client.get(f"https://127.0.0.1:{port}/", extensions={"sni_hostname": server_name})
        return resp.status_code


def _token_get_as(port: int, server_name: str, graph_tls: Path) -> int:
    """The same through the client the exporters' token requests (msal) go through: a
    requests session verifying against graph.ca_file, SNI and the name check ``server_name``."""
    import requests
    from requests.adapters import HTTPAdapter

    from mspwatch.exporters.graph.auth import _BoundedHttp

    class ServerName(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["server_hostname"] = server_name
            super().init_poolmanager(*args, **kwargs)

    session = requests.Session()
    session.mount("https://", ServerName())
    # As exporters/graph/auth.py builds it for a config with graph.ca_file set.
    http = _BoundedHttp(session, str(graph_tls / "ca.pem"), 10.0)
    try:
        return int(http.get(f"https://127.0.0.1:{port}/").status_code)
    finally:
        http.close()


async def test_the_exporters_tls_accepts_the_graph_simulator_by_its_compose_name(
    graph_tls_server: int, tmp_path: Path, graph_tls: Path
) -> None:
    assert await _get_as(graph_tls_server, "graph-simulator", tmp_path, graph_tls) == 200
    assert _token_get_as(graph_tls_server, "graph-simulator", graph_tls) == 200


@pytest.mark.parametrize("name", ["veeam-acme-vbr", "graph-simulator.evil", "graph"])
async def test_the_exporters_tls_refuses_the_certificate_for_another_name(
    graph_tls_server: int, tmp_path: Path, graph_tls: Path, name: str
) -> None:
    import httpx
    import requests

    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await _get_as(graph_tls_server, name, tmp_path, graph_tls)
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        _token_get_as(graph_tls_server, name, graph_tls)


def test_graph_tls_makes_the_certificate_first_and_keeps_it(
    demo_services: dict[str, Any], graph_tls: Path
) -> None:
    import datetime as dt

    from cryptography import x509

    cert = x509.load_pem_x509_certificate((graph_tls / "server.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((graph_tls / "ca.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["graph-simulator", "localhost"]
    cert.verify_directly_issued_by(ca)
    assert cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=3000)
    # A restart keeps them (the running exporters trust that CA).
    before = {p.name: p.read_bytes() for p in graph_tls.iterdir()}
    svc = demo_services["graph-tls"]
    _run_graph_tls(svc, graph_tls)
    assert {p.name: p.read_bytes() for p in graph_tls.iterdir()} == before
    assert svc["restart"] == "no"
    # The simulator serves them and the exporters read the CA from that volume, read-only,
    # each only after graph-tls has completed.
    sim = demo_services["graph-simulator"]
    for name in ("graph-simulator", "m365-exporter", "patch-exporter"):
        mounts = {v["target"]: (v["source"], v.get("read_only")) for v in demo_services[name]["volumes"]}
        assert mounts["/var/lib/mspwatch/graph-tls"] == ("demo-graph-tls", True), name
        assert demo_services[name]["depends_on"]["graph-tls"]["condition"] == "service_completed_successfully"
    assert compose_site.GRAPH_CA == "/var/lib/mspwatch/graph-tls/ca.pem"
    assert "--tls-dir=/var/lib/mspwatch/graph-tls" in sim["command"]
    assert "--listen=0.0.0.0:9443" in sim["command"]


def test_the_demo_site_monitors_both_tenants_and_the_intune_source() -> None:
    inv = load_inventory(DEMO / "site" / "inventory.yml")
    assert [(c.name, [t.name for t in c.m365_tenants]) for c in inv.customers] == [
        ("acme-dental", ["acme"]),
        ("bolt-logistics", ["bolt"]),
    ]
    kinds = sorted((s.name, s.kind) for c in inv.customers for s in c.patch_sources)
    assert kinds == [("acme-ninja", "ninjaone"), ("bolt-intune", "intune"), ("bolt-ninja", "ninjaone")]
    # The tenants are the Graph simulator's estate scenario's, with its client secret.
    from mspwatch.simulators.graph.scenario import load_scenario as load_graph

    scenario = load_graph(compose_site.GRAPH_SCENARIO)
    ids = {t.tenant_id for c in inv.customers for t in c.m365_tenants}
    assert ids <= {str(t.tenant_id) for t in scenario.tenants}
    secret = (DEMO / "secrets" / "exporters" / "m365-client-secret").read_text()
    assert secret == compose_site.demo_secret(scenario)
