"""`make demo` runs: the stack comes up on the simulated estate and Prometheus sees every
device, every backup source and every Microsoft 365 tenant with its customer (and site)
labels; Alertmanager is ready to route what fires."""

from __future__ import annotations

import json
import random
import re
import socket
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import yaml

from mspwatch.demo.alerting import alertmanager_config, count_notifications, webhook_receivers
from mspwatch.demo.m365 import exporter_config
from mspwatch.demo.main import Ports, areas, prometheus_config
from mspwatch.demo.receiver import make_handler
from mspwatch.inventory import load_inventory
from mspwatch.simulators.graph.scenario import SCENARIOS_DIR, load_scenario
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parent.parent


def alert_count(area: str) -> int:
    """The alerts in ``alertrules/<area>.yml``: the demo must load every one."""
    groups = yaml.safe_load((ROOT / "alertrules" / f"{area}.yml").read_text(encoding="utf-8"))["groups"]
    return sum(1 for g in groups for r in g["rules"] if "alert" in r)


def _free_offset() -> int:
    """An offset that makes every demo port free on 127.0.0.1 (random start: two runs on one
    machine, e.g. a developer's and CI's, should not pick the same range)."""
    start = random.randrange(21000, 40000)
    for offset in [*range(start, 40000, 137), *range(21000, start, 137)]:
        ports = Ports().shifted(offset)
        try:
            for port in ports.all():
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return offset
    raise RuntimeError("no free port range")


def test_demo_check(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mspwatch.cli",
            "demo",
            "--check",
            f"--data.dir={tmp_path}",
            f"--port-offset={_free_offset()}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "15 of 15 devices up" in proc.stdout
    assert "snmp_up{customer=acme-dental, site=hq, device=core-sw1} = 1" in proc.stdout
    # One summary line per customer once every backup source has been scraped up; the
    # simulators run on the real clock, so only the stable parts are pinned.
    for customer in ("acme-dental", "bolt-logistics"):
        line = re.search(rf"^backup {customer}: 2 of 2 sources up, 7 jobs \(.*\).*$", proc.stdout, re.M)
        assert line, proc.stdout[-3000:]
        assert "1 failed" in line.group(0) or "2 failed" in line.group(0)
        assert "newest restore test" in line.group(0)
    assert f"backup alert rules: {alert_count('backup')} loaded" in proc.stdout
    # Microsoft 365: every tenant refreshed (up), one line per customer with what the
    # estate scenario serves at its start (the timelines change things only minutes later).
    assert "2 of 2 Microsoft 365 tenants up" in proc.stdout
    assert (
        "m365 acme-dental (tenant acme): up, 6 services (2 degraded), 1 open incident, "
        "3 open advisories, licences O365_BUSINESS_PREMIUM 9/10, SPE_E3 42/40 (+5 warning), "
        "Secure Score 38.5 of 74 (52%), MFA 44 of 57 users, 3 of 4 admins"
    ) in proc.stdout
    assert (
        "m365 bolt-logistics (tenant bolt): up, 4 services (0 degraded), 0 open incidents, "
        "1 open advisory, licences EXCHANGESTANDARD 14/20, SPB 96/100, "
        "Secure Score 47.25 of 76 (62%), MFA 97 of 112 users, 3 of 3 admins"
    ) in proc.stdout
    assert f"m365 alert rules: {alert_count('m365')} loaded" in proc.stdout
    # Patching: one NinjaOne organisation per customer; the scenario's times are relative to
    # its start, so which devices fail the policy does not depend on the day.
    assert "2 of 2 patch sources up" in proc.stdout
    assert (
        "patch acme-dental (acme-ninja): up, 7 devices, 5 compliant (71%, target 95%); "
        "not compliant: missing_critical 1, not_reporting 1"
    ) in proc.stdout
    assert (
        "patch bolt-logistics (bolt-ninja): up, 9 devices, 7 compliant (78%, target 90%); "
        "not compliant: av_outdated 1, reboot_pending 1"
    ) in proc.stdout
    assert f"patch alert rules: {alert_count('patch')} loaded" in proc.stdout
    # Alertmanager: ready, the Prometheus URL's neighbour, and counting per receiver.
    assert re.search(r"^Alertmanager:  http://127\.0\.0\.1:\d+$", proc.stdout, re.M)
    assert "Alertmanager ready, Prometheus sends to it: " in proc.stdout
    assert re.search(
        r"^notifications so far: msp-paging \d+, msp-ticketing \d+, platform-team \d+, "
        r"acme-dental-escalation \d+$",
        proc.stdout,
        re.M,
    ), proc.stdout[-3000:]
    assert (tmp_path / "alertmanager.yml").exists()
    # Every process the demo started is gone again.
    for line in proc.stdout.splitlines():
        if line.startswith("started ") and "(pid " in line:
            pid = int(line.split("(pid ")[1].split(")")[0])
            assert (
                not Path(f"/proc/{pid}").exists()
                or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
            )


def test_port_offset_moves_every_port() -> None:
    assert Ports().shifted(100).all() == [p + 100 for p in Ports().all()]
    assert Ports().backup_exporter == 9817


def test_backup_scrape_job_follows_the_multi_target_pattern(tmp_path: Path) -> None:
    config = prometheus_config(Ports().shifted(5), tmp_path, areas())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert list(jobs) == [
        "snmp",
        "icmp",
        "snmp-exporter",
        "blackbox",
        "backup",
        "backup-exporter",
        "m365",
        "m365-exporter",
        "patch",
        "patch-exporter",
        "alertmanager",
        "prometheus",
    ]
    backup = jobs["backup"]
    assert backup["metrics_path"] == "/backup"
    assert backup["file_sd_configs"] == [{"files": [str(tmp_path / "backup.json")]}]
    assert backup["relabel_configs"][:2] == jobs["snmp"]["relabel_configs"][:2]
    assert backup["relabel_configs"][2] == {"target_label": "__address__", "replacement": "127.0.0.1:9822"}
    assert jobs["backup-exporter"]["static_configs"] == [{"targets": ["127.0.0.1:9822"]}]
    assert [Path(p).name for p in config["rule_files"]] == ["snmp.yml", "backup.yml", "m365.yml", "patch.yml"]
    m365 = jobs["m365"]
    assert m365["metrics_path"] == "/m365"
    assert m365["file_sd_configs"] == [{"files": [str(tmp_path / "m365.json")]}]
    assert m365["relabel_configs"][:2] == jobs["snmp"]["relabel_configs"][:2]
    assert m365["relabel_configs"][2] == {"target_label": "__address__", "replacement": "127.0.0.1:9823"}
    assert jobs["m365-exporter"]["static_configs"] == [{"targets": ["127.0.0.1:9823"]}]
    patch = jobs["patch"]
    assert patch["metrics_path"] == "/patch"
    assert patch["file_sd_configs"] == [{"files": [str(tmp_path / "patch.json")]}]
    assert patch["relabel_configs"][2] == {"target_label": "__address__", "replacement": "127.0.0.1:9824"}
    assert jobs["patch-exporter"]["static_configs"] == [{"targets": ["127.0.0.1:9824"]}]
    assert jobs["icmp"]["relabel_configs"][2] == {
        "target_label": "__address__",
        "replacement": "127.0.0.1:9120",
    }
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:9095"]}]
    assert config["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:9098"]}]}]}
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = subprocess.run(
        [require_tool("promtool"), "check", "config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_m365_inventory_scenario_and_config_agree() -> None:
    """Each demo customer has a tenant the estate scenario serves (same name and tenant id),
    and the demo's exporter config reads the inventory's tenants with the scenario's app."""
    inventory = load_inventory(ROOT / "simulators" / "estate" / "inventory.yml")
    scenario = {t.name: t for t in load_scenario(SCENARIOS_DIR / "estate.yaml").tenants}
    tenants = {t.name: t for c in inventory.customers for t in c.m365_tenants}
    assert {c.name: [t.name for t in c.m365_tenants] for c in inventory.customers} == {
        "acme-dental": ["acme"],
        "bolt-logistics": ["bolt"],
    }
    for name, tenant in tenants.items():
        assert scenario[name].tenant_id == tenant.tenant_id
    config = exporter_config(Ports().shifted(7))
    assert config["inventory"] == "inventory.yml" and "tenants" not in config
    assert config["graph"]["url"] == config["graph"]["authority_host"] == "https://127.0.0.1:9450"
    client_ids = {c.client_id for name in tenants for c in scenario[name].clients}
    assert client_ids == {config["apps"]["msp"]["client_id"]}


def test_alertmanager_demo_config_keeps_the_routing(tmp_path: Path) -> None:
    """Only the webhook URLs and token files differ from the committed config."""
    committed = yaml.safe_load((ROOT / "compose" / "alertmanager.yml").read_text())
    demo = alertmanager_config(Ports().shifted(3), tmp_path / "token")
    for key in ("route", "inhibit_rules", "time_intervals"):
        assert demo[key] == committed[key]
    assert webhook_receivers(demo) == [
        "msp-paging",
        "msp-ticketing",
        "platform-team",
        "acme-dental-escalation",
    ]
    for receiver in demo["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            assert hook["url"] == f"http://127.0.0.1:9100/hook/{receiver['name']}"
            assert hook["http_config"]["authorization"]["credentials_file"] == str(tmp_path / "token")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(demo, sort_keys=False))
    proc = subprocess.run(
        [require_tool("amtool"), "check-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notes = tmp_path / "notifications.jsonl"
    notes.write_text('{"receiver": "msp-ticketing"}\n{"receiver": "msp-ticketing"}\n{"receiver": "msp-pa')
    assert count_notifications(notes) == {"msp-ticketing": 2}


def test_demo_receiver_appends_each_notification(tmp_path: Path) -> None:
    output = tmp_path / "notifications.jsonl"
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(output))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for receiver in ("msp-ticketing", "msp-paging", "msp-ticketing"):
            body = {"receiver": receiver, "status": "firing", "alerts": []}
            assert httpx.post(f"{url}/hook/{receiver}", json=body, timeout=5).status_code == 200
        assert httpx.get(f"{url}/-/healthy", timeout=5).status_code == 200
        assert httpx.post(f"{url}/hook/x", content=b"not json", timeout=5).status_code == 400
    finally:
        server.shutdown()
        server.server_close()
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["receiver"] for line in lines] == ["msp-ticketing", "msp-paging", "msp-ticketing"]
    assert count_notifications(output) == {"msp-ticketing": 2, "msp-paging": 1}
