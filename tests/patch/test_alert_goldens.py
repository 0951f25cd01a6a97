"""The patch alert rules against what the exporter really serves.

Each golden scrape is held steady for 400 minutes (longer than the longest `for:`, 6 h) as
one source's series, with the labels Prometheus adds (job, instance, customer,
source_kind), and promtool evaluates alertrules/patch.yml over it. The alerts firing at the
end must be exactly the ones listed, so a renamed metric, label or reason in the exporter,
or a rule that no longer matches its output, fails here. Timing and annotations are proven
by alertrules/tests/patch_test.yml.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.promrules import assert_firing, series_labels

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
RULES = ROOT / "alertrules" / "patch.yml"
MINUTES = 400
KIND = {"ninjaone-fleet": "ninjaone", "intune-acme": "intune"}
CUSTOMER = "acme-dental"

# golden case -> firing alerts as (alertname, severity, device or "" for the fleet alert, reason)
Alert = tuple[str, str, str, str]

EXPECTED: dict[str, set[Alert]] = {
    # fleet.yaml: 3 of 10 devices compliant (target 95%).
    "ninjaone-fleet": {
        ("PatchCriticalUpdateOverdue", "warning", "acme-sql1", "missing_critical"),
        ("PatchRebootPendingTooLong", "warning", "acme-fs1", "reboot_pending"),
        ("PatchDeviceNotReporting", "warning", "acme-lt-07", "not_reporting"),
        ("PatchDeviceNonCompliant", "warning", "acme-lt-07", "not_scanned"),
        ("PatchDeviceNonCompliant", "warning", "acme-ws-06", "not_scanned"),
        ("PatchAntivirusOutdated", "warning", "acme-ws-02", "av_outdated"),
        ("PatchAntivirusOff", "critical", "acme-ws-03", "av_off"),
        ("PatchInstallFailing", "warning", "acme-ws-04", "failed_install"),
        ("PatchFleetComplianceLow", "warning", "", ""),
    },
    # intune.yaml: 4 of 8 devices compliant.
    "intune-acme": {
        ("PatchCriticalUpdateOverdue", "warning", "ACME-LT-02", "missing_critical"),
        ("PatchAntivirusOff", "critical", "ACME-LT-03", "av_off"),
        ("PatchAntivirusOutdated", "warning", "ACME-LT-04", "av_outdated"),
        ("PatchDeviceNotReporting", "warning", "ACME-LT-05", "not_reporting"),
        ("PatchFleetComplianceLow", "warning", "", ""),
    },
}


def _target(case: str) -> dict[str, str]:
    return {"job": "patch", "instance": case, "customer": CUSTOMER, "source_kind": KIND[case]}


def _input_series(case: str) -> list[dict[str, str]]:
    target = _target(case)
    series = [{"series": "up" + series_labels(target), "values": f"1+0x{MINUTES}"}]
    for family in text_string_to_metric_families((GOLDEN / f"{case}.prom").read_text()):
        for sample in family.samples:
            series.append(
                {
                    "series": sample.name + series_labels({**sample.labels, **target}),
                    "values": f"{sample.value!r}+0x{MINUTES}",
                }
            )
    return series


def _exp_sample(case: str, alert: Alert) -> dict[str, object]:
    name, severity, device, reason = alert
    labels = {"alertname": name, "alertstate": "firing", "severity": severity}
    if device:
        labels |= {**_target(case), "device": device, "reason": reason}
    else:
        labels["customer"] = CUSTOMER
    return {"labels": "ALERTS" + series_labels(labels), "value": 1}


def test_every_golden_case_is_listed() -> None:
    assert {p.stem for p in GOLDEN.glob("*.prom")} == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_alerts_on_golden_scrape(case: str, tmp_path: Path) -> None:
    expected = [_exp_sample(case, a) for a in sorted(EXPECTED[case])]
    assert_firing(tmp_path, RULES, _input_series(case), MINUTES, expected)
