"""The demo's Microsoft 365 area: the Graph simulator serving the ``estate`` scenario over
HTTPS on loopback (its clock running with real time, so its timelines play out), and the
Microsoft 365 exporter reading the tenants of ``simulators/estate/inventory.yml``.

The demo writes ``<data dir>/estate/m365.yml`` from ``simulators/estate/m365.yml`` (both Graph
URLs on the simulator's port, moved by ``--port-offset``; failed refreshes retried after 10 s,
since the simulator and the exporter start together) next to its copy of the inventory, and a
fresh test CA for the simulator into ``<data dir>/estate/graph-tls/``.
"""

from __future__ import annotations

import ssl
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from mspwatch.inventory import M365Tenant
from mspwatch.simulators.graph.scenario import SCENARIOS_DIR, Scenario, load_scenario
from mspwatch.simulators.graph.tls import make_test_ca

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

SCENARIO = SCENARIOS_DIR / "estate.yaml"
SECRET_ENV = "MSPWATCH_DEMO_M365_SECRET"  # noqa: S105 - the variable's name, not a secret


def demo_secret(scenario: Scenario) -> str:
    """The estate scenario's client secret (the simulated estate's own, in its YAML)."""
    return next(c.secret for t in scenario.tenants for c in t.clients if c.secret is not None)


def exporter_config(ports: Ports) -> dict[str, Any]:
    """``simulators/estate/m365.yml`` with both Graph URLs on the demo's simulator port."""
    config: dict[str, Any] = yaml.safe_load((ESTATE / "m365.yml").read_text(encoding="utf-8"))
    url = f"https://127.0.0.1:{ports.graph_simulator}"
    config["graph"].update(url=url, authority_host=url)
    # The simulator and the exporter start together: a first refresh that finds the simulator
    # not yet listening is retried soon, not after the default minute.
    config.setdefault("refresh", {}).setdefault("retry", "10s")
    return config


def tenants(demo: Demo) -> list[tuple[str, M365Tenant]]:
    """(customer, tenant) for every Microsoft 365 tenant of the estate."""
    return [(c.name, t) for c in demo.inventory.customers for t in c.m365_tenants]


class M365Area(DemoArea):
    name = "m365"

    def _estate(self, demo: Demo) -> Path:
        return demo.work / "estate"

    def _tls(self, demo: Demo) -> Path:
        return self._estate(demo) / "graph-tls"

    def _context(self, demo: Demo) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self._tls(demo) / "ca.pem"))

    def start(self, demo: Demo) -> None:
        estate = self._estate(demo)  # the exporter reads the tenants from the inventory here
        estate.mkdir(parents=True, exist_ok=True)
        (estate / "m365.yml").write_text(
            yaml.safe_dump(exporter_config(demo.ports), sort_keys=False), encoding="utf-8"
        )
        make_test_ca(self._tls(demo))  # fresh on every start; the simulator serves it
        demo.procs.add(
            "graph-simulator",
            [
                sys.executable,
                "-m",
                "mspwatch.simulators.graph",
                f"--listen=127.0.0.1:{demo.ports.graph_simulator}",
                f"--scenario={SCENARIO}",
                f"--tls-dir={self._tls(demo)}",
                "--clock-speed=1",
            ],
        )
        demo.env[SECRET_ENV] = demo_secret(load_scenario(SCENARIO))
        start_exporter(demo, "m365-exporter", estate / "m365.yml", demo.ports.m365_exporter)

    def scrape_configs(self, ports: Ports, targets_dir: Path) -> list[dict[str, Any]]:
        # The exporter refreshes in the background (health every 2m); a real deployment
        # scrapes every minute, the demo wants its first answer sooner.
        demo = {"m365": {"scrape_interval": "30s", "scrape_timeout": "10s"}}
        return demo_jobs(["m365", "m365-exporter"], ports, targets_dir, demo)

    def rule_files(self) -> list[Path]:
        return [ALERTRULES / "m365.yml"]

    def wait_ready(self, demo: Demo) -> None:
        wait_http(
            f"https://127.0.0.1:{demo.ports.graph_simulator}/_sim/identity",
            demo.procs,
            60,
            self._context(demo),
            expect=own_pid(demo.procs.pids.get("graph-simulator")),
        )
        wait_exporter(demo, "m365", demo.ports.m365_exporter)

    def links(self, demo: Demo) -> list[tuple[str, str]]:
        first = tenants(demo)[0][1].name if tenants(demo) else "acme"
        graph = f"https://127.0.0.1:{demo.ports.graph_simulator}"
        return [
            ("Microsoft 365 exporter", f"http://127.0.0.1:{demo.ports.m365_exporter}/m365?target={first}"),
            (f"Graph simulator ({len(tenants(demo))} tenants)", f"{graph} (clock: {graph}/_sim/clock)"),
        ]

    def check(self, demo: Demo) -> bool:
        expected = tenants(demo)
        return check_sources(
            demo,
            "m365",
            'm365_up{job="m365"}',
            len(expected),
            "Microsoft 365 tenants",
            lambda up: summary_lines(demo.prometheus_url, expected, up),
        )


_SUMMARY = (
    '{job="m365", __name__=~"m365_service_degraded|m365_issues_open|m365_license_consumed_units'
    "|m365_license_prepaid_units|m365_secure_score_current|m365_secure_score_max|m365_users"
    '|m365_mfa_registered_users"}'
)


def _num(value: float) -> str:
    return f"{value:g}"


def _plural(value: float, one: str, many: str = "") -> str:
    return f"{_num(value)} {one if value == 1 else many or one + 's'}"


# metric name -> (service, classification, sku, state, group) -> value, for one tenant
Values = dict[str, dict[tuple[str, ...], float]]
_LABELS = ("service", "classification", "sku", "state", "group")


def summary_lines(
    prometheus: str, expected: list[tuple[str, M365Tenant]], up: list[dict[str, Any]]
) -> list[str]:
    """One line per customer tenant: up, service health, open issues, licences, Secure Score, MFA."""
    values: dict[tuple[str, str], Values] = defaultdict(lambda: defaultdict(dict))
    for s in query(prometheus, _SUMMARY):
        m = s["metric"]
        key = (m.get("customer", ""), m.get("tenant", ""))
        values[key][m["__name__"]][tuple(m.get(k, "") for k in _LABELS)] = float(s["value"][1])
    state = {(s["metric"].get("customer", ""), s["metric"].get("tenant", "")): s["value"][1] for s in up}
    lines = []
    for customer, tenant in expected:
        key = (customer, tenant.name)
        status = {"1": "up", "0": "down"}.get(state.get(key, ""), "no data yet")
        parts = [status, *_tenant_parts(values[key])]
        lines.append(f"m365 {customer} (tenant {tenant.name}): " + ", ".join(parts))
    return lines


def _tenant_parts(values: Values) -> list[str]:
    degraded = values["m365_service_degraded"]
    issues = values["m365_issues_open"]
    incidents = sum(v for k, v in issues.items() if k[1] == "incident")
    advisories = sum(v for k, v in issues.items() if k[1] == "advisory")
    prepaid = values["m365_license_prepaid_units"]
    skus = []
    for k, used in sorted(values["m365_license_consumed_units"].items()):
        sku = k[2]
        enabled = prepaid.get(("", "", sku, "enabled", ""), 0.0)
        extra = [
            f"{_num(prepaid[('', '', sku, st, '')])} {st.replace('_', ' ')}"
            for st in ("warning", "suspended", "locked_out")
            if prepaid.get(("", "", sku, st, ""), 0.0) > 0
        ]
        skus.append(f"{sku} {_num(used)}/{_num(enabled)}" + (f" (+{', '.join(extra)})" if extra else ""))
    score = values["m365_secure_score_current"].get(("",) * 5)
    score_max = values["m365_secure_score_max"].get(("",) * 5)
    users, mfa = values["m365_users"], values["m365_mfa_registered_users"]
    registered = {
        k[4]: f"{_num(mfa[k])} of {_num(users[k])} {'users' if k[4] == 'all' else k[4]}"
        for k in users
        if k in mfa
    }
    n_degraded = _num(sum(degraded.values()))
    return [
        f"{len(degraded)} services ({n_degraded} degraded)" if degraded else "no service health yet",
        f"{_plural(incidents, 'open incident')}, {_plural(advisories, 'open advisory', 'open advisories')}",
        "licences " + (", ".join(skus) if skus else "not read yet"),
        f"Secure Score {_num(score)} of {_num(score_max)} ({score / score_max:.0%})"
        if score is not None and score_max
        else "no Secure Score yet",
        "MFA " + ", ".join(registered[g] for g in ("all", "admins") if g in registered)
        if registered
        else "no MFA report yet",
    ]
