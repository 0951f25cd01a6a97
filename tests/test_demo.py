"""`make demo` runs: the stack comes up on the simulated estate and Prometheus sees every
device and every backup source with its customer (and site) labels."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from mspwatch.demo import Ports, areas, prometheus_config
from tests.conftest import require_tool


def _free_offset() -> int:
    """An offset that makes every demo port free on 127.0.0.1."""
    for offset in range(21000, 40000, 137):
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
    assert "backup alert rules: 14 loaded" in proc.stdout
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
    assert list(jobs) == ["snmp", "icmp", "backup", "mspwatch-exporters"]
    backup = jobs["backup"]
    assert backup["metrics_path"] == "/backup"
    assert backup["file_sd_configs"] == [{"files": [str(tmp_path / "backup.json")]}]
    assert backup["relabel_configs"][:2] == jobs["snmp"]["relabel_configs"][:2]
    assert backup["relabel_configs"][2] == {"target_label": "__address__", "replacement": "127.0.0.1:9822"}
    assert "127.0.0.1:9822" in jobs["mspwatch-exporters"]["static_configs"][0]["targets"]
    assert [Path(p).name for p in config["rule_files"]] == ["backup.yml"]
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
