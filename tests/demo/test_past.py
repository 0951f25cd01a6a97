"""The demo's past meets its live estate: the history's counters are the agents' own series."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mspwatch.simulators.history.live import recording_counters
from mspwatch.simulators.snmp import prepare_data_dir

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "snmp" / "golden"


def _golden_series(path: Path, name: str) -> set[tuple[str, str]]:
    pattern = re.compile(rf'^{name}{{if_index="([^"]*)",interface="((?:[^"\\]|\\.)*)"}} ', re.M)
    return {
        (m.group(1), m.group(2).replace('\\"', '"').replace("\\\\", "\\"))
        for m in pattern.finditer(path.read_text())
    }


def test_the_history_labels_each_counter_as_the_exporter_does(tmp_path: Path) -> None:
    """Every moving counter the history writes for a recording is a series the SNMP exporter
    serves for it (its golden /metrics), with the same if_index and interface."""
    data = prepare_data_dir(tmp_path, living_since=1_700_000_000.0)
    checked = 0
    for golden in sorted(GOLDEN.glob("*.prom")):
        recording = data / f"{golden.stem}.snmprec"
        if not recording.exists():
            continue
        live = recording_counters(recording.read_text(errors="surrogateescape").splitlines())
        for c in live.counters:
            assert (dict(c.labels)["if_index"], dict(c.labels)["interface"]) in _golden_series(
                golden, c.name
            ), (
                golden.name,
                c,
            )
            checked += 1
        if live.uptime is not None:
            assert "\nsnmp_device_uptime_seconds " in golden.read_text()
    assert checked > 50


def test_the_history_counts_as_the_agent_does(tmp_path: Path) -> None:
    """A living line ``initial + rate * (now - since)``: the history's value at the epoch is the
    recorded one and grows at the line's rate; uptimes in seconds."""
    since = 1_800_000_000.0
    lines = [
        "1.3.6.1.2.1.1.3.0|67:numeric|rate=100,atime=1,initial=360000,offset=-180000000000,wrap=1",
        "1.3.6.1.2.1.2.2.1.2.3|4|eth0",
        "1.3.6.1.2.1.31.1.1.1.1.3|4x|75706c696e6b",
        "1.3.6.1.2.1.31.1.1.1.6.3|70:numeric|rate=2000.5,atime=1,initial=10,"
        f"offset={-2000.5 * since:.0f},wrap=1",
        "1.3.6.1.2.1.2.2.1.10.3|65|77",  # the 32-bit column: the 64-bit one wins
        "1.3.6.1.2.1.31.1.1.1.10.3|70|5",  # a transmit counter that does not move: no history
    ]
    live = recording_counters(lines)
    assert live.uptime is not None
    assert live.uptime.at(np.array([1_800_000_000, 1_800_000_060])).tolist() == [3600.0, 3660.0]
    [rx] = live.counters
    assert (rx.name, rx.labels) == (
        "snmp_interface_receive_bytes_total",
        (("if_index", "3"), ("interface", "uplink")),
    )
    assert rx.at(np.array([1_800_000_000, 1_800_000_060])).tolist() == [10.0, 10.0 + 2000.5 * 60]
