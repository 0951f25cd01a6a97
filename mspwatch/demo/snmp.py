"""The demo's SNMP area: snmpsim with real device recordings (one loopback address per
device), the SNMP exporter and blackbox_exporter for ping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mspwatch.inventory import Device
from mspwatch.simulators.snmp import prepare_data_dir, snmpsim_command, snmpsim_env, wait_until_serving

from .kit import (
    ALERTRULES,
    COMPOSE,
    ESTATE,
    Demo,
    DemoArea,
    Ports,
    demo_jobs,
    start_exporter,
    tool,
    wait_all_up,
    wait_http,
    wait_udp,
)

DEMO_V3_AUTH = "demo-auth-key-1"  # the simulated estate's own keys, not anyone's secret
DEMO_V3_PRIV = "demo-priv-key-1"


def _devices(demo: Demo) -> list[Device]:
    return [d for c in demo.inventory.customers for s in c.sites for d in s.devices]


class SnmpArea(DemoArea):
    name = "snmp"

    def start(self, demo: Demo) -> None:
        endpoints = sorted({d.address for d in _devices(demo)})
        demo.env.update(MSPWATCH_DEMO_V3_AUTH=DEMO_V3_AUTH, MSPWATCH_DEMO_V3_PRIV=DEMO_V3_PRIV)
        data = prepare_data_dir(demo.work / "snmpsim" / "data")
        snmpsim = demo.procs.start(
            "snmpsim",
            snmpsim_command(data, demo.work / "snmpsim" / "cache", endpoints, DEMO_V3_AUTH, DEMO_V3_PRIV),
            env=snmpsim_env(),
        )
        print("waiting for snmpsim to open every recording (a minute on first start) ...")
        communities = sorted({p.stem for p in data.glob("*.snmprec")})
        wait_udp(endpoints[0], demo.procs, 120)
        wait_until_serving(snmpsim, endpoints[0], communities, timeout=300)
        start_exporter(demo, "snmp-exporter", ESTATE / "snmp.yml", demo.ports.snmp_exporter)
        demo.procs.start(
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
        wait_http(f"http://127.0.0.1:{demo.ports.snmp_exporter}/-/healthy", demo.procs, 60)

    def banner(self, demo: Demo) -> list[str]:
        return [
            f"SNMP exporter: http://127.0.0.1:{demo.ports.snmp_exporter}/snmp?target=127.0.10.1:1161&auth=acme-core-v3",
            f"{len(_devices(demo))} simulated devices for {len(demo.inventory.customers)} customers",
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
