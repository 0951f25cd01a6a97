"""The demo's patching area: the NinjaOne simulator serving the ``estate`` scenario (an
organisation per customer, its clock running with real time), Bolt's Intune tenant in the
Graph simulator (the Microsoft 365 area starts it), and the patch exporter reading the
patch sources of ``simulators/estate/inventory.yml``.

The demo writes ``simulators/estate/patch.yml`` next to its copy of the inventory (whose
NinjaOne URLs ``main.py`` moves to the simulator's port, by ``--port-offset`` too), with the
Graph URLs on the Graph simulator's port and the quality-update table dated on the latest
two Patch Tuesdays, so the Intune devices tell the same story on any day. The exporter gets
the NinjaOne scenario's client secret in ``MSPWATCH_DEMO_NINJA_SECRET`` and the Graph app's
in ``MSPWATCH_DEMO_M365_SECRET`` (set by the Microsoft 365 area).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from mspwatch.exporters.patch.policy import last_patch_tuesday
from mspwatch.inventory import IntuneSource, PatchSource
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


def patch_tuesdays(now: float) -> tuple[date, date]:
    """The latest Patch Tuesday (UTC) at or before ``now`` and the one before it.

    >>> patch_tuesdays(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    (datetime.date(2026, 11, 10), datetime.date(2026, 10, 13))
    """
    utc = ZoneInfo("UTC")
    latest = last_patch_tuesday(now, utc)
    before = last_patch_tuesday(latest - 1, utc)
    return datetime.fromtimestamp(latest, UTC).date(), datetime.fromtimestamp(before, UTC).date()


def exporter_config(ports: Ports, now: float | None = None) -> dict[str, Any]:
    """``simulators/estate/patch.yml`` with the Graph URLs on the demo's simulator port and
    its quality-update table (oldest revision first) dated on the latest two Patch Tuesdays."""
    config: dict[str, Any] = yaml.safe_load((ESTATE / "patch.yml").read_text(encoding="utf-8"))
    url = f"https://127.0.0.1:{ports.graph_simulator}"
    config["graph"].update(url=url, authority_host=url)
    latest, before = patch_tuesdays(time.time() if now is None else now)
    table = sorted(config["intune"]["quality_updates"], key=lambda e: int(e["revision"]))
    for entry, released in zip(table, (before, latest), strict=True):
        entry["released"] = released.isoformat()
    config["intune"]["quality_updates"] = table
    return config


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
        # graph-tls/ beside it is the Microsoft 365 area's (it starts first)
        (estate / "patch.yml").write_text(
            yaml.safe_dump(exporter_config(demo.ports), sort_keys=False), encoding="utf-8"
        )
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
        intune = [s.name for _, s in sources(demo) if isinstance(s, IntuneSource)]
        links = [
            ("Patch exporter", f"http://127.0.0.1:{demo.ports.patch_exporter}/patch?target={first}"),
            (
                f"NinjaOne simulator ({len(sources(demo)) - len(intune)} sources)",
                f"{ninja} (clock: {ninja}/admin/clock)",
            ),
        ]
        for name in intune:  # its tenant is on the Graph simulator
            links.append(
                (f"Intune source {name}", f"http://127.0.0.1:{demo.ports.patch_exporter}/patch?target={name}")
            )
        return links

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
