"""Active alerts: firing alerts over time by customer and severity, and the list of them."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mspwatch.dashboards import common as c
from mspwatch.dashboards.common import BY_CUSTOMER, pos


def build() -> db.Dashboard:
    d = c.detail(
        "mspwatch-alerts",
        "Active alerts",
        "Alerts firing now, by customer and severity.",
        ["noc"],
        levels=("customer",),
    )
    return c.panels(
        d,
        c.series(
            "Firing alerts by customer and severity",
            "Count of ALERTS in state firing per customer and severity.",
            f'sum by (customer, severity) (ALERTS{{alertstate="firing", {BY_CUSTOMER}}})',
            "{{customer}} {{severity}}",
            "none",
            pos(0, 0, 24, 8),
        ),
        c.rows(
            "Firing alerts",
            "Every firing alert with its labels (ALERTS);"
            " the rule's dashboard_url annotation links its detail.",
            f'ALERTS{{alertstate="firing", {BY_CUSTOMER}}}',
            "none",
            pos(0, 8, 24, 14),
        ),
    )
