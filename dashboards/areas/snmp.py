"""SNMP devices: reachability, SNMP scrape failures, CPU and memory per device."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mspwatch.dashboards import common as c
from mspwatch.dashboards.common import BY_DEVICE, pos


def build() -> db.Dashboard:
    d = c.detail(
        "mspwatch-snmp", "SNMP devices", "Reachability, SNMP and resources per device.", ["network"]
    ).link(c.link("Interface detail", "mspwatch-interface"))
    snmp = f'job="snmp", {BY_DEVICE}'
    return c.panels(
        d,
        c.rows(
            "Devices down",
            "Devices that answer neither ping nor SNMP now (customer_site_device:reachable:max 0,"
            " alertrules/availability.yml): what DeviceUnreachable, the wall screen and the report count.",
            f"customer_site_device:reachable:max{{{BY_DEVICE}}} == 0",
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
            "customer_site_device:reachable:max per device: 1 answers ping or SNMP, 0 neither;"
            " a gap is no data.",
            f"customer_site_device:reachable:max{{{BY_DEVICE}}}",
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
