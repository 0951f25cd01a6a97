"""Exporter self-monitoring: scrape success and duration per job, config reloads, Graph
throttling, rule evaluation failures."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mspwatch.dashboards import common as c
from mspwatch.dashboards.common import pos, query


def build() -> db.Dashboard:
    d = c.detail(
        "mspwatch-self",
        "Exporter self-monitoring",
        "Scrape success and duration per job, config reloads, Graph throttling, rule evaluation.",
        ["platform"],
        levels=(),
    )
    return c.panels(
        d,
        c.series(
            "Scrape success by job",
            "Share of targets scraped successfully per job (up).",
            "avg by (job) (up)",
            "{{job}}",
            "percentunit",
            pos(0, 0, 12, 8),
        ),
        c.series(
            "Scrape duration by job",
            "Slowest scrape per job (scrape_duration_seconds).",
            "max by (job) (scrape_duration_seconds)",
            "{{job}}",
            "s",
            pos(12, 0, 12, 8),
        ),
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
        ),
        c.series(
            "Graph throttling",
            "Microsoft Graph answers 429 per second (m365_graph_throttled_total).",
            "rate(m365_graph_throttled_total[$__rate_interval])",
            "{{tenant}}",
            "reqps",
            pos(12, 8, 12, 8),
        ),
        c.series(
            "Rule evaluation failures",
            "Failed rule evaluations per second (prometheus_rule_evaluation_failures_total).",
            "sum by (rule_group) (rate(prometheus_rule_evaluation_failures_total[$__rate_interval]))",
            "{{rule_group}}",
            "ops",
            pos(0, 16, 24, 8),
        ),
    )
