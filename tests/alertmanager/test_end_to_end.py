"""Real Prometheus and Alertmanager on 127.0.0.1: the real SNMP and Microsoft 365 alert rules
fire on canned exporter answers (scrapes/*.prom), compose/alertmanager.yml routes them to
webhooks served by this test, and inhibited alerts never arrive.

Only timings differ from production: the rules lose their `for:` (their durations are proven
by `promtool test rules`), Prometheus scrapes, evaluates and resends every second, and every
Alertmanager route waits 5 s before its first notification. Like the production 1 m, that
wait must cover the skew between an inhibited alert and the alert that inhibits it (here:
the snmp and icmp scrapes, at most a scrape plus an evaluation interval apart).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mspwatch.common.procs import free_port, wait_for_port
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
SCRAPES = Path(__file__).parent / "scrapes"
TOKEN = "test-token-from-a-file"  # proves the credentials file is read and sent
TIMEOUT = 45.0


@dataclass
class Webhooks:
    """What the test's HTTP server was asked: scrape paths answered, notifications received."""

    port: int = 0
    notifications: list[dict[str, Any]] = field(default_factory=list)
    authorizations: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.notifications)


def _handler(hooks: Webhooks) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.strip("/")
            if name not in ("snmp", "icmp", "m365"):
                self.send_error(404)
                return
            body = (SCRAPES / f"{name}.prom").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body["_path"] = self.path
            with hooks.lock:
                hooks.notifications.append(body)
                hooks.authorizations.add(str(self.headers.get("Authorization")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def hooks() -> Iterator[Webhooks]:
    state = Webhooks()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _alertmanager_config(tmp_path: Path, hook_port: int) -> Path:
    """The committed config with webhooks pointed at this test and short group waits."""
    config = yaml.safe_load((ROOT / "compose" / "alertmanager.yml").read_text())
    token = tmp_path / "token"
    token.write_text(TOKEN)
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"http://127.0.0.1:{hook_port}/hook/{receiver['name']}"
            hook["http_config"]["authorization"]["credentials_file"] = str(token)

    def shorten(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", "5s"), ("group_interval", "1s")):
            if key in route or route is config["route"]:
                route[key] = value
        if route.get("receiver") == "dead-mans-switch":
            route["repeat_interval"] = "1s"  # the heartbeat's every minute, at test speed
        # The estate's maintenance windows would hold notifications if the test ran inside
        # one; tests/alertmanager/test_generated.py proves the windows themselves.
        route.pop("mute_time_intervals", None)
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _prometheus_config(tmp_path: Path, hook_port: int, am_port: int) -> Path:
    rule_files = []
    for area in ("snmp", "m365"):
        rules = yaml.safe_load((ROOT / "alertrules" / f"{area}.yml").read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                rule.pop("for", None)
        path = tmp_path / f"{area}-rules.yml"
        path.write_text(yaml.safe_dump(rules, sort_keys=False))
        rule_files.append(path.name)
    # the heartbeat, as alertrules/slo.yml defines it (the SLO rules there need recordings)
    slo = yaml.safe_load((ROOT / "alertrules" / "slo.yml").read_text())
    watchdog = [r for g in slo["groups"] for r in g["rules"] if r.get("alert") == "Watchdog"]
    (tmp_path / "watchdog-rules.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "heartbeat", "rules": watchdog}]}, sort_keys=False)
    )
    rule_files.append("watchdog-rules.yml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files,
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [
            {
                "job_name": job,
                "honor_labels": True,  # the canned answers carry the inventory labels
                "metrics_path": f"/{job}",
                "static_configs": [{"targets": [f"127.0.0.1:{hook_port}"]}],
            }
            for job in ("snmp", "icmp", "m365")
        ],
    }
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _delivered(notifications: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(receiver, alertname, what) for every firing alert delivered; `what` names its object."""
    seen = set()
    for body in notifications:
        assert body["_path"] == f"/hook/{body['receiver']}"
        for alert in body["alerts"]:
            if alert["status"] != "firing":
                continue
            labels = alert["labels"]
            what = labels.get("device") or labels.get("service") or labels.get("instance", "")
            seen.add((body["receiver"], labels["alertname"], f"{labels.get('customer', '-')}/{what}"))
    return seen


EXPECTED = {
    ("msp-paging", "DeviceUnreachable", "acme-dental/core-sw1"),
    ("acme-dental-escalation", "DeviceUnreachable", "acme-dental/core-sw1"),
    ("msp-paging", "DeviceUnreachable", "bolt-logistics/fw1"),
    ("msp-paging", "InterfaceDown", "acme-dental/fw1"),
    ("acme-dental-escalation", "InterfaceDown", "acme-dental/fw1"),
    ("msp-ticketing", "SnmpAgentDown", "acme-dental/ups1"),
    ("msp-paging", "UpsRuntimeLow", "acme-dental/ups2"),
    ("acme-dental-escalation", "UpsRuntimeLow", "acme-dental/ups2"),
    ("msp-paging", "UpsOnBattery", "acme-dental/ups3"),
    ("acme-dental-escalation", "UpsOnBattery", "acme-dental/ups3"),
    ("msp-paging", "M365ServiceInterrupted", "acme-dental/Microsoft Teams"),
    ("acme-dental-escalation", "M365ServiceInterrupted", "acme-dental/Microsoft Teams"),
    ("msp-ticketing", "M365ServiceDegraded", "acme-dental/Exchange Online"),
    ("platform-team", "SnmpExporterConfigReloadFailed", "-/snmp-exporter:9116"),
    ("dead-mans-switch", "Watchdog", "-/"),  # the heartbeat, though its severity is info
}
# Firing in Prometheus, inhibited in Alertmanager: each shares its notification group with
# an expected alert above, so it would have been in that very notification.
INHIBITED = {
    ("InterfaceDown", "acme-dental/core-sw1"),  # the device is unreachable
    ("DeviceUnreachable", "bolt-logistics/nas1"),  # the site's firewall is unreachable
    ("UpsOnBattery", "acme-dental/ups2"),  # its runtime is low
    ("M365ServiceDegraded", "acme-dental/Microsoft Teams"),  # Teams is interrupted
}


def _poll(what: str, check: Callable[[], bool]) -> None:
    end = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {TIMEOUT:.0f}s waiting for {what}")
        time.sleep(0.2)


def test_alerts_reach_their_receivers_and_inhibited_ones_do_not(
    tmp_path: Path, hooks: Webhooks, start_process: Any
) -> None:
    am_port, prom_port = free_port(), free_port()
    am = start_process(
        [
            require_tool("prometheus-alertmanager"),
            f"--config.file={_alertmanager_config(tmp_path, hooks.port)}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        "alertmanager",
    )
    prom = start_process(
        [
            require_tool("prometheus"),
            f"--config.file={_prometheus_config(tmp_path, hooks.port, am_port)}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--rules.alert.resend-delay=1s",
        ],
        "prometheus",
    )
    wait_for_port(am_port, proc=am)
    wait_for_port(prom_port, proc=prom)

    _poll(
        "every expected notification",
        lambda: _delivered(hooks.received()) >= EXPECTED,
    )

    # Alertmanager holds the inhibited alerts as suppressed, naming the alert that inhibits.
    def suppressed() -> dict[tuple[str, str], list[str]]:
        alerts = httpx.get(f"http://127.0.0.1:{am_port}/api/v2/alerts", timeout=5).json()
        found = {}
        for alert in alerts:
            labels = alert["labels"]
            what = labels.get("device") or labels.get("service", "")
            if alert["status"]["state"] == "suppressed":
                found[(labels["alertname"], f"{labels.get('customer')}/{what}")] = alert["status"][
                    "inhibitedBy"
                ]
        return found

    # An inhibited alert would have been in the same notification as its group's others.
    leaked = {(name, what) for _, name, what in _delivered(hooks.received())} & INHIBITED
    assert leaked == set(), "inhibited alerts were delivered"
    _poll("the inhibited alerts in Alertmanager", lambda: set(suppressed()) >= INHIBITED)
    assert all(suppressed()[key] for key in INHIBITED)

    notifications = hooks.received()
    assert _delivered(notifications) == EXPECTED, "unexpected notifications"
    assert hooks.authorizations == {f"Bearer {TOKEN}"}

    def alert_in(receiver: str, alertname: str, customer: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The first notification of that group at that receiver, and its first alert."""
        for body in notifications:
            group = body["groupLabels"]
            if body["receiver"] == receiver and (group["alertname"], group.get("customer")) == (
                alertname,
                customer or None,
            ):
                return body, body["alerts"][0]
        raise AssertionError(f"no {alertname} of {customer or 'no customer'} at {receiver}")

    body, alert = alert_in("msp-paging", "DeviceUnreachable", "acme-dental")
    assert body["groupLabels"] == {"alertname": "DeviceUnreachable", "customer": "acme-dental", "site": "hq"}
    assert alert["labels"] == {
        "alertname": "DeviceUnreachable",
        "customer": "acme-dental",
        "site": "hq",
        "device": "core-sw1",
        "role": "core",
        "instance": "10.20.0.2",
        "severity": "critical",
    }
    assert alert["annotations"]["runbook_url"] == "docs/runbooks.md#deviceunreachable"
    assert "core-sw1 (core) at acme-dental / hq" in alert["annotations"]["description"]

    body, alert = alert_in("msp-ticketing", "SnmpAgentDown", "acme-dental")
    assert len(body["alerts"]) == 1
    assert alert["labels"]["device"] == "ups1"
    assert alert["labels"]["reason"] == "timeout"
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["runbook_url"] == "docs/runbooks.md#snmpagentdown"
    assert "with reason timeout" in alert["annotations"]["description"]

    body, alert = alert_in("msp-paging", "InterfaceDown", "acme-dental")
    assert [a["labels"]["device"] for a in body["alerts"] if a["status"] == "firing"] == ["fw1"]
    assert alert["labels"]["interface"] == "wan1"

    body, alert = alert_in("msp-paging", "UpsOnBattery", "acme-dental")
    assert [a["labels"]["device"] for a in body["alerts"] if a["status"] == "firing"] == ["ups3"]
    body, alert = alert_in("msp-paging", "UpsRuntimeLow", "acme-dental")
    assert alert["labels"]["device"] == "ups2"
    assert alert["annotations"]["runbook_url"] == "docs/runbooks.md#upsruntimelow"
    assert "has 5m 0s of battery left" in alert["annotations"]["description"]

    body, alert = alert_in("platform-team", "SnmpExporterConfigReloadFailed", "")
    assert body["groupLabels"] == {"alertname": "SnmpExporterConfigReloadFailed", "job": "snmp"}
    assert "customer" not in alert["labels"]

    # The heartbeat keeps coming while Watchdog fires: the dead-man's switch sees pings, not
    # one notification.
    def heartbeats() -> list[dict[str, Any]]:
        return [b for b in hooks.received() if b["receiver"] == "dead-mans-switch"]

    _poll("a repeated heartbeat", lambda: len(heartbeats()) >= 3)
    for body in heartbeats():
        assert body["groupLabels"] == {"alertname": "Watchdog"}
        assert [a["labels"]["alertname"] for a in body["alerts"]] == ["Watchdog"]
        assert body["status"] == "firing"
