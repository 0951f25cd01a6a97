"""The live estate's uptimes and traffic counters, extended back over the history.

The demo's snmpsim answers from living recordings (``mspwatch.simulators.snmp.live_lines``):
each moving value is ``initial + rate * (now - since)``, ``since`` being the estate's epoch.
The demo sets that epoch to the history's first minute, and the history samples the very
same formula, so every uptime and byte counter runs on from the history into the live part
as one series with no reset and no jump (the labels are the exporter's: ``if_index`` and
``interface`` = ifName, else ifDescr, rendered as the exporter renders labels)::

    >>> line = "1.3.6.1.2.1.1.3.0|67:numeric|rate=100,atime=1,initial=500,offset=-100000,wrap=1"
    >>> up = recording_counters([line]).uptime
    >>> up.initial, up.rate, up.since, up.at(np.array([1000, 1060])).tolist()
    (5.0, 1.0, 1000.0, [5.0, 65.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np  # noqa: F401 - the doctest's
import yaml

from mspwatch.exporters.snmp.mapping import render_label
from mspwatch.inventory import Inventory
from mspwatch.simulators.history.model import Counter
from mspwatch.simulators.snmp import SYS_UPTIME, prepare_data_dir

IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
# metric -> IF-MIB columns, the 64-bit one first (the exporter's profile: interfaces.yaml)
BYTES = {
    "snmp_interface_receive_bytes_total": ("1.3.6.1.2.1.31.1.1.1.6", "1.3.6.1.2.1.2.2.1.10"),
    "snmp_interface_transmit_bytes_total": ("1.3.6.1.2.1.31.1.1.1.10", "1.3.6.1.2.1.2.2.1.16"),
}
MODULUS = {"65": 2.0**32, "70": 2.0**64, "67": 2.0**32}


@dataclass(frozen=True)
class LiveDevice:
    uptime: Counter | None  # snmp_device_uptime_seconds
    counters: tuple[Counter, ...]  # byte counters per interface


def _value(tag: str, raw: str) -> bytes | int:
    if tag.endswith("x"):
        return bytes.fromhex(raw)
    if tag.startswith("4"):
        return raw.encode("utf-8", "surrogateescape")
    return int(raw) if raw.lstrip("-").isdigit() else 0


def _moving(name: str, labels: tuple[tuple[str, str], ...], line: str, scale: float) -> Counter | None:
    """The counter a living recording line serves (``oid|70:numeric|rate=..,initial=..``)."""
    _, tag, value = line.split("|", 2)
    base, _, module = tag.partition(":")
    if base not in MODULUS:
        return None
    if module != "numeric":
        return Counter(
            name, labels, float(value) * scale if value.isdigit() else 0.0, 0.0, 0.0, MODULUS[base]
        )
    params = dict(p.partition("=")[::2] for p in value.split(","))
    rate = float(params.get("rate", 0))
    offset = float(params.get("offset", 0))
    since = -offset / rate if rate else 0.0
    return Counter(
        name, labels, float(params.get("initial", 0)) * scale, rate * scale, since, MODULUS[base] * scale
    )


def recording_counters(lines: list[str]) -> LiveDevice:
    """The uptime and byte counters one living recording serves, labelled as the exporter does."""
    by_oid = {ln.partition("|")[0]: ln for ln in lines if ln and not ln.startswith("#")}
    uptime = (
        _moving("snmp_device_uptime_seconds", (), by_oid[SYS_UPTIME], 0.01) if SYS_UPTIME in by_oid else None
    )
    names: dict[str, str] = {}
    for column in (IF_DESCR, IF_NAME):  # ifName wins where both are set
        for oid, line in by_oid.items():
            if oid.startswith(column + "."):
                _, tag, raw = line.split("|", 2)
                label = render_label(_value(tag.partition(":")[0], raw))
                if label:
                    names[oid[len(column) + 1 :]] = label
    counters = []
    for name, (hc, low) in BYTES.items():
        for index in sorted(names, key=lambda i: [int(p) for p in i.split(".")]):
            row = by_oid.get(f"{hc}.{index}") or by_oid.get(f"{low}.{index}")
            if row:
                labels = (("if_index", index), ("interface", names[index]))
                # A counter that does not move (a port that is down) gets no history: hundreds
                # of flat series would double the backfill for nothing a graph shows.
                if (c := _moving(name, labels, row, 1.0)) is not None and c.rate > 0:
                    counters.append(c)
    return LiveDevice(uptime, tuple(counters))


def live_devices(inv: Inventory, snmp_config: Path, data_dir: Path, since: float) -> dict[str, LiveDevice]:
    """{device address: its live counters}: the recordings the demo's snmpsim serves from
    ``data_dir`` (written here as the demo writes them, so snmpsim's index stays valid)."""
    prepare_data_dir(data_dir, living_since=since)
    auths = yaml.safe_load(snmp_config.read_text(encoding="utf-8"))["auths"]
    out = {}
    for c in inv.customers:
        for s in c.sites:
            for d in s.devices:
                if d.snmp_auth and d.snmp_auth in auths:
                    auth = auths[d.snmp_auth]
                    recording = data_dir / f"{auth.get('context_name') or auth['community']}.snmprec"
                    if recording.exists():
                        lines = recording.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
                        out[d.address] = recording_counters(lines)
    return out
