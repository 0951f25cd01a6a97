"""The detail dashboards the wall screen links to: customer status, active alerts, SNMP
devices and interfaces, backups, patch compliance, Microsoft 365, SLA and error budget,
and the exporters' own health. One builder per dashboard; selectors carry the chained
``$customer`` / ``$site`` / ``$device`` variables.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.models import dashboard as dm

from mspwatch.dashboards import common as c
from mspwatch.dashboards.common import pos, query

C = 'customer=~"$customer"'
S = f'{C}, site=~"$site"'
D = f'{S}, device=~"$device"'


def status() -> db.Dashboard:
    d = c.variables(
        c.dashboard(
            "mspwatch-status",
            "Customer status",
            "State over time per customer and site: ok, degraded (a device down), down (the"
            " gateways unreachable), maintenance.",
            ["noc"],
        ),
        levels=("customer", "site"),
    ).link(c.link("NOC overview", "mspwatch-noc"))
    return d.with_panel(
        c.timeline(
            "Site state",
            "customer_site:state:max per site: 0 ok, 1 degraded (a device answers neither ping nor"
            " SNMP), 2 down (its gateways do not), 3 maintenance (inside a window of the inventory).",
            query(f"customer_site:state:max{{{S}}}", "{{customer}} / {{site}}"),
            pos(0, 0, 24, 16),
            c.SITE_STATES,
        )
    ).with_panel(
        c.grid(
            "Devices down now",
            "Devices of the selected sites that answer neither ping nor SNMP"
            " (customer_site_device:reachable:max 0, alertrules/availability.yml).",
            [query(f"customer_site_device:reachable:max{{{S}}} == 0", instant=True)],
            "none",
            pos(0, 16, 24, 8),
        )
    )


def alerts() -> db.Dashboard:
    d = c.variables(
        c.dashboard(
            "mspwatch-alerts", "Active alerts", "Alerts firing now, by customer and severity.", ["noc"]
        ),
        levels=("customer",),
    )
    return d.with_panel(
        c.graph(
            "Firing alerts by customer and severity",
            "Count of ALERTS in state firing per customer and severity.",
            [
                query(
                    f'sum by (customer, severity) (ALERTS{{alertstate="firing", {C}}})',
                    "{{customer}} {{severity}}",
                )
            ],
            "none",
            pos(0, 0, 24, 8),
        )
    ).with_panel(
        c.grid(
            "Firing alerts",
            "Every firing alert with its labels (ALERTS);"
            " the rule's dashboard_url annotation links its detail.",
            [query(f'ALERTS{{alertstate="firing", {C}}}', instant=True)],
            "none",
            pos(0, 8, 24, 14),
        )
    )


def snmp() -> db.Dashboard:
    d = c.variables(
        c.dashboard(
            "mspwatch-snmp", "SNMP devices", "Reachability, SNMP and resources per device.", ["network"]
        )
    ).link(c.link("Interface detail", "mspwatch-interface"))
    return (
        d.with_panel(
            c.grid(
                "Devices down",
                "Devices that do not answer ICMP now (probe_success 0).",
                [query(f'probe_success{{job="icmp", {D}}} == 0', instant=True)],
                "none",
                pos(0, 0, 12, 8),
            )
        )
        .with_panel(
            c.grid(
                "SNMP failing",
                "Devices whose SNMP scrape fails now (snmp_up 0); the reason is snmp_scrape_error.",
                [query(f'snmp_up{{job="snmp", {D}}} == 0', instant=True)],
                "none",
                pos(12, 0, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Reachability",
                "probe_success per device: 1 answers ICMP, 0 does not.",
                [query(f'probe_success{{job="icmp", {D}}}', "{{device}}")],
                "none",
                pos(0, 8, 24, 8),
            )
        )
        .with_panel(
            c.graph(
                "CPU",
                "snmp_cpu_utilization_ratio per device.",
                [query(f'snmp_cpu_utilization_ratio{{job="snmp", {D}}}', "{{device}}")],
                "percentunit",
                pos(0, 16, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Memory",
                "snmp_memory_utilization_ratio per device.",
                [query(f'snmp_memory_utilization_ratio{{job="snmp", {D}}}', "{{device}}")],
                "percentunit",
                pos(12, 16, 12, 8),
            )
        )
    )


def interface() -> db.Dashboard:
    d = c.variables(
        c.dashboard(
            "mspwatch-interface",
            "Interface detail",
            "Traffic against the interface speed, errors, discards and status history.",
            ["network"],
        )
    ).link(c.link("SNMP devices", "mspwatch-snmp"))
    sel = f'job="snmp", {D}'

    def both(what: str, legend: str) -> list[prometheus.Dataquery]:
        return [
            query(
                f"rate(snmp_interface_receive_{what}_total{{{sel}}}[$__rate_interval])", f"{legend} in", "A"
            ),
            query(
                f"rate(snmp_interface_transmit_{what}_total{{{sel}}}[$__rate_interval])", f"{legend} out", "B"
            ),
        ]

    util = (
        "rate(snmp_interface_{d}_bytes_total{{{sel}}}[$__rate_interval])"
        " / on (instance, if_index) group_left snmp_interface_speed_bytes{{{sel}}}"
    )
    return (
        d.with_panel(
            c.graph(
                "Traffic",
                "Bytes per second in and out per interface (ifHCInOctets / ifHCOutOctets).",
                both("bytes", "{{device}} {{interface}}"),
                "Bps",
                pos(0, 0, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Utilisation",
                "Traffic as a share of the interface speed (ifHighSpeed, snmp_interface_speed_bytes).",
                [
                    query(util.format(d="receive", sel=sel), "{{device}} {{interface}} in", "A"),
                    query(util.format(d="transmit", sel=sel), "{{device}} {{interface}} out", "B"),
                ],
                "percentunit",
                pos(12, 0, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Errors",
                "Errored packets per second (ifInErrors / ifOutErrors).",
                both("errors", "{{device}} {{interface}}"),
                "pps",
                pos(0, 8, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Discards",
                "Discarded packets per second (ifInDiscards / ifOutDiscards).",
                both("discards", "{{device}} {{interface}}"),
                "pps",
                pos(12, 8, 12, 8),
            )
        )
        .with_panel(
            c.timeline(
                "Operational status",
                'snmp_interface_oper_status{state="up"}: 1 up, 0 any other state (ifOperStatus).',
                query(f'snmp_interface_oper_status{{{sel}, state="up"}}', "{{device}} {{interface}}"),
                pos(0, 16, 24, 8),
            ).mappings(
                [
                    dm.ValueMap(
                        options={
                            "1": dm.ValueMappingResult(text="up", color=c.GREEN, index=0),
                            "0": dm.ValueMappingResult(text="not up", color=c.RED, index=1),
                        }
                    )
                ]
            )
        )
    )


def backups() -> db.Dashboard:
    d = c.variables(
        c.dashboard(
            "mspwatch-backup",
            "Backups",
            "Restore point age against RPO, results, restore tests and repository fill.",
            ["backup"],
        ),
        levels=("customer",),
    )
    sel = f'job="backup", {C}'
    return (
        d.with_panel(
            c.graph(
                "Restore point age / RPO",
                "Age of the newest restore point as a share of the job's RPO; above 100 % is a breach.",
                [
                    query(
                        f"(time() - backup_job_last_restore_point_timestamp_seconds{{{sel}}})"
                        f" / backup_job_rpo_seconds{{{sel}}}",
                        "{{customer}} {{job_name}}",
                    )
                ],
                "percentunit",
                pos(0, 0, 12, 8),
            ).thresholds(c.thresholds((None, c.GREEN), (1, c.RED)))
        )
        .with_panel(
            c.graph(
                "Success rate",
                "Share of jobs whose last result is success, per customer.",
                [
                    query(
                        f'avg by (customer) (backup_job_last_result{{{sel}, result="success"}})',
                        "{{customer}}",
                    )
                ],
                "percentunit",
                pos(12, 0, 12, 8),
            )
        )
        .with_panel(
            c.grid(
                "Failed jobs",
                'Jobs whose last result is failed (backup_job_last_result{result="failed"} 1).',
                [query(f'backup_job_last_result{{{sel}, result="failed"}} == 1', instant=True)],
                "none",
                pos(0, 8, 12, 8),
            )
        )
        .with_panel(
            c.grid(
                "Last restore test",
                "Time since each job's last restore test (backup_restore_test_last_timestamp_seconds).",
                [query(f"time() - backup_restore_test_last_timestamp_seconds{{{sel}}}", instant=True)],
                "s",
                pos(12, 8, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Repository fill",
                "Used share of each backup repository (1 - free / capacity).",
                [
                    query(
                        f"1 - backup_repository_free_bytes{{{sel}}}"
                        f" / backup_repository_capacity_bytes{{{sel}}}",
                        "{{customer}} {{repository}}",
                    )
                ],
                "percentunit",
                pos(0, 16, 24, 8),
            )
        )
    )


def patch() -> db.Dashboard:
    d = c.variables(
        c.dashboard(
            "mspwatch-patch",
            "Patch compliance",
            "Compliance by customer and OS, overdue updates, devices not reporting, antivirus.",
            ["patch"],
        ),
        levels=("customer",),
    )
    sel = f'job="patch", {C}'
    return (
        d.with_panel(
            c.graph(
                "Compliance by customer",
                "Share of managed devices in compliance (patch_device_compliant).",
                [query(f"avg by (customer) (patch_device_compliant{{{sel}}})", "{{customer}}")],
                "percentunit",
                pos(0, 0, 12, 8),
            )
        )
        .with_panel(
            c.grid(
                "Compliance by OS",
                "Share of compliant devices per customer and OS (patch_device_info os).",
                [
                    query(
                        f"avg by (customer, os) (patch_device_compliant{{{sel}}}"
                        f" * on (instance, device_id) group_left (os) patch_device_info{{{sel}}})",
                        instant=True,
                    )
                ],
                "percentunit",
                pos(12, 0, 12, 8),
            )
        )
        .with_panel(
            c.grid(
                "Overdue updates",
                "Devices with security updates past their deadline (patch_device_overdue_updates).",
                [query(f'patch_device_overdue_updates{{{sel}, deadline="security"}} > 0', instant=True)],
                "none",
                pos(0, 8, 12, 8),
            )
        )
        .with_panel(
            c.grid(
                "Not reporting",
                "Devices whose last contact with the patch tool is older than 7 days.",
                [
                    query(
                        f"time() - patch_device_last_contact_timestamp_seconds{{{sel}}} > 7 * 86400",
                        instant=True,
                    )
                ],
                "s",
                pos(12, 8, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Antivirus off",
                "Devices with antivirus disabled per customer (patch_device_av_enabled 0).",
                [query(f"count by (customer) (patch_device_av_enabled{{{sel}}} == 0)", "{{customer}}")],
                "none",
                pos(0, 16, 24, 8),
            )
        )
    )


def m365() -> db.Dashboard:
    d = c.variables(
        c.dashboard(
            "mspwatch-m365",
            "Microsoft 365",
            "Workload state per tenant, open incidents, licences, Secure Score and MFA.",
            ["m365"],
        ),
        levels=("customer",),
    )
    sel = f'job="m365", {C}'
    return (
        d.with_panel(
            c.timeline(
                "Degraded workloads",
                "m365_service_degraded per tenant and workload: 1 in an impact state.",
                query(f"m365_service_degraded{{{sel}}}", "{{tenant}} {{service}}"),
                pos(0, 0, 24, 8),
            )
        )
        .with_panel(
            c.grid(
                "Open incidents",
                "Open Microsoft incidents per tenant and service"
                ' (m365_issues_open{classification="incident"}).',
                [query(f'm365_issues_open{{{sel}, classification="incident"}} > 0', instant=True)],
                "none",
                pos(0, 8, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Licences used",
                "Consumed units as a share of the enabled prepaid units per SKU.",
                [
                    query(
                        f"m365_license_consumed_units{{{sel}}}"
                        f' / on (instance, sku) m365_license_prepaid_units{{{sel}, state="enabled"}}',
                        "{{tenant}} {{sku}}",
                    )
                ],
                "percentunit",
                pos(12, 8, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Secure Score",
                "m365_secure_score_current as a share of m365_secure_score_max.",
                [query(f"m365_secure_score_current{{{sel}}} / m365_secure_score_max{{{sel}}}", "{{tenant}}")],
                "percentunit",
                pos(0, 16, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "MFA registered",
                "Share of users registered for MFA (m365_mfa_registered_users / m365_users).",
                [
                    query(
                        f"m365_mfa_registered_users{{{sel}}} / m365_users{{{sel}}}",
                        "{{tenant}} {{group}}",
                    )
                ],
                "percentunit",
                pos(12, 16, 12, 8),
            )
        )
    )


def sla() -> db.Dashboard:
    d = c.variables(
        c.dashboard(
            "mspwatch-sla",
            "SLA and error budget",
            "Availability over the selected range (month to date by default) against each customer's target.",
            ["sla"],
        ),
        levels=("customer",),
    ).time("now/M", "now")
    # Device-minutes over the range, as the monthly report counts them (alertrules/slo.yml).
    avail = (
        f"sum_over_time(customer:availability_up_devices:sum{{{C}}}[$__range])"
        f" / sum_over_time(customer:availability_counted_devices:sum{{{C}}}[$__range])"
    )
    return (
        d.with_panel(
            c.grid(
                "Availability against target",
                "Up device-minutes / counted device-minutes over the range: every device of the"
                " inventory inside contract hours and outside maintenance, a device without data"
                " counted as not up, as the monthly report counts (which also ignores short blips).",
                [
                    query(avail, "availability", "A", instant=True),
                    query(f"customer:slo_target:ratio{{{C}}}", "target", "B", instant=True),
                ],
                "percentunit",
                pos(0, 0, 12, 10),
            )
        )
        .with_panel(
            c.grid(
                "Error budget left",
                "Share of the range's error budget not yet spent: 1 - (1 - availability) / (1 - target).",
                [
                    query(
                        f"1 - (1 - {avail}) / on (customer) (1 - customer:slo_target:ratio{{{C}}})",
                        instant=True,
                    )
                ],
                "percentunit",
                pos(12, 0, 12, 10),
            )
        )
        .with_panel(
            c.graph(
                "Burn rate (1 h)",
                "Error ratio over the last hour divided by the budget (1 - target); 14.4 pages.",
                [
                    query(
                        f"customer:slo_errors:ratio_rate1h{{{C}}}"
                        f" / on (customer) (1 - customer:slo_target:ratio{{{C}}})",
                        "{{customer}}",
                    )
                ],
                "none",
                pos(0, 10, 24, 10),
            ).thresholds(c.thresholds((None, c.GREEN), (6, c.AMBER), (14.4, c.RED)))
        )
    )


def platform() -> db.Dashboard:
    d = c.variables(
        c.dashboard(
            "mspwatch-self",
            "Exporter self-monitoring",
            "Scrape success and duration per job, config reloads, Graph throttling, rule evaluation.",
            ["platform"],
        ),
        levels=(),
    )
    return (
        d.with_panel(
            c.graph(
                "Scrape success by job",
                "Share of targets scraped successfully per job (up).",
                [query("avg by (job) (up)", "{{job}}")],
                "percentunit",
                pos(0, 0, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Scrape duration by job",
                "Slowest scrape per job (scrape_duration_seconds).",
                [query("max by (job) (scrape_duration_seconds)", "{{job}}")],
                "s",
                pos(12, 0, 12, 8),
            )
        )
        .with_panel(
            c.grid(
                "Config reloads",
                "Last config reload of each exporter and of Prometheus: 1 succeeded, 0 failed.",
                [
                    query(
                        '{__name__=~"(snmp|backup|m365|patch)_exporter_config_last_reload_successful"}',
                        instant=True,
                        ref="A",
                    ),
                    query("prometheus_config_last_reload_successful", instant=True, ref="B"),
                ],
                "none",
                pos(0, 8, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Graph throttling",
                "Microsoft Graph answers 429 per second (m365_graph_throttled_total).",
                [query("rate(m365_graph_throttled_total[$__rate_interval])", "{{tenant}}")],
                "reqps",
                pos(12, 8, 12, 8),
            )
        )
        .with_panel(
            c.graph(
                "Rule evaluation failures",
                "Failed rule evaluations per second (prometheus_rule_evaluation_failures_total).",
                [
                    query(
                        "sum by (rule_group)"
                        " (rate(prometheus_rule_evaluation_failures_total[$__rate_interval]))",
                        "{{rule_group}}",
                    )
                ],
                "ops",
                pos(0, 16, 24, 8),
            )
        )
    )
