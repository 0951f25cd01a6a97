"""compose/alertmanager.yml is valid for Alertmanager 0.25, routes every case of routes.yml to
the expected receivers (amtool), and its inhibit rules cannot silence alerts estate-wide."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "compose" / "alertmanager.yml"
CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "routes.yml").read_text())["cases"]

# name, operator, quoted or bare value: the matcher syntax of Alertmanager 0.25.
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


def _config() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return doc


def _matcher(text: str) -> tuple[str, str, str]:
    found = _MATCHER.match(text)
    assert found, f"cannot parse matcher {text!r}"
    return found.group(1), found.group(2), found.group(3)


def _matches(op: str, pattern: str, value: str) -> bool:
    if op == "=":
        return value == pattern
    if op == "!=":
        return value != pattern
    hit = re.fullmatch(pattern, value) is not None  # Alertmanager anchors regexes too
    return hit if op == "=~" else not hit


def _requires_label(matchers: list[str], label: str) -> bool:
    """True when some matcher on ``label`` rejects the empty value (a missing label)."""
    return any(
        name == label and not _matches(op, value, "") for name, op, value in (_matcher(m) for m in matchers)
    )


def _alert_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "alertrules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {str(rule["alert"]) for rule in group["rules"] if "alert" in rule}
    return names


def test_amtool_check_config() -> None:
    proc = subprocess.run(
        [require_tool("amtool"), "check-config", str(CONFIG)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize("case", CASES, ids=[str(c["name"]) for c in CASES])
def test_route(case: dict[str, Any]) -> None:
    expected = ",".join(case["receivers"])
    proc = subprocess.run(
        [
            require_tool("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            f"--verify.receivers={expected}",
            *(f"{name}={value}" for name, value in case["labels"].items()),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, f"expected {expected}, amtool says: {proc.stdout.strip()} {proc.stderr}"


def test_every_receiver_has_a_route_case() -> None:
    defined = {str(r["name"]) for r in _config()["receivers"]}
    covered = {str(name) for case in CASES for name in case["receivers"]}
    assert defined == covered


def test_inhibit_rules_require_their_equal_labels_on_both_sides() -> None:
    """A missing `equal` label counts as equal (empty == empty): without these guards a rule
    meant for one device would inhibit every matching alert that lacks the label."""
    for rule in _config()["inhibit_rules"]:
        assert set(rule) == {"source_matchers", "target_matchers", "equal"}, (
            f"use source_matchers/target_matchers only: {rule}"
        )
        for label in rule["equal"]:
            for side in ("source_matchers", "target_matchers"):
                assert _requires_label(rule[side], label), f"{side} must require {label}=~'.+': {rule}"


def test_inhibit_rules_name_existing_alerts() -> None:
    known = _alert_names()
    for rule in _config()["inhibit_rules"]:
        for side in ("source_matchers", "target_matchers"):
            for name, op, value in (_matcher(m) for m in rule[side]):
                if name != "alertname":
                    continue
                assert op in ("=", "=~"), rule
                named = set(value.split("|")) if op == "=~" else {value}
                assert named <= known, f"{side} names alerts no rule file defines: {named - known}"


def test_no_credentials_in_the_file() -> None:
    """Webhooks authenticate with a token file mounted into the container, never inline."""
    for receiver in _config()["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            auth = hook.get("http_config", {}).get("authorization", {})
            assert set(auth) == {"credentials_file"}, receiver["name"]
            assert str(auth["credentials_file"]).startswith("/etc/alertmanager/secrets/")
            assert re.fullmatch(r"https://[a-z.-]+\.example(/[\w/-]*)?", hook["url"]), hook["url"]


def test_the_guard_catches_the_pitfall() -> None:
    assert not _requires_label(['alertname="DeviceUnreachable"'], "device")
    assert not _requires_label(['device=~".*"'], "device")
    assert not _requires_label(['device!="x"'], "device")
    assert _requires_label(['device=~".+"'], "device")
    assert _requires_label(['device="core-sw1"'], "device")
    assert _requires_label(['device!=""'], "device")


def test_the_docs_name_every_receiver_and_inhibited_alert() -> None:
    doc = (ROOT / "docs" / "alerting.md").read_text()
    for receiver in _config()["receivers"]:
        assert f"{receiver['name']}" in doc
    for rule in _config()["inhibit_rules"]:
        for side in ("source_matchers", "target_matchers"):
            for name, _, value in (_matcher(m) for m in rule[side]):
                if name == "alertname":
                    assert all(f"`{alert}`" in doc for alert in value.split("|")), value


def _heartbeat_rule() -> dict[str, Any]:
    for group in yaml.safe_load((ROOT / "alertrules" / "slo.yml").read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "Watchdog":
                return dict(rule)
    raise AssertionError("alertrules/slo.yml defines no Watchdog")


def test_the_heartbeat_route_is_first_unmuted_and_repeats_every_minute() -> None:
    """Nothing can hold the Watchdog back: its route comes before every other (the info sink,
    the customer blocks with their maintenance windows), mutes nothing, stops there, and
    re-sends at least every minute so a dead-man's switch with a few minutes' grace stays quiet."""
    route = _config()["route"]["routes"][0]
    assert route["receiver"] == "dead-mans-switch"
    rule = _heartbeat_rule()
    labels = {"alertname": "Watchdog", **{k: str(v) for k, v in rule["labels"].items()}}
    assert all(
        _matches(op, value, labels.get(name, "")) for name, op, value in map(_matcher, route["matchers"])
    )
    assert route["continue"] is False
    assert "mute_time_intervals" not in route and "active_time_intervals" not in route
    assert "routes" not in route
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("0s", "1m", "1m")
    (hook,) = next(r for r in _config()["receivers"] if r["name"] == "dead-mans-switch")["webhook_configs"]
    assert hook["send_resolved"] is False
    assert "credentials_file" in hook["http_config"]["authorization"]  # the secret stays out of the repo


def test_no_inhibit_rule_can_silence_the_heartbeat() -> None:
    rule = _heartbeat_rule()
    labels = {"alertname": "Watchdog", **{k: str(v) for k, v in rule["labels"].items()}}
    for inhibit in _config()["inhibit_rules"]:
        hits = [
            _matches(op, value, labels.get(name, ""))
            for name, op, value in map(_matcher, inhibit["target_matchers"])
        ]
        assert not all(hits), f"this inhibit rule can silence the Watchdog: {inhibit}"
