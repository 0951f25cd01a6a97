"""Render the SNMP metric catalogue (docs/snmp-metrics.md) from the profiles.

    python -m mspwatch.exporters.snmp.catalogue > docs/snmp-metrics.md

A test regenerates it and fails on any difference, so the docs cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .main import SnmpApp
from .profile import Profile, load_profiles, metric_entries
from .scrape import SCRAPE_METRICS


@dataclass
class _Row:
    type: str
    labels: set[str] = field(default_factory=set)
    profiles: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def render(profiles: dict[str, Profile]) -> str:
    rows: dict[str, _Row] = {}
    for profile in profiles.values():
        for spec, labels in metric_entries(profile):
            row = rows.setdefault(spec.name, _Row(spec.type))
            row.labels.update(labels)
            row.profiles.append(profile.name)
            row.sources.append(spec.help)
    out = [
        "# SNMP metric catalogue",
        "",
        "Generated from `exporters/snmp/profiles/*.yaml` by `python -m mspwatch.exporters.snmp.catalogue`;",
        "a test fails when this file and the profiles disagree. Every metric also carries the",
        "target labels Prometheus adds from the inventory (`customer`, `site`, `device`, `role`).",
        "",
        "Types: `info`, `state` and `bool` are gauges. An `info` series is 1 and carries metadata",
        "in its labels; a `state` metric has one series per state, 1 for the current one (values",
        "the device reports that the profile does not know become `unknown`); a `bool` is 0 or 1.",
        "",
        "## Device metrics",
        "",
        "| metric | type | labels | profiles | source |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in sorted(rows):
        row = rows[name]
        label_list = ", ".join(f"`{label}`" for label in sorted(row.labels))
        profs = ", ".join(dict.fromkeys(row.profiles))
        source = " / ".join(dict.fromkeys(row.sources))
        out.append(f"| `{name}` | {row.type} | {label_list} | {profs} | {source} |")
    out += [
        "",
        "## Scrape metrics",
        "",
        "| metric | type | labels | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, label, meaning in [*SnmpApp.outcome_metrics(), *SCRAPE_METRICS]:
        out.append(f"| `{name}` | gauge | {f'`{label}`' if label else ''} | {meaning} |")
    out += ["", "## Profiles", "", "| profile | applies to | description |", "| --- | --- | --- |"]
    for profile in sorted(profiles.values(), key=lambda p: p.name):
        applies = ", ".join(f"sysObjectID {m}.*" for m in profile.match) or "every device"
        out.append(f"| `{profile.name}` | {applies} | {profile.description} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(load_profiles()), end="")
