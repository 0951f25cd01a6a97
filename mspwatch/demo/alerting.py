"""The demo's alerting area: Alertmanager with the committed ``compose/alertmanager.yml``,
routing, grouping, inhibitions and timings unchanged, and only its webhooks redirected to
the demo's receiver on loopback, which appends every notification to
``<data dir>/notifications.jsonl``. The demo's Prometheus sends its alerts here.

Alertmanager runs without clustering (``--cluster.listen-address=``: no gossip port on
0.0.0.0) and keeps its silences and notification log in ``<data dir>/alertmanager/``.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from .kit import ALERTRULES, COMPOSE, Demo, DemoArea, Ports, get_json, own_metrics, own_pid, tool, wait_http
from .runner import DemoError

DEMO_WEBHOOK_TOKEN = "demo-webhook-token"  # noqa: S105 - sent to the demo's own receiver only


def redirect_webhooks(config: dict[str, Any], receiver_url: str, token_file: str) -> dict[str, Any]:
    """``config`` (changed in place and returned) with every webhook sent to the demo receiver
    at ``receiver_url`` (``/hook/<receiver>``) and its bearer token read from ``token_file``;
    routing, grouping, inhibitions and timings stay as they are.

    >>> cfg = {"receivers": [{"name": "msp-paging", "webhook_configs": [{"url": "https://x"}]}]}
    >>> redirect_webhooks(cfg, "http://demo-receiver:9097", "/t")["receivers"][0]["webhook_configs"]
    [{'url': 'http://demo-receiver:9097/hook/msp-paging'}]
    """
    for receiver in config.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            # `url_file` (the dead-man's switch's ping URL on Alertmanager >= 0.28) goes too:
            # the demo's Alertmanager is 0.25, and its receiver is the URL now.
            hook.pop("url_file", None)
            hook["url"] = f"{receiver_url}/hook/{receiver['name']}"
            auth = hook.get("http_config", {}).get("authorization")
            if auth is not None and "credentials_file" in auth:
                auth["credentials_file"] = token_file
    return config


def alertmanager_config(ports: Ports, token_file: Path) -> dict[str, Any]:
    """The committed config with every webhook sent to the demo receiver on loopback."""
    config: dict[str, Any] = yaml.safe_load((COMPOSE / "alertmanager.yml").read_text(encoding="utf-8"))
    return redirect_webhooks(config, f"http://127.0.0.1:{ports.alert_receiver}", str(token_file))


def webhook_receivers(config: dict[str, Any]) -> list[str]:
    """Receivers that send anything (``null`` and other empty receivers do not)."""
    return [r["name"] for r in config.get("receivers", []) if r.get("webhook_configs")]


def count_notifications(path: Path) -> Counter[str]:
    """Notifications per receiver in the receiver's JSON Lines file so far."""
    counts: Counter[str] = Counter()
    if not path.exists():
        return counts
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            counts[str(json.loads(line).get("receiver", "?"))] += 1
        except (ValueError, AttributeError):
            continue  # a line being written right now
    return counts


class AlertingArea(DemoArea):
    name = "alerting"

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}

    @staticmethod
    def url(demo: Demo) -> str:
        return f"http://127.0.0.1:{demo.ports.alertmanager}"

    def rule_files(self) -> list[Path]:
        # The platform's rules: the Watchdog heartbeat (to the demo receiver's
        # /hook/dead-mans-switch every minute), Prometheus/Alertmanager self-monitoring and
        # the SLO burn rates with the customers' targets.
        return [ALERTRULES / "slo.yml", ALERTRULES / "slo-targets.yml"]

    @staticmethod
    def notifications(demo: Demo) -> Path:
        return demo.work / "notifications.jsonl"

    def start(self, demo: Demo) -> None:
        data = demo.work / "alertmanager"
        data.mkdir(parents=True, exist_ok=True)
        token = data / "webhook-token"
        token.write_text(DEMO_WEBHOOK_TOKEN, encoding="utf-8")
        self._config = alertmanager_config(demo.ports, token)
        config_file = demo.work / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(self._config, sort_keys=False), encoding="utf-8")
        demo.procs.add(
            "demo-receiver",
            [
                sys.executable,
                "-m",
                "mspwatch.demo.receiver",
                f"--listen=127.0.0.1:{demo.ports.alert_receiver}",
                f"--output={self.notifications(demo)}",
            ],
        )
        demo.procs.add(
            "alertmanager",
            [
                tool("prometheus-alertmanager"),
                f"--config.file={config_file}",
                f"--storage.path={data}",
                f"--web.listen-address=127.0.0.1:{demo.ports.alertmanager}",
                f"--web.external-url={self.url(demo)}",
                "--cluster.listen-address=",
            ],
        )

    def attach(self, demo: Demo) -> None:
        self._config = yaml.safe_load((demo.work / "alertmanager.yml").read_text(encoding="utf-8"))

    def alertmanagers(self, ports: Ports) -> list[str]:
        return [f"127.0.0.1:{ports.alertmanager}"]

    def wait_ready(self, demo: Demo) -> None:
        wait_http(
            f"http://127.0.0.1:{demo.ports.alert_receiver}/-/identity",
            demo.procs,
            30,
            expect=own_pid(demo.procs.pids.get("demo-receiver")),
        )
        wait_http(f"{self.url(demo)}/-/ready", demo.procs, 60)
        wait_http(
            f"{self.url(demo)}/metrics",
            demo.procs,
            60,
            expect=own_metrics("alertmanager_build_info", demo.started),
        )

    def links(self, demo: Demo) -> list[tuple[str, str]]:
        return [
            ("Alertmanager", self.url(demo)),
            ("webhook receiver", f"http://127.0.0.1:{demo.ports.alert_receiver}"),
            ("notifications (its log)", str(self.notifications(demo))),
        ]

    def _prometheus_sends_here(self, demo: Demo, timeout: float) -> bool:
        """Whether Prometheus lists this Alertmanager as active (waits up to ``timeout``)."""
        end = time.monotonic() + timeout
        while True:
            data = get_json(f"{demo.prometheus_url}/api/v1/alertmanagers")["data"]
            if any(am["url"].startswith(f"{self.url(demo)}/") for am in data["activeAlertmanagers"]):
                return True
            if time.monotonic() > end:
                return False
            demo.procs.sleep(1)

    def check(self, demo: Demo) -> bool:
        try:
            wait_http(f"{self.url(demo)}/-/ready", demo.procs, 30)
            alerts = get_json(f"{self.url(demo)}/api/v2/alerts")
        except (OSError, DemoError) as exc:
            print(f"Alertmanager not ready: {exc}")
            return False
        states = Counter(a.get("status", {}).get("state", "?") for a in alerts)
        held = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none yet"
        sends = self._prometheus_sends_here(demo, 30)
        print(
            f"Alertmanager ready, Prometheus {'sends to it' if sends else 'does NOT send to it'}: "
            f"{len(alerts)} alerts received ({held})"
        )
        counts = count_notifications(self.notifications(demo))
        names = webhook_receivers(self._config) or sorted(counts)
        names += sorted(set(counts) - set(names))
        print("notifications so far: " + ", ".join(f"{name} {counts[name]}" for name in names))
        return sends


def delivered_alerts(path: Path) -> dict[str, set[str]]:
    """{alertname: receivers} of every firing alert in the receiver's file so far."""
    out: dict[str, set[str]] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            note = json.loads(line)
        except ValueError:
            continue  # a line being written right now
        for alert in note.get("alerts", []):
            if alert.get("status") == "firing":
                out.setdefault(alert.get("labels", {}).get("alertname", "?"), set()).add(
                    note.get("receiver", "?")
                )
    return out


def area_alerts(rule_files: list[Path]) -> set[str]:
    """The alert names of an area's rule files."""
    names: set[str] = set()
    for path in rule_files:
        for group in yaml.safe_load(path.read_text(encoding="utf-8")).get("groups", []):
            names.update(r["alert"] for r in group.get("rules", []) if "alert" in r)
    return names


def check_delivered(demo: Demo, failing: dict[str, set[str]], timeout: float) -> bool:
    """Wait until, for each area with a failing scenario (area -> its alert names), one of its
    alerts has reached the webhook receiver; print one line per area::

        alerts delivered: backup BackupJobFailed (msp-ticketing)
    """
    end = time.monotonic() + timeout
    while True:
        seen = delivered_alerts(AlertingArea.notifications(demo))
        missing = [area for area, names in failing.items() if not names & seen.keys()]
        if not missing or time.monotonic() > end:
            break
        demo.procs.sleep(5)
    for area, names in failing.items():
        got = sorted(names & seen.keys())
        what = ", ".join(f"{n} ({', '.join(sorted(seen[n]))})" for n in got) or "none"
        print(f"alerts delivered: {area} {what}")
    return not missing
