"""Customer status: site state over time and the devices down now."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mspwatch.dashboards import common as c
from mspwatch.dashboards.common import BY_SITE, pos, query


def build() -> db.Dashboard:
    d = c.detail(
        "mspwatch-status",
        "Customer status",
        "State over time per customer and site: ok, degraded (a device down), down (the"
        " gateways unreachable), maintenance.",
        ["noc"],
        levels=("customer", "site"),
    ).link(c.link("NOC overview", "mspwatch-noc"))
    return c.panels(
        d,
        c.timeline(
            "Site state",
            "customer_site:state:max per site: 0 ok, 1 degraded (a device answers neither ping nor"
            " SNMP), 2 down (its gateways do not), 3 maintenance (inside a window of the inventory).",
            query(f"customer_site:state:max{{{BY_SITE}}}", "{{customer}} / {{site}}"),
            pos(0, 0, 24, 16),
            c.SITE_STATES,
        ),
        c.rows(
            "Devices down now",
            "Devices of the selected sites that answer neither ping nor SNMP"
            " (customer_site_device:reachable:max 0, alertrules/availability.yml).",
            f"customer_site_device:reachable:max{{{BY_SITE}}} == 0",
            "none",
            pos(0, 16, 24, 8),
        ),
    )
