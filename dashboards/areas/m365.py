"""Microsoft 365: workload state per tenant, open incidents, licences, Secure Score and MFA."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mspwatch.dashboards import common as c
from mspwatch.dashboards.common import BY_CUSTOMER, pos, query

SEL = f'job="m365", {BY_CUSTOMER}'


def build() -> db.Dashboard:
    d = c.detail(
        "mspwatch-m365",
        "Microsoft 365",
        "Workload state per tenant, open incidents, licences, Secure Score and MFA.",
        ["m365"],
        levels=("customer",),
    )
    return c.panels(
        d,
        c.timeline(
            "Degraded workloads",
            "m365_service_degraded per tenant and workload: 1 in an impact state.",
            query(f"m365_service_degraded{{{SEL}}}", "{{tenant}} {{service}}"),
            pos(0, 0, 24, 8),
        ),
        c.rows(
            "Open incidents",
            'Open Microsoft incidents per tenant and service (m365_issues_open{classification="incident"}).',
            f'm365_issues_open{{{SEL}, classification="incident"}} > 0',
            "none",
            pos(0, 8, 12, 8),
        ),
        c.series(
            "Licences used",
            "Consumed units as a share of the enabled prepaid units per SKU.",
            f"m365_license_consumed_units{{{SEL}}}"
            f' / on (instance, sku) m365_license_prepaid_units{{{SEL}, state="enabled"}}',
            "{{tenant}} {{sku}}",
            "percentunit",
            pos(12, 8, 12, 8),
        ),
        c.series(
            "Secure Score",
            "m365_secure_score_current as a share of m365_secure_score_max.",
            f"m365_secure_score_current{{{SEL}}} / m365_secure_score_max{{{SEL}}}",
            "{{tenant}}",
            "percentunit",
            pos(0, 16, 12, 8),
        ),
        c.series(
            "MFA registered",
            "Share of users registered for MFA (m365_mfa_registered_users / m365_users).",
            f"m365_mfa_registered_users{{{SEL}}} / m365_users{{{SEL}}}",
            "{{tenant}} {{group}}",
            "percentunit",
            pos(12, 16, 12, 8),
        ),
    )
