"""The backup alert rules against what the exporter really serves.

Each golden scrape (tests/backup/golden/*.prom, rendered at the scenario clock) is held
steady for two and a half hours as one source's series, with the labels Prometheus adds
(job, instance, customer, source_kind), and promtool evaluates alertrules/backup.yml over
it. promtool's clock starts at 0, so timestamps are moved to put the scrape at the end of
the test (a timestamp of 0, "never", stays far in the past). The alerts firing at the end
must be exactly the ones listed here, so a metric or label renamed in the exporter, or a
rule that no longer matches its output, fails this test. The unit tests in
alertrules/tests/backup_test.yml cover timing and annotations.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.promrules import assert_firing, series_labels

from .conftest import SCENARIO_CLOCK

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
RULES = ROOT / "alertrules" / "backup.yml"
MINUTES = 150
KIND = {"veeam-acme": "veeam", "veeam-smallbiz": "veeam", "restic-file": "restic", "folder": "folder"}

# golden case -> firing alerts as (alertname, severity, labels beyond the source's own)
Alert = tuple[str, str, tuple[tuple[str, str], ...]]


def _a(name: str, severity: str, **labels: str) -> Alert:
    return name, severity, tuple(sorted(labels.items()))


EXPECTED: dict[str, set[Alert]] = {
    # acme.yaml: SQL nightly succeeded 8h ago after a failure; File server warned 7h ago (its
    # last success is 31h old, but a warning run leaves a restore point: within its 26h RPO);
    # Exchange failed twice, last success 10 days ago; the agent policy "Laptops" says
    # Success but its only backup failed, and "Cluster apps" ended with a result nobody
    # knows (neither ever left a restore point); "New job" never ran (not judged); the
    # disabled job is quiet. Hourly CRM (RPO 2h) and Weekly offsite (8d) are within theirs;
    # SureBackup SQL succeeded 4h ago; repositories >= 20% free.
    "veeam-acme": {
        _a("BackupJobFailed", "warning", job_name="Exchange", result="failed"),
        _a("BackupJobFailed", "warning", job_name="Laptops", result="failed"),
        _a("BackupJobFailed", "warning", job_name="Cluster apps", result="unknown"),
        _a("BackupJobWarning", "info", job_name="File server", result="warning"),
        _a("BackupJobOutsideRpo", "warning", job_name="Exchange"),
        _a("BackupJobOutsideRpo", "critical", job_name="Exchange"),
        _a("BackupJobOutsideRpo", "warning", job_name="Laptops"),
        _a("BackupJobOutsideRpo", "critical", job_name="Laptops"),
        _a("BackupJobOutsideRpo", "warning", job_name="Cluster apps"),
        _a("BackupJobOutsideRpo", "critical", job_name="Cluster apps"),
    },
    # smallbiz.yaml: two healthy jobs, the NAS repository at 7.6% free, never restore-tested.
    "veeam-smallbiz": {
        _a("BackupRepositoryFillingUp", "warning", repository="NAS"),
        _a("BackupRestoreTestOverdue", "warning"),
    },
    # db1's newest snapshot is 54h old (RPO 12h); web1's is 6h old; the check passed 1h ago.
    "restic-file": {
        _a("BackupJobOutsideRpo", "warning", job_name="db1:/var/lib/postgresql"),
        _a("BackupJobOutsideRpo", "critical", job_name="db1:/var/lib/postgresql"),
        _a("BackupRestoreTestOverdue", "warning"),
    },
    # Three files with malformed records; Tape rotation failed; M365 mailboxes warned (last
    # success 32h ago, but the warning run is a restore point: within its RPO); M365 sites'
    # first run is still going (not judged); Old NAS is disabled.
    "folder": {
        _a("BackupDropFileMalformed", "warning", file="broken.json"),
        _a("BackupDropFileMalformed", "warning", file="legacy.csv"),
        _a("BackupDropFileMalformed", "warning", file="m365.jsonl"),
        _a("BackupJobFailed", "warning", job_name="Tape rotation", result="failed"),
        _a("BackupJobOutsideRpo", "warning", job_name="Tape rotation"),
        _a("BackupJobWarning", "info", job_name="M365 mailboxes", result="warning"),
        _a("BackupRestoreTestOverdue", "warning"),
    },
}


def _target(case: str) -> dict[str, str]:
    return {"job": "backup", "instance": case, "customer": "acme", "source_kind": KIND[case]}


def _input_series(case: str) -> list[dict[str, str]]:
    target = _target(case)
    shift = MINUTES * 60 - SCENARIO_CLOCK  # the scrape happens at the end of the test
    series = [{"series": "up" + series_labels(target), "values": f"1+0x{MINUTES}"}]
    for family in text_string_to_metric_families((GOLDEN / f"{case}.prom").read_text()):
        for sample in family.samples:
            value = sample.value + shift if sample.name.endswith("_timestamp_seconds") else sample.value
            series.append(
                {
                    "series": sample.name + series_labels({**sample.labels, **target}),
                    "values": f"{value!r}+0x{MINUTES}",
                }
            )
    return series


def _exp_sample(case: str, alert: Alert) -> dict[str, object]:
    name, severity, extra = alert
    target = _target(case)
    labels = {"alertname": name, "alertstate": "firing", "severity": severity, **target, **dict(extra)}
    return {"labels": "ALERTS" + series_labels(labels), "value": 1}


def test_every_golden_case_is_listed() -> None:
    assert {p.stem for p in GOLDEN.glob("*.prom")} == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_alerts_on_golden_scrape(case: str, tmp_path: Path) -> None:
    expected = [_exp_sample(case, a) for a in sorted(EXPECTED[case])]
    assert_firing(tmp_path, RULES, _input_series(case), MINUTES, expected)
