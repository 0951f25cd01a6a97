"""``mspwatch demo``: the stack on the built-in simulated customer estate.

Starts, on loopback only, area by area: snmpsim with real device recordings (one address
per device), the SNMP exporter and blackbox_exporter for ping; each customer's Veeam B&R
server (the Veeam simulator, clock running with real time), restic and drop-folder backup
files and the backup exporter; each customer's Microsoft 365 tenant (the Graph simulator,
HTTPS, clock running with real time) and the Microsoft 365 exporter; Alertmanager with the
committed routing, its webhooks sent to a receiver that writes notifications.jsonl; then
Prometheus scraping them all through file_sd targets written from
``simulators/estate/inventory.yml``, with the SNMP, backup and Microsoft 365 alert rules loaded
and its alerts sent to that Alertmanager. Everything is stopped by PID on Ctrl-C.
``--check`` waits until every target has been scraped, prints a summary per area and exits.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from typing import Any

import yaml

from mspwatch.inventory import load_inventory, write_targets

from .alerting import AlertingArea
from .backup import BackupArea
from .kit import ESTATE, Demo, DemoArea, Ports, Processes, canonical_prometheus, demo_jobs, tool, wait_http
from .m365 import M365Area
from .patch import PatchArea
from .snmp import SnmpArea

__all__ = ["Ports", "areas", "prometheus_config", "register", "run"]

RESEND_DELAY = "5s"


def areas() -> list[DemoArea]:
    """The demo's areas, in start order. A new area is a DemoArea subclass added here."""
    return [SnmpArea(), BackupArea(), M365Area(), PatchArea(), AlertingArea()]


def prometheus_config(
    ports: Ports, targets_dir: Path, demo_areas: list[DemoArea] | None = None
) -> dict[str, Any]:
    """compose/prometheus.yml as the demo runs it: the areas' jobs, rules and Alertmanager.

    Addresses, paths and intervals change (every 15 s, to answer sooner); the jobs, their
    relabelling and the rules are the stack's own.
    """
    demo_areas = areas() if demo_areas is None else demo_areas
    config = canonical_prometheus()
    config["global"] = {"scrape_interval": "15s", "scrape_timeout": "10s", "evaluation_interval": "15s"}
    rules = [str(path) for area in demo_areas for path in area.rule_files()]
    config.pop("rule_files", None)
    if rules:
        config["rule_files"] = rules
    alertmanagers = [a for area in demo_areas for a in area.alertmanagers(ports)]
    config.pop("alerting", None)
    jobs = [job for area in demo_areas for job in area.scrape_configs(ports, targets_dir)]
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}]}
        jobs += demo_jobs(["alertmanager"], ports, targets_dir)
    config["scrape_configs"] = [*jobs, *demo_jobs(["prometheus"], ports, targets_dir)]
    return config


def run(args: argparse.Namespace) -> int:
    work: Path = args.data_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    ports = Ports().shifted(args.port_offset)
    inventory = load_inventory(ESTATE / "inventory.yml")
    targets = work / "targets"
    write_targets(inventory, targets)
    demo = Demo(work, ports, inventory, targets, Processes(work / "logs"), env=dict(os.environ))
    demo_areas = areas()
    try:
        for area in demo_areas:
            area.start(demo)
        prom_cfg = work / "prometheus.yml"
        prom_cfg.write_text(yaml.safe_dump(prometheus_config(ports, targets, demo_areas), sort_keys=False))
        demo.procs.start(
            "prometheus",
            [
                tool("prometheus"),
                f"--config.file={prom_cfg}",
                f"--storage.tsdb.path={work / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{ports.prometheus}",
                "--storage.tsdb.retention.time=45d",
                # Firing alerts reach Alertmanager within seconds, not the default minute.
                f"--rules.alert.resend-delay={RESEND_DELAY}",
            ],
        )
        wait_http(f"{demo.prometheus_url}/-/ready", demo.procs, 60)
        for area in demo_areas:
            area.wait_ready(demo)
        print(f"\nPrometheus:    {demo.prometheus_url}")
        for area in demo_areas:
            for line in area.banner(demo):
                print(line)
        print()
        if args.check:
            results = [area.check(demo) for area in demo_areas]  # every area reports
            return 0 if all(results) else 1
        print("Ctrl-C stops everything.")
        stop = {"flag": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
        try:
            while not stop["flag"]:
                demo.procs.check_alive()
                for area in demo_areas:
                    area.tick(demo)
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        demo.procs.stop_all()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo",
        help="run the stack on the built-in simulated customer estate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data.dir",
        dest="data_dir",
        type=Path,
        default=Path("demo-data"),
        help="where the demo keeps its data and logs (default: ./demo-data)",
    )
    defaults = ", ".join(f"{name} {port}" for name, port in vars(Ports()).items())
    p.add_argument(
        "--port-offset",
        type=int,
        default=0,
        help=f"add this to every listening port ({defaults})",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="wait until every device, backup source and Microsoft 365 tenant has been scraped, "
        "print a summary and exit",
    )
    p.set_defaults(func=run)
