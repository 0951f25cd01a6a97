"""compose/prometheus.yml, as the demo adapts it, run by a real Prometheus: every file_sd
target of the estate becomes a scrape of its exporter with `?target=` (and the SNMP auth and
module), carrying the inventory's labels; the exporters' own jobs scrape their /metrics.

No exporter runs here: the targets are down, and what is checked is where Prometheus would
scrape and with which labels (its /api/v1/targets).
"""

from __future__ import annotations

import dataclasses
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mspwatch.common.procs import free_port, wait_for_url
from mspwatch.demo.main import Ports, areas, prometheus_config
from mspwatch.inventory import load_inventory, write_targets
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]


def _targets(url: str) -> list[dict[str, Any]]:
    end = time.monotonic() + 60
    while True:
        active: list[dict[str, Any]] = httpx.get(f"{url}/api/v1/targets", timeout=5).json()["data"][
            "activeTargets"
        ]
        if {t["labels"]["job"] for t in active} >= {"snmp", "icmp", "backup", "m365", "prometheus"}:
            return active
        if time.monotonic() > end:
            pytest.fail(f"Prometheus discovered only {sorted({t['labels']['job'] for t in active})}")
        time.sleep(0.5)


def test_prometheus_scrapes_each_target_through_its_exporter(tmp_path: Path, start_process: Any) -> None:
    inventory = load_inventory(ROOT / "simulators" / "estate" / "inventory.yml")
    write_targets(inventory, tmp_path / "targets")
    ports = dataclasses.replace(Ports(), prometheus=free_port())  # only Prometheus listens
    config = prometheus_config(ports, tmp_path / "targets", areas())
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    prom = start_process(
        [
            require_tool("prometheus"),
            f"--config.file={path}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{ports.prometheus}",
        ],
        "prometheus",
    )
    # Ready, not just listening: before that its API answers 503 with a text body.
    wait_for_url(f"http://127.0.0.1:{ports.prometheus}/-/ready", timeout=60, proc=prom)
    # The machine is shared: prove it is our Prometheus that answers on the port.
    flags = httpx.get(f"http://127.0.0.1:{ports.prometheus}/api/v1/status/flags", timeout=5).json()["data"]
    assert flags["config.file"] == str(path), "another process answers on the port"
    active = _targets(f"http://127.0.0.1:{ports.prometheus}")
    by_job: dict[str, list[dict[str, Any]]] = {}
    for target in active:
        by_job.setdefault(target["labels"]["job"], []).append(target)

    devices = [(c, s, d) for c in inventory.customers for s in c.sites for d in s.devices]
    assert len(by_job["snmp"]) == len([d for _, _, d in devices if d.snmp_auth])
    assert len(by_job["icmp"]) == len([d for _, _, d in devices if d.ping])
    core = next(
        t for t in by_job["snmp"] if t["labels"]["device"] == "core-sw1" and t["labels"]["site"] == "hq"
    )
    url = urllib.parse.urlsplit(core["scrapeUrl"])
    assert (url.netloc, url.path) == (f"127.0.0.1:{ports.snmp_exporter}", "/snmp")
    assert urllib.parse.parse_qs(url.query) == {"auth": ["acme-core-v3"], "target": ["127.0.10.1:1161"]}
    assert core["labels"] == {
        "job": "snmp",
        "instance": "127.0.10.1:1161",
        "customer": "acme-dental",
        "site": "hq",
        "device": "core-sw1",
        "role": "core",
    }
    ping = next(t for t in by_job["icmp"] if t["labels"]["instance"] == "127.0.10.1")
    url = urllib.parse.urlsplit(ping["scrapeUrl"])
    assert (url.netloc, url.path) == (f"127.0.0.1:{ports.blackbox}", "/probe")
    assert urllib.parse.parse_qs(url.query) == {"module": ["icmp"], "target": ["127.0.10.1"]}

    for job, port, target, labels in (
        ("backup", ports.backup_exporter, "acme-vbr", {"customer": "acme-dental", "source_kind": "veeam"}),
        ("m365", ports.m365_exporter, "bolt", {"customer": "bolt-logistics", "tenant": "bolt"}),
    ):
        found = next(t for t in by_job[job] if t["labels"]["instance"] == target)
        assert found["scrapeUrl"] == f"http://127.0.0.1:{port}/{job}?target={target}"
        assert found["labels"] == {"job": job, "instance": target, **labels}

    for job, port in (
        ("snmp-exporter", ports.snmp_exporter),
        ("blackbox", ports.blackbox),
        ("backup-exporter", ports.backup_exporter),
        ("m365-exporter", ports.m365_exporter),
        ("alertmanager", ports.alertmanager),
        ("prometheus", ports.prometheus),
    ):
        assert [t["scrapeUrl"] for t in by_job[job]] == [f"http://127.0.0.1:{port}/metrics"], job
