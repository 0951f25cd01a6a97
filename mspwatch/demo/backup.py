"""The demo's backup area: each customer's Veeam B&R server (the Veeam simulator on the
customer's own loopback address, clock running with real time), restic and drop-folder files
written on a schedule, and the backup exporter reading them all.

The demo copies ``simulators/estate/backup.yml`` next to its own copy of the estate inventory
in ``<data dir>/estate/`` (written once by ``main.py``, with the Veeam ports moved by
``--port-offset``) and writes the file-based sources there, so the inventory's relative paths
resolve.
"""

from __future__ import annotations

import shutil
import sys
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any

from mspwatch.inventory import VeeamSource
from mspwatch.simulators.estate.backup_data import REFRESH_SECONDS, write_backup_files

from .kit import (
    ALERTRULES,
    ESTATE,
    ROOT,
    Demo,
    DemoArea,
    Ports,
    alert_rules_line,
    demo_jobs,
    own_pid,
    query,
    start_exporter,
    wait_all_up,
    wait_exporter,
    wait_http,
)

SCENARIOS = ROOT / "simulators" / "veeam" / "scenarios"
DEMO_VEEAM_PASSWORD = "Sim-Passw0rd!"  # noqa: S105 - the simulators' own, in their scenario files


def scenario_for(source: str) -> Path:
    """The simulator scenario of a Veeam source of the estate: estate-<source>.yaml."""
    return SCENARIOS / f"estate-{source}.yaml"


def materialise_estate(estate: Path, now: float) -> Path:
    """Write the exporter's config and the file-based sources beside the inventory; return backup.yml."""
    estate.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ESTATE / "backup.yml", estate / "backup.yml")
    write_backup_files(estate, now)
    return estate / "backup.yml"


class BackupArea(DemoArea):
    name = "backup"

    def __init__(self) -> None:
        self._refreshed = 0.0

    def _estate(self, demo: Demo) -> Path:
        return demo.work / "estate"

    def _veeam_sources(self, demo: Demo) -> list[VeeamSource]:
        sources = [s for c in demo.inventory.customers for s in c.backup_sources]
        return [s for s in sources if isinstance(s, VeeamSource)]

    def start(self, demo: Demo) -> None:
        estate = self._estate(demo)
        materialise_estate(estate, time.time())
        self._refreshed = time.monotonic()
        for source in self._veeam_sources(demo):
            host = urllib.parse.urlsplit(source.url).hostname
            demo.procs.add(
                f"veeam-{source.name}",
                [
                    sys.executable,
                    "-m",
                    "mspwatch.simulators.veeam",
                    f"--listen={host}:{demo.ports.veeam_simulator}",
                    f"--scenario={scenario_for(source.name)}",
                    "--clock=now",
                ],
            )
        demo.env["MSPWATCH_DEMO_VEEAM_PASSWORD"] = DEMO_VEEAM_PASSWORD
        start_exporter(demo, "backup-exporter", estate / "backup.yml", demo.ports.backup_exporter)

    def scrape_configs(self, ports: Ports, targets_dir: Path) -> list[dict[str, Any]]:
        # A real deployment scrapes every 2 minutes (backup state changes slowly); the
        # demo wants its first answer quickly.
        demo = {"backup": {"scrape_interval": "30s", "scrape_timeout": "25s"}}
        return demo_jobs(["backup", "backup-exporter"], ports, targets_dir, demo)

    def rule_files(self) -> list[Path]:
        return [ALERTRULES / "backup.yml"]

    def wait_ready(self, demo: Demo) -> None:
        for source in self._veeam_sources(demo):
            host = urllib.parse.urlsplit(source.url).hostname
            wait_http(
                f"http://{host}:{demo.ports.veeam_simulator}/admin/identity",
                demo.procs,
                60,
                expect=own_pid(demo.procs.pids.get(f"veeam-{source.name}")),
            )
        wait_exporter(demo, "backup", demo.ports.backup_exporter)

    def links(self, demo: Demo) -> list[tuple[str, str]]:
        rows = [("Backup exporter", f"http://127.0.0.1:{demo.ports.backup_exporter}/backup?target=acme-vbr")]
        for source in self._veeam_sources(demo):
            host = urllib.parse.urlsplit(source.url).hostname
            rows.append((f"Veeam simulator ({source.name})", f"http://{host}:{demo.ports.veeam_simulator}"))
        rows.append(
            (
                "record a restore test",
                f"mspwatch backup record-restore-test --config.file={self._estate(demo) / 'backup.yml'} "
                "--source=acme-vbr --job='PMS database' --result=success",
            )
        )
        return rows

    def tick(self, demo: Demo) -> None:
        if time.monotonic() - self._refreshed >= REFRESH_SECONDS:
            write_backup_files(self._estate(demo), time.time())
            self._refreshed = time.monotonic()

    def check(self, demo: Demo) -> bool:
        expected: dict[str, int] = {c.name: len(c.backup_sources) for c in demo.inventory.customers}
        prometheus = demo.prometheus_url
        up = wait_all_up(prometheus, demo.procs, 'backup_up{job="backup"}', sum(expected.values()), 120)
        ok = len(up) >= sum(expected.values()) and all(s["value"][1] == "1" for s in up)
        for line in summary_lines(prometheus, expected, up):
            print(line)
        line, rules = alert_rules_line(demo, "backup")
        print(line)
        return ok and rules > 0


def _by_customer(prometheus: str, promql: str) -> dict[str, dict[str, float]]:
    """{customer: {result-or-"": value}} from a query grouped by customer (and result)."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for s in query(prometheus, promql):
        out[s["metric"].get("customer", "")][s["metric"].get("result", "")] = float(s["value"][1])
    return out


def summary_lines(prometheus: str, expected: dict[str, int], up: list[dict[str, Any]]) -> list[str]:
    """One line per customer: sources up, job results, running, outside RPO, restore tests."""
    sel = '{job="backup"}'
    results = _by_customer(prometheus, f"count by (customer, result) (backup_job_last_result{sel} == 1)")
    running = _by_customer(prometheus, f"count by (customer) (backup_job_running{sel} == 1)")
    outside = _by_customer(
        prometheus,
        f"count by (customer) (backup_job_within_rpo{sel} == 0"
        f" and on (job, instance, job_name) backup_job_enabled{sel} == 1"
        f' unless on (job, instance, job_name) backup_job_last_result{{job="backup", result="none"}} == 1)',
    )
    tested = _by_customer(
        prometheus,
        f"(time() - max by (customer) (backup_restore_test_last_timestamp_seconds{sel})) / 86400",
    )
    lines = []
    for customer, count in expected.items():
        if not count:
            continue
        n_up = sum(1 for s in up if s["metric"].get("customer") == customer and s["value"][1] == "1")
        res = results.get(customer, {})
        jobs = int(sum(res.values()))
        parts = ", ".join(
            f"{int(res[r])} {r}" for r in ("success", "warning", "failed", "none", "unknown") if r in res
        )
        days = tested.get(customer, {}).get("")
        lines.append(
            f"backup {customer}: {n_up} of {count} sources up, {jobs} jobs ({parts or 'none'}), "
            f"{int(running.get(customer, {}).get('', 0))} running, "
            f"{int(outside.get(customer, {}).get('', 0))} outside RPO, "
            + (f"newest restore test {days:.0f}d ago" if days is not None else "no restore test")
        )
    return lines
