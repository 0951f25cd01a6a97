"""The demo's patching area: the NinjaOne simulator serving the ``estate`` scenario (an
organisation per customer, its clock running with real time) and the patch exporter
reading the patch sources of ``simulators/estate/inventory.yml``.

The demo copies ``simulators/estate/patch.yml`` next to its copy of the inventory (whose
NinjaOne URLs ``main.py`` moves to the simulator's port, by ``--port-offset`` too) and gives the
exporter the scenario's client secret in ``MSPWATCH_DEMO_NINJA_SECRET``.
"""

from __future__ import annotations

import shutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from mspwatch.inventory import PatchSource
from mspwatch.simulators.ninjaone.scenario import load_scenario

from .kit import (
    ALERTRULES,
    ESTATE,
    Demo,
    DemoArea,
    Ports,
    check_sources,
    demo_jobs,
    own_pid,
    query,
    start_exporter,
    wait_exporter,
    wait_http,
)

SCENARIO = ESTATE.parent / "ninjaone" / "scenarios" / "estate.yaml"
SECRET_ENV = "MSPWATCH_DEMO_NINJA_SECRET"  # noqa: S105 - the variable's name, not a secret


def sources(demo: Demo) -> list[tuple[str, PatchSource]]:
    """(customer, source) for every patch source of the estate."""
    return [(c.name, s) for c in demo.inventory.customers for s in c.patch_sources]


class PatchArea(DemoArea):
    name = "patch"

    def _estate(self, demo: Demo) -> Path:
        return demo.work / "estate"

    def start(self, demo: Demo) -> None:
        estate = self._estate(demo)  # beside the demo's copy of the inventory
        estate.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ESTATE / "patch.yml", estate / "patch.yml")
        port = demo.ports.ninjaone_simulator
        demo.procs.add(
            "ninjaone-simulator",
            [
                sys.executable,
                "-m",
                "mspwatch.simulators.ninjaone",
                f"--listen=127.0.0.1:{port}",
                f"--scenario={SCENARIO}",
            ],
        )
        demo.env[SECRET_ENV] = next(iter(load_scenario(SCENARIO).clients.values()))
        start_exporter(demo, "patch-exporter", estate / "patch.yml", demo.ports.patch_exporter)

    def scrape_configs(self, ports: Ports, targets_dir: Path) -> list[dict[str, Any]]:
        # A real deployment scrapes every 5 minutes; the demo wants its first answer sooner.
        demo = {"patch": {"scrape_interval": "30s", "scrape_timeout": "20s"}}
        return demo_jobs(["patch", "patch-exporter"], ports, targets_dir, demo)

    def rule_files(self) -> list[Path]:
        return [ALERTRULES / "patch.yml"]

    def wait_ready(self, demo: Demo) -> None:
        wait_http(
            f"http://127.0.0.1:{demo.ports.ninjaone_simulator}/admin/identity",
            demo.procs,
            60,
            expect=own_pid(demo.procs.pids.get("ninjaone-simulator")),
        )
        wait_exporter(demo, "patch", demo.ports.patch_exporter)

    def links(self, demo: Demo) -> list[tuple[str, str]]:
        first = sources(demo)[0][1].name if sources(demo) else "acme-ninja"
        ninja = f"http://127.0.0.1:{demo.ports.ninjaone_simulator}"
        return [
            ("Patch exporter", f"http://127.0.0.1:{demo.ports.patch_exporter}/patch?target={first}"),
            (f"NinjaOne simulator ({len(sources(demo))} sources)", f"{ninja} (clock: {ninja}/admin/clock)"),
        ]

    def check(self, demo: Demo) -> bool:
        expected = sources(demo)
        return check_sources(
            demo,
            "patch",
            'patch_up{job="patch"}',
            len(expected),
            "patch sources",
            lambda up: summary_lines(demo.prometheus_url, expected, up),
        )


def summary_lines(
    prometheus: str, expected: list[tuple[str, PatchSource]], up: list[dict[str, Any]]
) -> list[str]:
    """One line per customer's source: up, devices, compliant share against the target, why not.

    patch acme-dental (acme-ninja): up, 7 devices, 5 compliant (71%, target 95%); not
    compliant: missing_critical 1, not_reporting 1
    """
    state = {s["metric"].get("instance", ""): s["value"][1] for s in up}
    devices: dict[str, list[float]] = defaultdict(list)
    for s in query(prometheus, 'patch_device_compliant{job="patch"}'):
        devices[s["metric"].get("instance", "")].append(float(s["value"][1]))
    target = {
        s["metric"].get("instance", ""): float(s["value"][1])
        for s in query(prometheus, 'patch_policy_target_compliance_ratio{job="patch"}')
    }
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for s in query(prometheus, 'patch_device_noncompliant{job="patch"} == 1'):
        reasons[s["metric"].get("instance", "")][s["metric"].get("reason", "")] += 1
    lines = []
    for customer, source in expected:
        name = source.name
        status = {"1": "up", "0": "down"}.get(state.get(name, ""), "no data yet")
        parts = [status]
        if name in devices:
            total, ok = len(devices[name]), int(sum(devices[name]))
            share = f"{100 * ok / total:.0f}%" if total else "-"
            goal = f", target {100 * target[name]:.0f}%" if name in target else ""
            parts.append(f"{total} devices, {ok} compliant ({share}{goal})")
        why = ", ".join(f"{r} {n}" for r, n in sorted(reasons[name].items()))
        line = f"patch {customer} ({name}): " + ", ".join(parts)
        lines.append(line + (f"; not compliant: {why}" if why else ""))
    return lines
