"""A faster writer of the Prometheus text format for the multi-target probe path.

client_python's ``generate_latest`` is about half of the SNMP exporter's CPU on big devices.
:func:`render_text` writes the same bytes (a test compares both on every golden file and on
fuzzed label values) for the families an exporter builds; anything it was not proven on (a
name outside the legacy character set) goes through ``generate_latest`` itself::

    # HELP snmp_up Whether the device answered SNMP.
    # TYPE snmp_up gauge
    snmp_up 1.0
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

_LEGACY_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LEGACY_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_TYPES = {"counter": "counter", "info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram"}
_OM_SUFFIXES = ("_created", "_gsum", "_gcount")


def _value(v: float) -> str:
    """client_python's ``floatToGoString``.

    >>> _value(1), _value(float("inf")), _value(1234567.0), _value(0.25)
    ('1.0', '+Inf', '1.234567e+06', '0.25')
    """
    d = float(v)
    if d == math.inf:
        return "+Inf"
    if d == -math.inf:
        return "-Inf"
    if d != d:
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


class _Fallback(Exception):
    """A family this writer was not proven on: let client_python write the whole answer."""


class _Once:
    """A one-shot collector for ``generate_latest``."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def _family(metric: Metric, out: list[str]) -> None:
    name, kind = metric.name, metric.type
    if kind == "counter":
        name += "_total"
    elif kind == "info":
        name += "_info"
    elif kind == "unknown":
        kind = "untyped"
    kind = _TYPES.get(kind, kind)
    if not _LEGACY_NAME.match(name):
        raise _Fallback
    doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
    out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
    extra: dict[str, list[str]] = {}
    checked: set[str] = set()  # sample names and label names already proven legacy-valid
    special = {metric.name + suffix: suffix for suffix in _OM_SUFFIXES}
    append = out.append
    for s in metric.samples:
        sname, labels = s.name, s.labels
        if sname not in checked:
            if not _LEGACY_NAME.match(sname):
                raise _Fallback
            checked.add(sname)
        if labels:
            parts = []
            for k, v in sorted(labels.items()):
                if k not in checked:
                    if not _LEGACY_LABEL.match(k):
                        raise _Fallback
                    checked.add(k)
                parts.append(f'{k}="{_escape(v)}"')
            text = "{" + ",".join(parts) + "}"
        else:
            text = ""
        stamp = "" if s.timestamp is None else f" {int(float(s.timestamp) * 1000):d}"
        line = f"{sname}{text} {_value(s.value)}{stamp}\n"
        suffix = special.get(sname)
        if suffix is None:
            append(line)
        else:
            extra.setdefault(suffix, []).append(line)
    for suffix, lines in sorted(extra.items()):
        out.append(f"# HELP {metric.name}{suffix} {doc}\n# TYPE {metric.name}{suffix} gauge\n")
        out.extend(lines)


def render_text(families: Iterable[Metric]) -> bytes:
    """The text format (0.0.4) of ``families``, byte for byte what ``generate_latest`` writes."""
    metrics = list(families)
    out: list[str] = []
    try:
        for metric in metrics:
            _family(metric, out)
    except _Fallback:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Once(metrics))
        return generate_latest(registry)
    return "".join(out).encode("utf-8")
