"""The probe path's text writer is byte-identical to client_python's ``generate_latest``."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
    SummaryMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.parser import text_string_to_metric_families

from mspwatch.exporters.core.exposition import render_text

TESTS = Path(__file__).resolve().parents[1]
GOLDENS = sorted(TESTS.glob("*/golden/*.prom"))


class _Once:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def reference(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Once(families))
    return generate_latest(registry)


def test_there_are_goldens() -> None:
    assert len(GOLDENS) >= 20


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_golden_is_written_identically(golden: Path) -> None:
    text = golden.read_text(encoding="utf-8")
    families = list(text_string_to_metric_families(text))
    assert render_text(families) == reference(families)
    assert render_text(families) == text.encode("utf-8")


_NASTY = [
    '"',
    "\\",
    "\n",
    "\\n",
    'a"b\\c\nd',
    "",
    " ",
    "ü",
    "名前",
    "\u2028",
    "{}",
    "=,",
    "x" * 300,
    "\t",
    "\x00",
]
_VALUES = [
    0,
    1,
    -1,
    0.1,
    1e-9,
    1234567.0,
    12345678901.0,
    2**53,
    2**64,
    -2.5e10,
    float("inf"),
    float("-inf"),
    float("nan"),
]


def _label_value(rng: random.Random) -> str:
    return "".join(rng.choice([*_NASTY, "ok", "Gi0/1", "10.0.0.1"]) for _ in range(rng.randint(0, 4)))


def _families(rng: random.Random) -> list[Metric]:
    out: list[Metric] = []
    for i in range(rng.randint(1, 8)):
        names = [f"l{j}" for j in range(rng.randint(0, 3))]
        doc = rng.choice(["Help.", "a\\b\nc", 'ü " quote', ""])
        kind = rng.choice(["gauge", "counter", "info", "stateset", "histogram", "summary", "unknown"])
        name = f"fuzz_{kind}_{i}"
        fam: Metric
        if kind == "gauge":
            fam = GaugeMetricFamily(name, doc, labels=names)
            for _ in range(rng.randint(0, 5)):
                fam.add_metric(
                    [_label_value(rng) for _ in names],
                    rng.choice(_VALUES),
                    timestamp=rng.choice([None, 1700000000.123]),
                )
        elif kind == "counter":
            fam = CounterMetricFamily(name, doc, labels=names)
            for _ in range(rng.randint(0, 5)):
                fam.add_metric(
                    [_label_value(rng) for _ in names],
                    abs(rng.choice(_VALUES[:10])),
                    created=rng.choice([None, 1700000000.5]),
                )
        elif kind == "info":
            fam = InfoMetricFamily(name, doc, labels=names)
            fam.add_metric([_label_value(rng) for _ in names], {"version": _label_value(rng)})
        elif kind == "stateset":
            fam = StateSetMetricFamily(name, doc, labels=names)
            fam.add_metric([_label_value(rng) for _ in names], {"a": True, "b": False})
        elif kind == "histogram":
            fam = HistogramMetricFamily(name, doc, labels=names)
            fam.add_metric([_label_value(rng) for _ in names], [("0.5", 1.0), ("+Inf", 3.0)], sum_value=2.5)
        elif kind == "summary":
            fam = SummaryMetricFamily(name, doc, labels=names)
            fam.add_metric([_label_value(rng) for _ in names], count_value=3, sum_value=1.5)
        else:
            fam = UnknownMetricFamily(name, doc, labels=names)
            fam.add_metric([_label_value(rng) for _ in names], rng.choice(_VALUES))
        out.append(fam)
    return out


def test_fuzzed_families_are_written_identically() -> None:
    rng = random.Random(20261201)
    for _ in range(500):
        families = _families(rng)
        assert render_text(families) == reference(families)


def test_names_outside_the_legacy_set_go_through_client_python() -> None:
    fam = GaugeMetricFamily("weird.name", "dots are UTF-8 names", labels=["l"])
    fam.add_metric(["x"], 1)
    ok = GaugeMetricFamily("fine", "fine", labels=["bad-label"])
    ok.add_metric(["y"], 2)
    for families in ([fam], [ok]):
        assert render_text(families) == reference(families)
