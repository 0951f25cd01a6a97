"""Devices that fail are data: each fault gives HTTP-level success with a bounded reason."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from mspwatch.common.procs import free_port
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.probe import BadRequest
from mspwatch.exporters.snmp.client import PysnmpClient
from mspwatch.exporters.snmp.main import SnmpApp

from .conftest import HUGE_TABLE_ROWS, V3_AUTH_KEY, V3_PRIV_KEY, Agent
from .helpers import FROZEN_NOW, scrape, value, write_config

V3 = {
    "version": 3,
    "username": "mspwatch",
    "security_level": "authPriv",
    "auth_protocol": "SHA256",
    "auth_password": V3_AUTH_KEY,
    "priv_protocol": "AES256",
    "priv_password": V3_PRIV_KEY,
    "context_name": "switch-cisco-c3560",
}


@pytest.fixture
def app(tmp_path: Path) -> SnmpApp:
    extra = {
        "auths": {
            **yaml.safe_load(write_config(tmp_path / "base.yml").read_text())["auths"],
            "v3": V3,
            "v3-wrong-password": {**V3, "auth_password": "not-the-password"},
            "wrong-community": {"version": 2, "community": "no-such-community"},
        }
    }
    return SnmpApp(write_config(tmp_path / "snmp.yml", extra), clock=lambda: FROZEN_NOW)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP socket that receives but never answers: a host that drops SNMP."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _profile_success(text: str) -> dict[str, float]:
    return {
        line.split('"')[1]: float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("snmp_profile_success{")
    }


def reason(text: str) -> str:
    hits = [
        line.split('"')[1]
        for line in text.splitlines()
        if line.startswith("snmp_scrape_error{") and line.endswith(" 1.0")
    ]
    assert len(hits) <= 1, hits
    return hits[0] if hits else ""


async def test_closed_port_is_unreachable_not_an_error(app: SnmpApp) -> None:
    # Nothing listens: the kernel answers ICMP port unreachable.
    started = time.monotonic()
    text = await scrape(app, free_port(), "server-linux", budget=5)
    assert value(text, "snmp_up") == 0
    assert reason(text) == "unreachable"  # the fast client reads ICMP errors (IP_RECVERR)
    assert time.monotonic() - started < 5


async def test_silent_host_answers_within_the_deadline(app: SnmpApp, silent_port: int) -> None:
    started = time.monotonic()
    text = await scrape(app, silent_port, "server-linux", budget=1.5)
    elapsed = time.monotonic() - started
    assert value(text, "snmp_up") == 0
    assert reason(text) in ("timeout", "deadline")
    # The app is handed the deadline already less the server's margin (0.5 s by default):
    # finishing within a quarter of that margin keeps the answer inside Prometheus's timeout.
    assert elapsed < 1.5 + 0.125


async def test_wrong_community_is_a_timeout(app: SnmpApp, snmpsim: Agent) -> None:
    # v1/v2c agents drop requests with an unknown community: indistinguishable from a
    # silent host, so the reason is timeout.
    text = await scrape(app, snmpsim.port, "wrong-community", budget=3)
    assert value(text, "snmp_up") == 0
    assert reason(text) == "timeout"


async def test_v3_sha256_aes256_reads_the_same_device(app: SnmpApp, snmpsim: Agent) -> None:
    v3 = await scrape(app, snmpsim.port, "v3", module="interfaces")
    v2 = await scrape(app, snmpsim.port, "switch-cisco-c3560", module="interfaces")
    assert value(v3, "snmp_up") == 1
    series = 'snmp_interface_receive_bytes_total{if_index="10150",interface="Gi0/50"}'
    assert value(v3, series) == value(v2, series) > 0
    pick = [ln for ln in v3.splitlines() if ln.startswith("snmp_interface_")]
    assert pick == [ln for ln in v2.splitlines() if ln.startswith("snmp_interface_")]


async def test_v3_wrong_password_is_an_auth_failure(app: SnmpApp, snmpsim: Agent) -> None:
    text = await scrape(app, snmpsim.port, "v3-wrong-password", budget=5)
    assert value(text, "snmp_up") == 0
    assert reason(text) == "auth"


async def test_slow_agent_within_timeout_succeeds(tmp_path: Path, bad_agent: int) -> None:
    app = SnmpApp(write_config(tmp_path / "s.yml", timeout="3s"), clock=lambda: FROZEN_NOW)
    text = await scrape(app, bad_agent, "slow", budget=10, module="system")
    assert value(text, "snmp_up") == 1
    assert value(text, "snmp_device_uptime_seconds") == 42.42


async def test_slow_agent_past_timeout_retries_then_gives_up(tmp_path: Path, bad_agent: int) -> None:
    app = SnmpApp(write_config(tmp_path / "s.yml", timeout="500ms", retries=1))
    started = time.monotonic()
    text = await scrape(app, bad_agent, "slow", budget=10, module="system")
    assert value(text, "snmp_up") == 0
    assert reason(text) == "timeout"
    assert value(text, "snmp_scrape_retries") == 1
    assert value(text, "snmp_scrape_pdus_sent") == 2
    assert time.monotonic() - started < 1.5


async def test_non_increasing_oids_end_the_walk_without_hanging(app: SnmpApp, bad_agent: int) -> None:
    text = await scrape(app, bad_agent, "loop", budget=10, module="system,interfaces")
    assert value(text, "snmp_up") == 1
    assert value(text, 'snmp_profile_success{profile="system"}') == 1
    assert value(text, 'snmp_profile_success{profile="interfaces"}') == 0
    # A naive walker would ask again forever; this one stops at the first step back.
    assert value(text, "snmp_scrape_pdus_sent") < 40


async def test_counter_wrap_is_exported_exactly(app: SnmpApp, snmpsim: Agent) -> None:
    before = await scrape(app, snmpsim.port, "counter-wrap-before", module="interfaces")
    after = await scrape(app, snmpsim.port, "counter-wrap-after", module="interfaces")
    hc = 'snmp_interface_receive_bytes_total{if_index="1",interface="eth0"}'
    assert value(before, hc) == float(2**64 - 1)
    assert value(after, hc) == 1500.0  # a reset to Prometheus's rate(), never negative
    out32 = 'snmp_interface_transmit_bytes_total{if_index="1",interface="eth0"}'
    assert value(before, out32) == float(2**32 - 1)  # no ifHCOutOctets: 32-bit fallback
    assert value(after, out32) == 1500.0


async def test_broken_values_are_skipped_and_counted(app: SnmpApp, snmpsim: Agent) -> None:
    text = await scrape(app, snmpsim.port, "broken-values")
    assert value(text, "snmp_up") == 1
    # sysUpTime as text (uptime and boot time), ifInOctets.1, hrProcessorLoad.1, and a
    # sensor precision of 99 (the MIB allows -8..9)
    assert value(text, "snmp_scrape_invalid_values") == 5
    assert value(text, 'snmp_sensor_temperature_celsius{sensor="Inlet sensor"}') == 21.5
    assert 'sensor="CPU sensor"' not in text.split("snmp_sensor_ok")[0]
    # An LLDP row with a one-part index: kept, its local port unknown, never a crash.
    assert 'remote_system="short-index-neighbour"' in text
    assert all(v == 1 for k, v in _profile_success(text).items()), _profile_success(text)
    assert "snmp_device_uptime_seconds" not in text.replace("# HELP snmp_device_uptime", "")
    assert value(text, 'snmp_interface_receive_bytes_total{if_index="2",interface="ff:00:fe"}') == 1234
    assert value(text, 'snmp_interface_oper_status{if_index="2",interface="ff:00:fe",state="unknown"}') == 1
    assert value(text, 'snmp_cpu_utilization_ratio{cpu="2"}') == 0.07


async def test_huge_table_is_read_completely(app: SnmpApp, snmpsim: Agent) -> None:
    text = await scrape(app, snmpsim.port, "huge-table", budget=60, module="interfaces")
    rows = [ln for ln in text.splitlines() if ln.startswith("snmp_interface_receive_bytes_total{")]
    assert len(rows) == HUGE_TABLE_ROWS
    assert value(text, 'snmp_interface_receive_bytes_total{if_index="2999",interface="Gi62/0/23"}') == 2999000


async def test_lookup_labels_are_cached_between_scrapes(app: SnmpApp, snmpsim: Agent) -> None:
    first = await scrape(app, snmpsim.port, "switch-cisco-c3560", module="interfaces")
    second = await scrape(app, snmpsim.port, "switch-cisco-c3560", module="interfaces")
    assert value(first, "snmp_scrape_lookup_cache_hits") == 0
    assert value(second, "snmp_scrape_lookup_cache_hits") == 1
    assert value(second, "snmp_scrape_pdus_sent") < value(first, "snmp_scrape_pdus_sent")
    strip = [ln for ln in first.splitlines() if ln.startswith("snmp_interface_")]
    assert strip == [ln for ln in second.splitlines() if ln.startswith("snmp_interface_")]


async def test_pysnmp_client_gives_the_same_answer(tmp_path: Path, snmpsim: Agent) -> None:
    # The reference client and the fast path must agree value for value.
    cfg = write_config(tmp_path / "p.yml")
    fast = SnmpApp(cfg, clock=lambda: FROZEN_NOW)
    slow = SnmpApp(cfg, client_factory=PysnmpClient, clock=lambda: FROZEN_NOW)
    for device in ("switch-cisco-c3560", "firewall-paloalto-pa5000"):
        a = await scrape(fast, snmpsim.port, device)
        b = await scrape(slow, snmpsim.port, device)
        keep = lambda t: [ln for ln in t.splitlines() if not ln.startswith("snmp_scrape_")]  # noqa: E731
        assert keep(a) == keep(b)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "'target' parameter must be specified"),
        ({"target": "127.0.0.1", "auth": "nope"}, "unknown auth 'nope'"),
        ({"target": "127.0.0.1", "auth": "server-linux", "module": "system,nope"}, "unknown module 'nope'"),
        (
            {"target": "127.0.0.1:99999", "auth": "server-linux"},
            "invalid target: invalid port in '127.0.0.1:99999'",
        ),
        ({"target": "no such host!", "auth": "server-linux"}, "invalid target: invalid host 'no such host!'"),
        (
            {"target": "tcp://10.0.0.1", "auth": "server-linux"},
            "invalid target: only UDP transport is supported",
        ),
    ],
)
async def test_bad_requests_name_the_problem(app: SnmpApp, params: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequest) as err:
        await app.probe(params, Deadline.after(5))
    assert str(err.value) == message


async def test_allowlist_refuses_other_targets(tmp_path: Path) -> None:
    app = SnmpApp(write_config(tmp_path / "a.yml", {"allowed_targets": ["10.0.0.0/8"]}))
    with pytest.raises(BadRequest) as err:
        await app.probe({"target": "127.0.0.1", "auth": "server-linux"}, Deadline.after(5))
    assert str(err.value) == "target '127.0.0.1' is not in allowed_targets"


async def test_snmp_v1_walks_with_getnext(tmp_path: Path, snmpsim: Agent) -> None:
    extra = {"auths": {"v1": {"version": 1, "community": "router-vyatta"}}}
    app = SnmpApp(write_config(tmp_path / "v1.yml", extra), clock=lambda: FROZEN_NOW)
    v2 = SnmpApp(write_config(tmp_path / "v2.yml"), clock=lambda: FROZEN_NOW)
    one = await scrape(app, snmpsim.port, "v1", module="system,interfaces")
    two = await scrape(v2, snmpsim.port, "router-vyatta", module="system,interfaces")
    assert value(one, "snmp_up") == 1
    # v1 has no Counter64: the 32-bit counters stand in, so compare what v1 can carry.
    keep = ("snmp_interface_oper_status", "snmp_interface_receive_errors_total", "snmp_device_info")
    assert [ln for ln in one.splitlines() if ln.startswith(keep)] == [
        ln for ln in two.splitlines() if ln.startswith(keep)
    ]


async def test_devices_in_flight_are_limited_within_the_deadline(tmp_path: Path, bad_agent: int) -> None:
    # One slot; the slow agent holds it for 1.5 s per request, so a second scrape with a
    # 1 s budget never gets a slot: it answers in time with reason deadline.
    app = SnmpApp(write_config(tmp_path / "f.yml", {"max_devices_in_flight": 1}, timeout="3s"))
    first = asyncio.ensure_future(scrape(app, bad_agent, "slow", budget=10, module="system"))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    second = await scrape(app, bad_agent, "slow", budget=1, module="system")
    assert time.monotonic() - started < 1.2
    assert value(second, "snmp_up") == 0
    assert reason(second) == "deadline"
    assert value(await first, "snmp_up") == 1


async def test_snmp_exporter_module_names_keep_working(app: SnmpApp, snmpsim: Agent) -> None:
    ours = await scrape(app, snmpsim.port, "switch-cisco-c3560", module="system,interfaces")
    params = {"target": f"udp://127.0.0.1:{snmpsim.port}", "auth": "switch-cisco-c3560", "module": "if_mib"}
    theirs = generate_latest(await app.probe(params, Deadline.after(30))).decode()
    keep = lambda t: [ln for ln in t.splitlines() if not ln.startswith("snmp_scrape_")]  # noqa: E731
    assert keep(ours) == keep(theirs)
    assert 'snmp_profile_success{profile="interfaces"} 1.0' in theirs


async def test_v3_auths_sharing_a_user_name_do_not_clash(app: SnmpApp, snmpsim: Agent) -> None:
    # MSPs use one v3 user name at every customer with different keys; scraped at the same
    # time, each auth must keep its own keys.
    for _ in range(3):
        good, bad = await asyncio.gather(
            scrape(app, snmpsim.port, "v3", budget=10, module="system"),
            scrape(app, snmpsim.port, "v3-wrong-password", budget=10, module="system"),
        )
        assert value(good, "snmp_up") == 1
        assert reason(bad) == "auth"
