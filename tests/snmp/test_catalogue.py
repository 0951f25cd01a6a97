"""The metric catalogue is generated from the profiles and documents every exported name."""

from __future__ import annotations

import re
from pathlib import Path

from mspwatch.exporters.snmp.catalogue import render
from mspwatch.exporters.snmp.profile import load_profiles

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "snmp-metrics.md"


def test_catalogue_is_up_to_date() -> None:
    assert DOC.read_text() == render(load_profiles()), (
        "docs/snmp-metrics.md is stale: python -m mspwatch.exporters.snmp.catalogue > docs/snmp-metrics.md"
    )


def test_every_exported_metric_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOC.read_text(), flags=re.M))
    exported = set()
    for golden in (Path(__file__).parent / "golden").glob("*.prom"):
        exported |= set(re.findall(r"^# TYPE (\S+) ", golden.read_text(), flags=re.M))
    # A counter's TYPE line names the family without _total.
    undocumented = {n for n in exported if n not in documented and n + "_total" not in documented}
    assert undocumented == set()
    assert len(exported) > 30
