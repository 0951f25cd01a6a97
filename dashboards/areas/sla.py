"""SLA and error budget: availability over the range against each customer's target."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mspwatch.dashboards import common as c
from mspwatch.dashboards.common import BY_CUSTOMER, pos, query

# Device-minutes over the range, as the monthly report counts them (alertrules/slo.yml).
AVAILABILITY = (
    f"sum_over_time(customer:availability_up_devices:sum{{{BY_CUSTOMER}}}[$__range])"
    f" / sum_over_time(customer:availability_counted_devices:sum{{{BY_CUSTOMER}}}[$__range])"
)
TARGET = f"customer:slo_target:ratio{{{BY_CUSTOMER}}}"


def build() -> db.Dashboard:
    d = c.detail(
        "mspwatch-sla",
        "SLA and error budget",
        "Availability over the selected range (month to date by default) against each customer's target.",
        ["sla"],
        levels=("customer",),
    ).time("now/M", "now")
    return c.panels(
        d,
        c.grid(
            "Availability against target",
            "Up device-minutes / counted device-minutes over the range: every device of the"
            " inventory inside contract hours and outside maintenance, a device without data"
            " counted as not up, as the monthly report counts (which also ignores short blips).",
            [
                query(AVAILABILITY, "availability", "A", instant=True),
                query(TARGET, "target", "B", instant=True),
            ],
            "percentunit",
            pos(0, 0, 12, 10),
        ),
        c.rows(
            "Error budget left",
            "Share of the range's error budget not yet spent: 1 - (1 - availability) / (1 - target).",
            f"1 - (1 - {AVAILABILITY}) / on (customer) (1 - {TARGET})",
            "percentunit",
            pos(12, 0, 12, 10),
        ),
        c.series(
            "Burn rate (1 h)",
            "Error ratio over the last hour divided by the budget (1 - target); 14.4 pages.",
            f"customer:slo_errors:ratio_rate1h{{{BY_CUSTOMER}}} / on (customer) (1 - {TARGET})",
            "{{customer}}",
            "none",
            pos(0, 10, 24, 10),
        ).thresholds(c.thresholds((None, c.GREEN), (6, c.AMBER), (14.4, c.RED))),
    )
