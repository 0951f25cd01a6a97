"""Alert rules are checked by promtool and proven by `promtool test rules` unit tests:
every alert has a test that shows it does not fire too early and does fire, with its labels
and annotations."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "alertrules").glob("*.yml"))
TESTS = sorted((ROOT / "alertrules" / "tests").glob("*_test.yml"))


def _alerts(path: Path) -> list[dict[str, object]]:
    doc = yaml.safe_load(path.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_there_are_rules_and_tests() -> None:
    assert RULES and TESTS


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    proc = subprocess.run(
        [require_tool("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    proc = subprocess.run(
        [require_tool("promtool"), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=path.parent,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_alerts_follow_the_mixin_style(path: Path) -> None:
    for alert in _alerts(path):
        name = str(alert["alert"])
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", name), f"{name}: CamelCase names"
        labels = alert.get("labels") or {}
        assert isinstance(labels, dict)
        assert labels.get("severity") in ("critical", "warning", "info"), name
        annotations = alert.get("annotations") or {}
        assert isinstance(annotations, dict)
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        assert "{{" not in str(annotations["summary"]), f"{name}: summary is static"
        assert "{{" in str(annotations["description"]), f"{name}: description is templated"


def test_every_alert_has_a_unit_test() -> None:
    names = {str(a["alert"]) for path in RULES for a in _alerts(path)}
    tested: set[str] = set()
    for path in TESTS:
        doc = yaml.safe_load(path.read_text())
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    assert names - tested == set(), "alerts without a firing test"
