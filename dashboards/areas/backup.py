"""Backups: restore point age against RPO, results, restore tests and repository fill."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mspwatch.dashboards import common as c
from mspwatch.dashboards.common import BY_CUSTOMER, pos

# Backup series carry no site label: they select by customer only.
SEL = f'job="backup", {BY_CUSTOMER}'


def build() -> db.Dashboard:
    d = c.detail(
        "mspwatch-backup",
        "Backups",
        "Restore point age against RPO, results, restore tests and repository fill.",
        ["backup"],
        levels=("customer",),
    )
    return c.panels(
        d,
        c.series(
            "Restore point age / RPO",
            "Age of the newest restore point as a share of the job's RPO; above 100 % is a breach.",
            f"(time() - backup_job_last_restore_point_timestamp_seconds{{{SEL}}})"
            f" / backup_job_rpo_seconds{{{SEL}}}",
            "{{customer}} {{job_name}}",
            "percentunit",
            pos(0, 0, 12, 8),
        ).thresholds(c.thresholds((None, c.GREEN), (1, c.RED))),
        c.series(
            "Success rate",
            "Share of jobs whose last result is success, per customer.",
            f'avg by (customer) (backup_job_last_result{{{SEL}, result="success"}})',
            "{{customer}}",
            "percentunit",
            pos(12, 0, 12, 8),
        ),
        c.rows(
            "Failed jobs",
            'Jobs whose last result is failed (backup_job_last_result{result="failed"} 1).',
            f'backup_job_last_result{{{SEL}, result="failed"}} == 1',
            "none",
            pos(0, 8, 12, 8),
        ),
        c.rows(
            "Last restore test",
            "Time since each job's last restore test (backup_restore_test_last_timestamp_seconds).",
            f"time() - backup_restore_test_last_timestamp_seconds{{{SEL}}}",
            "s",
            pos(12, 8, 12, 8),
        ),
        c.series(
            "Repository fill",
            "Used share of each backup repository (1 - free / capacity).",
            f"1 - backup_repository_free_bytes{{{SEL}}} / backup_repository_capacity_bytes{{{SEL}}}",
            "{{customer}} {{repository}}",
            "percentunit",
            pos(0, 16, 24, 8),
        ),
    )
