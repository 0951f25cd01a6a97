"""The demo's availability area: the inventory-state exporter on the demo's copy of the
inventory, and the rules the SLA board and the wall screen read (the device-minutes and
reachability of availability.yml, the fleet counts of recording.yml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .kit import ALERTRULES, Demo, DemoArea, Ports, demo_jobs, start_exporter, wait_all_up, wait_exporter

# slo.yml and slo-targets.yml come with the alerting area (its Watchdog and platform alerts).
RULES = ("availability.yml", "recording.yml")


def inventory_instance(ports: Ports) -> str:
    """The ``instance`` the demo's scrape of job ``inventory`` gives the inventory exporter's
    series (its one static target); the history is written with it, so the two are one series.

    >>> inventory_instance(Ports().shifted(100))
    '127.0.0.1:9921'
    """
    [job] = demo_jobs(["inventory"], ports, Path())
    [target] = job["static_configs"][0]["targets"]
    return str(target)


class AvailabilityArea(DemoArea):
    name = "availability"

    def start(self, demo: Demo) -> None:
        inventory = demo.work / "estate" / "inventory.yml"  # the demo's copy, ports moved
        start_exporter(demo, "inventory-exporter", inventory, demo.ports.inventory_exporter)

    def scrape_configs(self, ports: Ports, targets_dir: Path) -> list[dict[str, Any]]:
        fast = {"inventory": {"scrape_interval": "15s", "scrape_timeout": "10s"}}
        return demo_jobs(["inventory", "inventory-exporter"], ports, targets_dir, fast)

    def rule_files(self) -> list[Path]:
        return [ALERTRULES / name for name in RULES]

    def wait_ready(self, demo: Demo) -> None:
        wait_exporter(demo, "inventory", demo.ports.inventory_exporter)

    def links(self, demo: Demo) -> list[tuple[str, str]]:
        return [("Inventory exporter", f"http://127.0.0.1:{demo.ports.inventory_exporter}/inventory")]

    def check(self, demo: Demo) -> bool:
        up = wait_all_up(demo.prometheus_url, demo.procs, 'inventory_up{job="inventory"}', 1, 120)
        devices = sum(len(s.devices) for c in demo.inventory.customers for s in c.sites)
        print(f"inventory exporter: {len(up)} target up, {devices} devices counted by the SLO rules")
        return bool(up)
