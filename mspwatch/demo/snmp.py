"""The demo's SNMP area: snmpsim with real device recordings (one loopback address per
device), the SNMP exporter and blackbox_exporter for ping.

The recordings live: uptimes and the counters of interfaces that are up run with the wall
clock from the estate's first start in the data dir (``snmpsim/epoch``), each interface at
its own rate, and the APC UPS is on mains (see ``mspwatch.simulators.snmp.live_lines``).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from mspwatch.inventory import Device
from mspwatch.simulators.snmp import prepare_data_dir, recorded_sysname, snmpsim_command, snmpsim_env

from .kit import (
    ALERTRULES,
    COMPOSE,
    ESTATE,
    Demo,
    DemoArea,
    Ports,
    demo_jobs,
    own_metrics,
    start_exporter,
    tool,
    wait_all_up,
    wait_exporter,
    wait_http,
)
from .runner import DemoError

DEMO_V3_AUTH = "demo-auth-key-1"  # the simulated estate's own keys, not anyone's secret
DEMO_V3_PRIV = "demo-priv-key-1"


SYSNAME = "1.3.6.1.2.1.1.5.0"
# snmpsim indexes every recording at start and opens each on first use: seconds on an idle
# machine, minutes on a busy CI runner.
SNMPSIM_READY_SECONDS = 900


def _devices(demo: Demo) -> list[Device]:
    return [d for c in demo.inventory.customers for s in c.sites for d in s.devices]


def estate_epoch(path: Path) -> float:
    """The Unix time the estate first started in this data dir (written on first use).

    The devices' uptimes and counters count from it, so a restarted demo shows no reboot.
    """
    try:
        return float(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        now = time.time()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{now:.0f}\n", encoding="utf-8")
        return float(f"{now:.0f}")


def recording_of(auth: dict[str, Any]) -> str:
    """The recording an auth of the estate's snmp.yml picks: its community or v3 context."""
    return str(auth.get("context_name") or auth["community"])


def expected_sysnames(devices: list[Device], data: Path) -> dict[str, tuple[str, str]]:
    """{device address: (v2c community, sysName)}: what snmpsim answers for each device."""
    auths = yaml.safe_load((ESTATE / "snmp.yml").read_text(encoding="utf-8"))["auths"]
    out = {}
    for device in devices:
        if device.snmp_auth:
            community = recording_of(auths[device.snmp_auth])
            out[device.address] = (community, recorded_sysname(data / f"{community}.snmprec") or "")
    return out


def answers_as(endpoint: str, community: str, sysname: str) -> str | None:
    """None if the agent at ``endpoint`` answers sysName.0 = ``sysname``, else what it did."""
    proc = subprocess.run(
        [tool("snmpget"), "-v2c", "-c", community, "-t", "15", "-r", "0", "-Oqv", endpoint, SYSNAME],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    answer = proc.stdout.strip().strip('"')
    if proc.returncode != 0:
        return (proc.stderr or proc.stdout).strip() or f"snmpget exited with code {proc.returncode}"
    return None if answer == sysname else f"sysName {answer!r}, not {sysname!r}"


class SnmpArea(DemoArea):
    name = "snmp"

    def _data(self, demo: Demo) -> Path:
        return demo.work / "snmpsim" / "data"

    def start(self, demo: Demo) -> None:
        endpoints = sorted({d.address for d in _devices(demo)})
        demo.env.update(MSPWATCH_DEMO_V3_AUTH=DEMO_V3_AUTH, MSPWATCH_DEMO_V3_PRIV=DEMO_V3_PRIV)
        data = prepare_data_dir(self._data(demo), living_since=estate_epoch(demo.work / "snmpsim" / "epoch"))
        demo.procs.add(
            "snmpsim",
            snmpsim_command(
                data, demo.work / "snmpsim" / "cache", endpoints, DEMO_V3_AUTH, DEMO_V3_PRIV, "stdout"
            ),
            env=snmpsim_env(),
        )
        start_exporter(demo, "snmp-exporter", ESTATE / "snmp.yml", demo.ports.snmp_exporter)
        demo.procs.add(
            "blackbox",
            [
                tool("prometheus-blackbox-exporter"),
                f"--config.file={COMPOSE / 'blackbox.yml'}",
                f"--web.listen-address=127.0.0.1:{demo.ports.blackbox}",
            ],
        )

    def scrape_configs(self, ports: Ports, targets_dir: Path) -> list[dict[str, Any]]:
        fast = {"scrape_interval": "15s", "scrape_timeout": "10s"}  # the demo's, not production's
        names = ["snmp", "icmp", "snmp-exporter", "blackbox"]
        return demo_jobs(names, ports, targets_dir, {"snmp": fast, "icmp": fast})

    def rule_files(self) -> list[Path]:
        return [ALERTRULES / "snmp.yml"]

    def wait_ready(self, demo: Demo) -> None:
        wait_exporter(demo, "snmp", demo.ports.snmp_exporter)
        wait_http(
            f"http://127.0.0.1:{demo.ports.blackbox}/metrics",
            demo.procs,
            60,
            expect=own_metrics("blackbox_exporter_build_info", demo.started),
        )
        # Every device answers with its recording's sysName: snmpsim is serving it, not
        # something else on the port (snmpsim opens a recording on first use: a minute at first).
        print("waiting for snmpsim to answer as every device (a minute on first start) ...", flush=True)
        end = time.monotonic() + SNMPSIM_READY_SECONDS
        for endpoint, (community, sysname) in expected_sysnames(_devices(demo), self._data(demo)).items():
            while (wrong := answers_as(endpoint, community, sysname)) is not None:
                if time.monotonic() > end:
                    raise DemoError(f"snmpsim does not answer as {community} on {endpoint}: {wrong}")
                demo.procs.sleep(0.5)

    def links(self, demo: Demo) -> list[tuple[str, str]]:
        first = _devices(demo)[0]
        return [
            (
                "SNMP exporter",
                f"http://127.0.0.1:{demo.ports.snmp_exporter}/snmp?target={first.address}&auth={first.snmp_auth}",
            ),
            ("blackbox_exporter (ping)", f"http://127.0.0.1:{demo.ports.blackbox}"),
            (
                f"snmpsim ({len(_devices(demo))} devices, {len(demo.inventory.customers)} customers)",
                f"udp 127.0.10.x:{demo.ports.snmp_agent}, log {demo.procs.log('snmpsim')}",
            ),
        ]

    def check(self, demo: Demo) -> bool:
        expected = sum(1 for d in _devices(demo) if d.snmp_auth)
        up = wait_all_up(demo.prometheus_url, demo.procs, "snmp_up", expected, 240)
        for series in sorted(up, key=lambda s: (s["metric"]["customer"], s["metric"]["device"])):
            m = series["metric"]
            where = f"customer={m['customer']}, site={m['site']}, device={m['device']}"
            print(f"snmp_up{{{where}}} = {series['value'][1]}")
        down = [s for s in up if s["value"][1] != "1"]
        # A device Prometheus has no series for yet counts as down, too.
        print(f"\n{len(up) - len(down)} of {max(len(up), expected)} devices up")
        return not down and len(up) >= expected
