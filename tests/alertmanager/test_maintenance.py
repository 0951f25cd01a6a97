"""A real Alertmanager 0.25 on the generated config mutes a customer inside its maintenance
window, in the customer's own time zone, and still notifies for a customer whose window
has the same wall-clock hours in another zone (closed right now there).

The windows are built around the moment the test runs: open for two hours in
Pacific/Auckland; the same days and hours in America/New_York are 16 to 18 hours away.
An Alertmanager that ignored `location` (UTC) would mute neither.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from mspwatch.common.procs import free_port, wait_for_port
from mspwatch.inventory import Inventory, is_in_maintenance
from mspwatch.inventory.localtime import WEEKDAYS
from mspwatch.targets.alertmanager import render
from tests.conftest import require_tool

from .test_end_to_end import Webhooks, hooks  # noqa: F401 - the webhook server fixture

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 45.0


def _window_around_now() -> dict[str, Any]:
    local = datetime.now(UTC).astimezone(ZoneInfo("Pacific/Auckland"))
    minute = local.hour * 60 + local.minute
    start, end = max(0, minute - 60), min(1440, minute + 60)
    return {
        "days": [WEEKDAYS[local.weekday()]],
        "start": f"{start // 60:02d}:{start % 60:02d}",
        "end": f"{end // 60:02d}:{end % 60:02d}",
    }


def _inventory() -> Inventory:
    weekly = _window_around_now()
    return Inventory.model_validate(
        {
            "customers": [
                {
                    "name": name,
                    "timezone": zone,
                    "sites": [{"name": "hq"}],
                    "maintenance": [{"name": "works", "weekly": weekly}],
                }
                for name, zone in (("kiwi", "Pacific/Auckland"), ("yankee", "America/New_York"))
            ]
        }
    )


def _config(tmp_path: Path, inv: Inventory, hook_port: int) -> Path:
    base = ROOT / "compose" / "alertmanager.base.yml"
    config = yaml.safe_load(render(yaml.safe_load(base.read_text()), inv, str(base), "inventory.yml"))
    token = tmp_path / "token"
    token.write_text("test-token")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"http://127.0.0.1:{hook_port}/hook/{receiver['name']}"
            hook["http_config"]["authorization"]["credentials_file"] = str(token)

    def shorten(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", "1s"), ("group_interval", "1s")):
            if key in route or route is config["route"]:
                route[key] = value
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _alert(customer: str) -> dict[str, Any]:
    labels = {"alertname": "DeviceUnreachable", "severity": "critical", "customer": customer, "site": "hq"}
    return {"labels": {**labels, "device": "fw1"}, "annotations": {"summary": "test"}}


def test_a_customer_is_muted_in_its_own_zone_only(
    tmp_path: Path,
    hooks: Webhooks,  # noqa: F811 - pytest fixture
    start_process: Any,
) -> None:
    inv = _inventory()
    now = datetime.now(UTC)
    # The premise, from the inventory's own reading of the windows (with an hour's margin).
    for ts in (now, now + timedelta(minutes=30)):
        assert is_in_maintenance(inv.customer("kiwi"), "hq", ts)
        assert not is_in_maintenance(inv.customer("yankee"), "hq", ts)

    port = free_port()
    am = start_process(
        [
            require_tool("prometheus-alertmanager"),
            f"--config.file={_config(tmp_path, inv, hooks.port)}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=debug",
        ],
        "alertmanager",
    )
    wait_for_port(port, proc=am)
    # kiwi first: its group flushes first, so a notification for it would arrive before yankee's.
    for customer in ("kiwi", "yankee"):
        reply = httpx.post(f"http://127.0.0.1:{port}/api/v2/alerts", json=[_alert(customer)], timeout=5)
        assert reply.status_code == 200, reply.text

    log = tmp_path / "alertmanager.log"
    end = time.monotonic() + TIMEOUT
    while True:
        sent = [(n["receiver"], n["groupLabels"].get("customer")) for n in hooks.received()]
        muted = "within mute time" in log.read_text()
        if ("msp-paging", "yankee") in sent and muted:
            break
        if time.monotonic() > end:
            pytest.fail(f"timed out: notifications {sent}, mute logged: {muted}")
        time.sleep(0.2)
    assert sent == [("msp-paging", "yankee")]
