"""The alert rules and the canonical Prometheus config agree: every `job="..."` a rule
selects is a job of compose/prometheus.yml, and every `runbook_url` is the one derived from
the alert's name and lands on a heading of docs/runbooks.md (kubernetes-mixin derives its
runbook links the same way, lib/add-runbook-links.libsonnet)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mspwatch.targets.shards import SCALE_TARGETS
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "alertrules").glob("*.yml"))
PROMETHEUS = ROOT / "compose" / "prometheus.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
# job="snmp", job=~"snmp|icmp" in a selector; not `job=%q`, a template's own query.
_JOB = re.compile(r'\bjob\s*(=~|=)\s*"([^"]*)"')


def runbook_url(alert: str) -> str:
    """The link every alert carries: its section in docs/runbooks.md (GitHub's anchor)."""
    return f"docs/runbooks.md#{alert.lower()}"


def _rules() -> list[dict[str, object]]:
    out = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += group["rules"]
    return out


def _jobs() -> set[str]:
    """The canonical config's jobs, and those only the scale profile's shards add (its
    engines: alertrules/scale.yml watches them)."""
    config = yaml.safe_load(PROMETHEUS.read_text())
    return {str(job["job_name"]) for job in config["scrape_configs"]} | set(SCALE_TARGETS)


def jobs_in(expr: str) -> set[str]:
    """Job names a PromQL expression selects on.

    >>> sorted(jobs_in('up{job="snmp"} == 0 or probe_success{job=~"icmp|blackbox"}'))
    ['blackbox', 'icmp', 'snmp']
    """
    found: set[str] = set()
    for op, value in _JOB.findall(expr):
        found |= set(value.split("|")) if op == "=~" else {value}
    return found


def _dashboard_exprs() -> list[tuple[str, str]]:
    """(dashboard file, PromQL) of every panel target in dashboards/ (when there are any)."""
    found = []

    def walk(node: object, name: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                found.append((name, node["expr"]))
            for value in node.values():
                walk(value, name)
        elif isinstance(node, list):
            for value in node:
                walk(value, name)

    for path in sorted((ROOT / "dashboards").rglob("*.json")):
        walk(json.loads(path.read_text()), path.name)
    return found


def test_every_job_a_rule_or_dashboard_selects_is_scraped() -> None:
    jobs = _jobs()
    used: set[str] = set()
    exprs = [(str(r.get("alert") or r.get("record")), str(r["expr"])) for r in _rules()] + _dashboard_exprs()
    for what, expr in exprs:
        named = jobs_in(expr)
        assert named <= jobs, f"{what}: jobs not in prometheus.yml: {named - jobs}"
        used |= named
    # Every probe job and every exporter's own job is watched by some rule.
    assert {
        "snmp",
        "icmp",
        "backup",
        "m365",
        "snmp-exporter",
        "blackbox",
        "backup-exporter",
        "m365-exporter",
    } <= used


def test_the_check_catches_a_job_that_is_not_scraped() -> None:
    assert not jobs_in('up{job="snmpp"} == 0') <= _jobs()


@pytest.mark.parametrize("rule", [r for r in _rules() if "alert" in r], ids=lambda r: str(r["alert"]))
def test_runbook_url_is_derived_from_the_alert_name(rule: dict[str, object]) -> None:
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    assert annotations["runbook_url"] == runbook_url(str(rule["alert"]))


def test_every_alert_has_a_runbook_heading_and_every_heading_an_alert() -> None:
    headings = set(re.findall(r"^### (\S+)\s*$", RUNBOOKS.read_text(), flags=re.M))
    alerts = {str(r["alert"]) for r in _rules() if "alert" in r}
    assert alerts - headings == set(), "alerts without a runbook section"
    assert headings - alerts == set(), "runbook sections for alerts that do not exist"


def test_every_scrape_up_is_alerted_on() -> None:
    """Issue 8: a job whose scrapes fail must not stay silent (up == 0 is watched per job)."""
    watched = set()
    for rule in _rules():
        expr = str(rule["expr"])
        if "alert" in rule and re.search(r"\bup\{", expr) and "== 0" in expr:
            watched |= jobs_in(expr)
    assert {
        "snmp",
        "icmp",
        "backup",
        "m365",
        "snmp-exporter",
        "blackbox",
        "backup-exporter",
        "m365-exporter",
        "victoriametrics",
        "vmalert",
    } <= watched


def test_promtool_accepts_the_canonical_config() -> None:
    proc = subprocess.run(
        [require_tool("promtool"), "check", "config", str(PROMETHEUS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # The file_sd files and rules live where the stack mounts them (warnings only).
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
