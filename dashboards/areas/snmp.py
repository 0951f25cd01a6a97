"""SNMP devices: reachability, SNMP scrape failures, CPU and memory per device."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mspwatch.dashboards import common as c
from mspwatch.dashboards.common import BY_DEVICE, pos


def build() -> db.Dashboard:
    d = c.detail(
        "mspwatch-snmp", "SNMP devices", "Reachability, SNMP and resources per device.", ["network"]
    ).link(c.link("Interface detail", "mspwatch-interface"))
    icmp, snmp = f'job="icmp", {BY_DEVICE}', f'job="snmp", {BY_DEVICE}'
    return c.panels(
        d,
        c.rows(
            "Devices down",
            "Devices that do not answer ICMP now (probe_success 0).",
            f"probe_success{{{icmp}}} == 0",
            "none",
            pos(0, 0, 12, 8),
        ),
        c.rows(
            "SNMP failing",
            "Devices whose SNMP scrape fails now (snmp_up 0); the reason is snmp_scrape_error.",
            f"snmp_up{{{snmp}}} == 0",
            "none",
            pos(12, 0, 12, 8),
        ),
        c.series(
            "Reachability",
            "probe_success per device: 1 answers ICMP, 0 does not.",
            f"probe_success{{{icmp}}}",
            "{{device}}",
            "none",
            pos(0, 8, 24, 8),
        ),
        c.series(
            "CPU",
            "snmp_cpu_utilization_ratio per device.",
            f"snmp_cpu_utilization_ratio{{{snmp}}}",
            "{{device}}",
            "percentunit",
            pos(0, 16, 12, 8),
        ),
        c.series(
            "Memory",
            "snmp_memory_utilization_ratio per device.",
            f"snmp_memory_utilization_ratio{{{snmp}}}",
            "{{device}}",
            "percentunit",
            pos(12, 16, 12, 8),
        ),
    )
