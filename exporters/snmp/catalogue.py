"""Render the SNMP metric catalogue (docs/snmp-metrics.md) from the profiles.

    python -m exporters.snmp.catalogue > docs/snmp-metrics.md

A test regenerates it and fails on any difference, so the docs cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .profile import MetricSpec, Profile, load_profiles

# The exporter's per-scrape metrics, written by the collector rather than a profile.
SCRAPE_METRICS: list[tuple[str, str, str, str]] = [
    ("snmp_up", "gauge", "", "1 if the device answered SNMP (sysObjectID/sysUpTime GET), 0 otherwise."),
    (
        "snmp_scrape_error",
        "gauge",
        "reason",
        "1 for the reason a device could not be scraped, 0 for the others: timeout, auth, "
        "unreachable, resolve, protocol, not_increasing, deadline.",
    ),
    (
        "snmp_profile_success",
        "gauge",
        "profile",
        "1 when every OID of the profile was read; 0 on timeout, agent error or broken walk "
        "(what was read before the failure is still exported).",
    ),
    ("snmp_scrape_duration_seconds", "gauge", "", "Time the scrape took."),
    ("snmp_scrape_pdus_sent", "gauge", "", "SNMP requests sent, retries included."),
    ("snmp_scrape_retries", "gauge", "", "Requests re-sent after a timeout."),
    ("snmp_scrape_values_returned", "gauge", "", "Variable bindings received."),
    (
        "snmp_scrape_lookup_cache_hits",
        "gauge",
        "",
        "Tables whose lookup labels (ifIndex -> ifName, ...) came from the per-device cache; "
        "the cache is dropped when sysUpTime goes back (reboot), a table's change OIDs change "
        "(ifTableLastChange, ifNumber), an unknown row appears, or after lookup_cache_max_age.",
    ),
    (
        "snmp_scrape_invalid_values",
        "gauge",
        "",
        "Values skipped because the agent sent a non-numeric value for a numeric metric.",
    ),
]


def _labels(spec: MetricSpec, index: list[str], table_labels: list[str]) -> list[str]:
    labels = [n for n in index if not n.startswith("_")] + table_labels + list(spec.labels)
    if spec.type == "state":
        labels.append(spec.state_label)
    return labels


@dataclass
class _Row:
    type: str
    labels: set[str] = field(default_factory=set)
    profiles: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def render(profiles: dict[str, Profile]) -> str:
    rows: dict[str, _Row] = {}
    for profile in profiles.values():
        entries: list[tuple[MetricSpec, list[str], list[str]]] = [(s, [], []) for s in profile.scalars]
        entries += [(m, t.index, list(t.labels)) for t in profile.tables for m in t.metrics]
        for spec, index, table_labels in entries:
            row = rows.setdefault(spec.name, _Row(spec.type))
            row.labels.update(_labels(spec, index, table_labels))
            row.profiles.append(profile.name)
            row.sources.append(spec.help)
    out = [
        "# SNMP metric catalogue",
        "",
        "Generated from `exporters/snmp/profiles/*.yaml` by `python -m exporters.snmp.catalogue`;",
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
        labels = ", ".join(f"`{label}`" for label in sorted(row.labels))
        profs = ", ".join(dict.fromkeys(row.profiles))
        source = " / ".join(dict.fromkeys(row.sources))
        out.append(f"| `{name}` | {row.type} | {labels} | {profs} | {source} |")
    out += [
        "",
        "## Scrape metrics",
        "",
        "| metric | type | labels | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, kind, labels, meaning in SCRAPE_METRICS:
        out.append(f"| `{name}` | {kind} | {f'`{labels}`' if labels else ''} | {meaning} |")
    out += ["", "## Profiles", "", "| profile | applies to | description |", "| --- | --- | --- |"]
    for profile in sorted(profiles.values(), key=lambda p: p.name):
        applies = ", ".join(f"sysObjectID {m}.*" for m in profile.match) or "every device"
        out.append(f"| `{profile.name}` | {applies} | {profile.description} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(load_profiles()), end="")
