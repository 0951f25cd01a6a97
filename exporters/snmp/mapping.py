"""Mapping: SNMP values + profiles -> metric families. Pure: no I/O, no clock.

A table metric turns each row into a sample, e.g. for the interfaces profile::

    # HELP snmp_interface_receive_bytes_total Octets received (IF-MIB ifHCInOctets ...).
    # TYPE snmp_interface_receive_bytes_total counter
    snmp_interface_receive_bytes_total{if_index="1",interface="Gi0/1"} 1.234e+09
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .client import Value
from .profile import LabelSpec, MetricSpec, Oid, Profile, TableSpec

Column = Mapping[Oid, Value]  # row index suffix -> value


@dataclass
class DeviceData:
    """Everything read from one device in one scrape."""

    scalars: Mapping[Oid, Value]
    columns: Mapping[Oid, Column]  # column OID -> rows
    now: float  # wall clock, for boot time
    incomplete: frozenset[Oid] = frozenset()  # columns whose walk failed part-way


@dataclass
class Families:
    """Collects samples by metric name so profiles can share a metric.

    Where a vendor profile and a generic one both read a metric (APC PowerNet and UPS-MIB,
    Cisco ENVMON and ENTITY-SENSOR), the first profile to emit it owns it for the scrape:
    mixing both would give contradictory series. Profiles run vendor-first.
    """

    _by_name: dict[str, Metric] = field(default_factory=dict)
    _owner: dict[str, str] = field(default_factory=dict)
    _seen: set[tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=set)
    invalid_values: int = 0

    def claim(self, name: str, owner: str) -> bool:
        """True when ``owner`` (a profile) may emit metric ``name`` in this scrape."""
        return self._owner.setdefault(name, owner) == owner

    def add(self, spec: MetricSpec, labels: dict[str, str], value: float, unique: bool) -> None:
        """Add a sample; ``unique`` says its labels cannot repeat (the row index is a label)."""
        if not unique:
            key = (spec.name, tuple(sorted(labels.items())))
            if key in self._seen:  # two rows rendered to the same labels: keep the first
                self.invalid_values += 1
                return
            self._seen.add(key)
        fam = self._by_name.get(spec.name)
        if fam is None:
            if spec.type == "counter":
                fam = CounterMetricFamily(spec.name, spec.help)
            else:
                fam = GaugeMetricFamily(spec.name, spec.help)
            self._by_name[spec.name] = fam
        sample_name = fam.name + "_total" if spec.type == "counter" else fam.name
        fam.add_sample(sample_name, labels, value)

    def metrics(self) -> list[Metric]:
        return [self._by_name[name] for name in sorted(self._by_name)]


def _hex(value: bytes) -> str:
    return ":".join(f"{b:02x}" for b in value)


def render_label(value: Value | None, fmt: str = "auto") -> str:
    """Render an SNMP value as a label: text when printable, else colon-separated hex.

    Line breaks (multi-line sysDescr) fold to single spaces; any other control character
    (a tab or NUL inside a MAC address) means binary, shown as hex.
    """
    if value is None:
        return ""
    if isinstance(value, bytes):
        if fmt == "hex":
            return _hex(value)
        try:
            text = value.rstrip(b"\x00").decode("utf-8")
        except UnicodeDecodeError:
            return _hex(value)
        folded = " ".join(line.strip() for line in text.splitlines() if line.strip())
        return folded if folded.isprintable() else _hex(value)
    if isinstance(value, tuple):
        return ".".join(map(str, value))
    return str(value)


def numeric(value: Value | None) -> float | None:
    """Numbers as floats; numeric strings (UCD laLoad "0.05") parsed; anything else None."""
    if isinstance(value, int):
        return float(value)
    if isinstance(value, bytes):
        try:
            parsed = float(value.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def index_labels(names: list[str], index: Oid) -> dict[str, str]:
    """Split a row index into its labels; the last label takes any remaining components."""
    if len(names) == 1 or len(index) < len(names):
        out = {names[0]: ".".join(map(str, index))}
    else:
        out = {name: str(part) for name, part in zip(names[:-1], index, strict=False)}
        out[names[-1]] = ".".join(map(str, index[len(names) - 1 :]))
    return {k: v for k, v in out.items() if not k.startswith("_")}


def lookup(spec: LabelSpec, columns: Mapping[Oid, Column], index: Oid) -> str:
    if spec.value is not None:
        return spec.value
    if spec.index_part is not None:
        if spec.index_part >= len(index):  # an agent's malformed row index
            return ""
        key: Oid = (index[spec.index_part],)
    else:
        key = index
    for oid in spec.oids:
        raw = columns.get(oid, {}).get(key)
        if spec.map and isinstance(raw, int):
            return spec.map.get(raw, str(raw))
        text = render_label(raw, spec.format)
        if spec.strip is not None:
            text = spec.strip.sub("", text)
        if text:
            return text
    return ".".join(map(str, index)) if spec.fallback_to_index else ""


# ENTITY-SENSOR-MIB entPhySensorScale -> power of ten (exa and peta are out of order).
SENSOR_SCALE = {
    1: -24,
    2: -21,
    3: -18,
    4: -15,
    5: -12,
    6: -9,
    7: -6,
    8: -3,
    9: 0,
    10: 3,
    11: 6,
    12: 9,
    13: 12,
    14: 18,
    15: 15,
    16: 21,
    17: 24,
}


def _scaled(value: float, scale: float) -> float:
    """Multiply by ``scale``; divide by its inverse when that is whole (41 * 0.01 -> 0.41)."""
    if 0 < scale < 1:
        inverse = round(1 / scale)
        if abs(1 / scale - inverse) < 1e-9:
            return value / inverse
    return value * scale


def _emit(
    out: Families,
    unique: bool,
    spec: MetricSpec,
    raw: Value | None,
    scale: float,
    labels: dict[str, str],
    row: Mapping[Oid, Column] | None = None,
    index: Oid = (),
    now: float = 0.0,
) -> None:
    if spec.type == "info":
        out.add(spec, labels, 1.0, unique)
        return
    if spec.type == "state":
        assert spec.states is not None
        current = (spec.states.get(raw) if isinstance(raw, int) else None) or "unknown"
        for name in dict.fromkeys([*spec.states.values(), "unknown"]):
            hit = name == current
            out.add(spec, {**labels, spec.state_label: name}, 1.0 if hit else 0.0, unique)
        return
    if spec.type == "bool":
        assert spec.true_values is not None
        out.add(spec, labels, 1.0 if raw in spec.true_values else 0.0, unique)
        return
    value = numeric(raw)
    if value is None:
        out.invalid_values += 1
        return
    value = _scaled(value, scale * spec.scale)
    if spec.multiply_by is not None and row is not None:
        factor = numeric(row.get(spec.multiply_by, {}).get(index))
        if factor is None:
            out.invalid_values += 1
            return
        value *= factor
    if spec.add is not None and row is not None:
        term = numeric(row.get(spec.add, {}).get(index))
        if term is None:
            out.invalid_values += 1
            return
        value += _scaled(term, scale * spec.scale)
    if spec.transform == "entity_sensor" and row is not None:
        base = spec.sources[0].oid[:-1]
        unit = row.get((*base, 2), {}).get(index, 9)  # entPhySensorScale, 9 = units
        precision = row.get((*base, 3), {}).get(index, 0)  # entPhySensorPrecision
        exponent = SENSOR_SCALE.get(unit) if isinstance(unit, int) else None
        if exponent is None or not isinstance(precision, int) or not -8 <= precision <= 9:
            out.invalid_values += 1  # outside the MIB's ranges: the reading means nothing
            return
        value = value * 10.0**exponent / 10.0**precision
    elif spec.transform == "boot_time":
        value = now - value
    if not math.isfinite(value):
        out.invalid_values += 1
        return
    out.add(spec, labels, value, unique)


def map_scalars(profile: Profile, data: DeviceData, out: Families) -> None:
    as_columns: dict[Oid, Column] = {o: {(): v} for o, v in data.scalars.items()}
    for spec in profile.scalars:
        source = next((s for s in spec.sources if s.oid in data.scalars), None)
        if source is None or not out.claim(spec.name, profile.name):
            continue
        labels = {name: lookup(ls, as_columns, ()) for name, ls in spec.labels.items()}
        _emit(out, False, spec, data.scalars[source.oid], source.scale, labels, now=data.now)


def map_table(table: TableSpec, data: DeviceData, out: Families, owner: str) -> None:
    cols = data.columns
    # A lookup whose walk failed: rows it did not name are left out rather than exported
    # under an empty name (new series for one scrape would break rate()).
    unsure = [ls for ls in table.labels.values() if any(o in data.incomplete for o in ls.oids)]
    # With every index component a label, no two rows can share labels: no check needed.
    unique = not any(name.startswith("_") for name in table.index)
    base: dict[Oid, dict[str, str]] = {}  # per row: index and table labels, built once
    for spec in table.metrics:
        if not out.claim(spec.name, owner):
            continue
        # Per row, the first source that has the row wins (64-bit before 32-bit counters).
        rows: dict[Oid, tuple[Value, float]] = {}
        for source in reversed(spec.sources):
            for index, value in cols.get(source.oid, {}).items():
                rows[index] = (value, source.scale)
        for index in sorted(rows):
            value, scale = rows[index]
            if not all(w.keeps(render_label(cols.get(w.oid, {}).get(index))) for w in spec.where):
                continue
            row_labels = base.get(index)
            if row_labels is None:
                if any(all(index not in cols.get(o, {}) for o in ls.oids) for ls in unsure):
                    continue
                row_labels = index_labels(table.index, index)
                for name, ls in table.labels.items():
                    row_labels[name] = lookup(ls, cols, index)
                base[index] = row_labels
            labels = dict(row_labels)
            for name, ls in spec.labels.items():
                labels[name] = lookup(ls, cols, index)
            _emit(out, unique, spec, value, scale, labels, cols, index, data.now)


def map_profile(profile: Profile, data: DeviceData, out: Families) -> None:
    """Add one profile's metrics to ``out``; vendor profiles go first (see Families)."""
    map_scalars(profile, data, out)
    for table in profile.tables:
        map_table(table, data, out, profile.name)
