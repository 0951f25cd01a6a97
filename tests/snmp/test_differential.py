"""Differential test: the real snmp_exporter and mspwatch read the same recorded devices, and
every interface counter and status both produce carries the same value."""

from __future__ import annotations

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mspwatch.common.procs import free_port, spawn, stop_process, wait_for_port
from mspwatch.exporters.snmp.main import SnmpApp
from mspwatch.simulators.snmp import RECORDINGS
from tests.conftest import require_tool

from .conftest import Agent
from .helpers import FROZEN_NOW, scrape, write_config

IF = "1.3.6.1.2.1.2.2.1."
IFX = "1.3.6.1.2.1.31.1.1.1."
# snmp_exporter metric -> OID, as its generator would emit them from IF-MIB.
PEER_METRICS = {
    "ifInOctets": IF + "10",
    "ifOutOctets": IF + "16",
    "ifInUcastPkts": IF + "11",
    "ifOutUcastPkts": IF + "17",
    "ifInErrors": IF + "14",
    "ifOutErrors": IF + "20",
    "ifInDiscards": IF + "13",
    "ifOutDiscards": IF + "19",
    "ifOperStatus": IF + "8",
    "ifAdminStatus": IF + "7",
    "ifSpeed": IF + "5",
    "ifHCInOctets": IFX + "6",
    "ifHCOutOctets": IFX + "10",
    "ifHCInUcastPkts": IFX + "7",
    "ifHCOutUcastPkts": IFX + "11",
    "ifHighSpeed": IFX + "15",
}
# ours -> (64-bit peer metric or None, 32-bit peer metric, scale of the peer value)
COUNTERS = {
    "snmp_interface_receive_bytes_total": ("ifHCInOctets", "ifInOctets"),
    "snmp_interface_transmit_bytes_total": ("ifHCOutOctets", "ifOutOctets"),
    "snmp_interface_receive_unicast_packets_total": ("ifHCInUcastPkts", "ifInUcastPkts"),
    "snmp_interface_transmit_unicast_packets_total": ("ifHCOutUcastPkts", "ifOutUcastPkts"),
    "snmp_interface_receive_errors_total": (None, "ifInErrors"),
    "snmp_interface_transmit_errors_total": (None, "ifOutErrors"),
    "snmp_interface_receive_discards_total": (None, "ifInDiscards"),
    "snmp_interface_transmit_discards_total": (None, "ifOutDiscards"),
}
OPER = {"up": 1, "down": 2, "testing": 3, "unknown": 4, "dormant": 5, "not_present": 6, "lower_layer_down": 7}
DEVICES = sorted(RECORDINGS)


def _peer_config(port: int) -> dict[str, object]:
    modules: dict[str, object] = {}
    for device in DEVICES:
        modules[device] = {
            "walk": sorted(set(PEER_METRICS.values())),
            "metrics": [
                {
                    "name": name,
                    "oid": oid,
                    "type": "gauge" if "Status" in name or "Speed" in name else "counter",
                    "help": name,
                    "indexes": [{"labelname": "ifIndex", "type": "gauge"}],
                }
                for name, oid in PEER_METRICS.items()
            ],
            "version": 2,
            "auth": {"community": device},
            "max_repetitions": 25,
            "retries": 1,
            "timeout": "10s",
        }
    return modules


def _by_index(text: str, names: set[str], label: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            # client_python's parser names counter samples *_total even when the exposition
            # (snmp_exporter's ifInOctets) has no suffix.
            name = sample.name if sample.name in names else sample.name.removesuffix("_total")
            if name in names:
                out.setdefault(name, {})[sample.labels[label]] = sample.value
    return out


@pytest.fixture(scope="module")
def peer(snmpsim: Agent, tmp_path_factory: pytest.TempPathFactory) -> str:
    exe = require_tool("prometheus-snmp-exporter")
    base = tmp_path_factory.mktemp("snmp_exporter")
    (base / "snmp.yml").write_text(yaml.safe_dump(_peer_config(snmpsim.port)))
    port = free_port()
    log = base / "log"
    proc = spawn(
        [
            exe,
            f"--config.file={base / 'snmp.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--no-snmp.wrap-large-counters",
        ],
        log,
    )
    try:
        wait_for_port(port, proc=proc, log=log)
        yield f"http://127.0.0.1:{port}"  # type: ignore[misc]
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> SnmpApp:
    return SnmpApp(write_config(tmp_path_factory.mktemp("ours") / "snmp.yml"), clock=lambda: FROZEN_NOW)


@pytest.mark.parametrize("device", DEVICES)
async def test_same_interface_values_as_snmp_exporter(
    device: str, peer: str, ours: SnmpApp, snmpsim: Agent
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.get(f"{peer}/snmp", params={"target": f"127.0.0.1:{snmpsim.port}", "module": device})
    assert r.status_code == 200, r.text
    theirs = _by_index(r.text, set(PEER_METRICS), "ifIndex")
    mine_text = await scrape(ours, snmpsim.port, device, module="interfaces")
    mine = _by_index(mine_text, {*COUNTERS, "snmp_interface_speed_bytes"}, "if_index")
    compared = 0
    for metric, (hc, low) in COUNTERS.items():
        for index, peer_low in theirs.get(low, {}).items():
            expected = theirs.get(hc, {}).get(index, peer_low) if hc else peer_low
            assert mine[metric][index] == expected, (metric, index)
            compared += 1
    # Both read the same interfaces: none missing on either side.
    for metric, (hc, low) in COUNTERS.items():
        peer_rows = set(theirs.get(low, {})) | (set(theirs.get(hc, {})) if hc else set())
        assert set(mine.get(metric, {})) == peer_rows, metric
    for index, high in theirs.get("ifHighSpeed", {}).items():
        assert mine["snmp_interface_speed_bytes"][index] == high * 125_000
    # Status: our one-series-per-state output carries the same state as the raw number.
    states: dict[str, dict[str, float]] = {
        "snmp_interface_oper_status": {},
        "snmp_interface_admin_status": {},
    }
    for family in text_string_to_metric_families(mine_text):
        for s in family.samples:
            if s.name in states and s.value == 1:
                states[s.name][s.labels["if_index"]] = OPER[s.labels["state"]]
    for peer_name, my_name in (
        ("ifOperStatus", "snmp_interface_oper_status"),
        ("ifAdminStatus", "snmp_interface_admin_status"),
    ):
        for index, raw in theirs.get(peer_name, {}).items():
            if raw in OPER.values():
                assert states[my_name][index] == raw, (peer_name, index)
                compared += 1
    assert compared >= 8, "the device has interfaces; both exporters must have read them"


def test_differential_covers_most_devices() -> None:
    assert len(DEVICES) >= 10
