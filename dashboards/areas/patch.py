"""Patch compliance: by customer and OS, overdue updates, devices not reporting, antivirus."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mspwatch.dashboards import common as c
from mspwatch.dashboards.common import BY_CUSTOMER, pos

SEL = f'job="patch", {BY_CUSTOMER}'


def build() -> db.Dashboard:
    d = c.detail(
        "mspwatch-patch",
        "Patch compliance",
        "Compliance by customer and OS, overdue updates, devices not reporting, antivirus.",
        ["patch"],
        levels=("customer",),
    )
    return c.panels(
        d,
        c.series(
            "Compliance by customer",
            "Share of managed devices in compliance (patch_device_compliant).",
            f"avg by (customer) (patch_device_compliant{{{SEL}}})",
            "{{customer}}",
            "percentunit",
            pos(0, 0, 12, 8),
        ),
        c.rows(
            "Compliance by OS",
            "Share of compliant devices per customer and OS (patch_device_info os).",
            f"avg by (customer, os) (patch_device_compliant{{{SEL}}}"
            f" * on (instance, device) group_left (os) patch_device_info{{{SEL}}})",
            "percentunit",
            pos(12, 0, 12, 8),
        ),
        c.rows(
            "Overdue updates",
            "Devices with security updates past their deadline (patch_device_overdue_updates).",
            f'patch_device_overdue_updates{{{SEL}, deadline="security"}} > 0',
            "none",
            pos(0, 8, 12, 8),
        ),
        c.rows(
            "Not reporting",
            "Devices whose last contact with the patch tool is older than 7 days.",
            f"time() - patch_device_last_contact_timestamp_seconds{{{SEL}}} > 7 * 86400",
            "s",
            pos(12, 8, 12, 8),
        ),
        c.series(
            "Antivirus off",
            "Devices with antivirus disabled per customer (patch_device_av_enabled 0).",
            f"count by (customer) (patch_device_av_enabled{{{SEL}}} == 0)",
            "{{customer}}",
            "none",
            pos(0, 16, 24, 8),
        ),
    )
