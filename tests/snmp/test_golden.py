"""Every recorded device's /metrics against a reviewed golden file, and promtool's lint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mspwatch.exporters.snmp.main import SnmpApp
from mspwatch.simulators.snmp import RECORDINGS
from tests.conftest import assert_golden, promtool_check_metrics

from .conftest import Agent
from .helpers import FROZEN_NOW, normalise, scrape, write_config

GOLDEN = Path(__file__).parent / "golden"
DEVICES = [*sorted(RECORDINGS), "ups-apc-smart"]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> SnmpApp:
    cfg = write_config(tmp_path_factory.mktemp("cfg") / "snmp.yml")
    return SnmpApp(cfg, clock=lambda: FROZEN_NOW)


@pytest.mark.parametrize("device", DEVICES)
async def test_device_matches_golden(device: str, snmpsim: Agent, app: SnmpApp, update_goldens: bool) -> None:
    text = normalise(await scrape(app, snmpsim.port, device))
    assert "snmp_up 1.0" in text
    assert_golden(GOLDEN / f"{device}.prom", text, update_goldens)
    assert promtool_check_metrics(text) == ""
    # Text (DisplayString) labels read as text: a multi-line sysDescr is not binary.
    text_labels = r'(description|name|interface|sensor|storage|memory|cpu|alias)="([0-9a-f]{2}:){5,}'
    assert not re.search(text_labels, text), re.search(text_labels, text)


def test_at_least_ten_device_families() -> None:
    families = {name.split("-")[0] for name in DEVICES}
    assert {"switch", "router", "firewall", "ups", "wifi", "server", "storage", "pdu"} <= families
    assert len(DEVICES) >= 10
