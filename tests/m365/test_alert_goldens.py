"""The Microsoft 365 alert rules against what the exporter really serves.

Each golden scrape (tests/m365/golden/*.prom, rendered from the Graph simulator's scenarios)
is held steady for two and a half hours as one tenant's series, with the labels Prometheus
adds (job, instance, customer, tenant), and promtool evaluates alertrules/m365.yml over it.
The alerts firing at the end must be exactly the ones listed here, so a metric or label
renamed in the exporter, or a rule that no longer matches its output, fails this test. The
unit tests in alertrules/tests/m365_test.yml cover timing and annotations.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.promrules import assert_firing, series_labels

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
RULES = ROOT / "alertrules" / "m365.yml"
MINUTES = 150

# golden case -> firing alerts as (alertname, labels beyond the tenant's own)
Alert = tuple[str, tuple[tuple[str, str], ...]]


def _a(name: str, **labels: str) -> Alert:
    return name, tuple(sorted(labels.items()))


EXPECTED: dict[str, set[Alert]] = {
    "estate-acme": {
        _a("M365ServiceDegraded", service="Exchange Online"),
        _a("M365ServiceDegraded", service="Microsoft 365 suite"),
        _a("M365ServiceAdvisory", service="Microsoft Intune", classification="advisory"),
        _a("M365ServiceAdvisory", service="Microsoft Teams", classification="advisory"),
        _a("M365LicencesRunningOut", sku="SPE_E3"),
        _a("M365LicencesInGracePeriod", sku="SPE_E3", state="warning"),
        _a("M365AdminsWithoutMfa", group="admins"),
    },
    # Business Premium 96 of 100 assigned; Teams has an advisory, nothing is degraded.
    "estate-bolt": {
        _a("M365ServiceAdvisory", service="Microsoft Teams", classification="advisory"),
        _a("M365LicencesRunningOut", sku="SPB"),
    },
    "estate-globex": set(),
    # Every signal answers 403: the tenant is down (reason forbidden), one alert.
    "estate-initech": {_a("M365TenantDown")},
    "estate-umbrella": {
        _a("M365ServiceDegraded", service="Microsoft Teams"),
        _a("M365ServiceAdvisory", service="Exchange Online", classification="advisory"),
    },
    "faults-expiring": {_a("M365AdminsWithoutMfa", group="admins")},
    "faults-flaky": {
        _a("M365DataStale", signal="licences"),
        _a("M365AdminsWithoutMfa", group="admins"),
    },
    "faults-forbidden": {_a("M365TenantDown")},
    # One 429 in the counters, but no throttling over time. Exchange is operational with an
    # incident and an advisory open: the advisory shows (info), the incident does not page.
    "faults-throttled": {
        _a("M365ServiceAdvisory", service="Exchange Online", classification="advisory"),
    },
    "faults-unauthorized": {_a("M365TenantAuthFailed", reason="auth")},
    "service-health-contoso": {
        _a("M365ServiceDegraded", service="Exchange Online"),
        _a("M365ServiceDegraded", service="Microsoft 365 suite"),
        _a("M365ServiceDegraded", service="OneDrive for Business"),
        _a("M365ServiceAdvisory", service="Microsoft Teams", classification="advisory"),
        _a("M365LicencesRunningOut", sku="ENTERPRISEPACK"),
        _a("M365LicencesRunningOut", sku="SPE_E3"),
        _a("M365LicencesInGracePeriod", sku="SPE_E3", state="warning"),
        _a("M365LicencesSuspended", sku="FLOW_FREE"),
        _a("M365AdminsWithoutMfa", group="admins"),
    },
    "service-health-fabrikam": {
        _a("M365ServiceInterrupted", service="Microsoft Teams", status="serviceInterruption"),
        _a("M365ServiceDegraded", service="Microsoft Teams"),
        _a("M365ServiceStatusUnknown", service="SharePoint Online"),
    },
    # Teams restored (its incident still open): quiet. SharePoint's status is still unknown.
    "service-health-fabrikam-later": {_a("M365ServiceStatusUnknown", service="SharePoint Online")},
}
# Alerts aggregated over tenants keep only these labels.
PER_JOB = {"M365ServiceStatusUnknown", "M365ScrapeFailing"}
SEVERITY = {
    str(r["alert"]): str(r["labels"]["severity"])
    for g in yaml.safe_load(RULES.read_text())["groups"]
    for r in g["rules"]
}


def _input_series(case: str) -> list[dict[str, str]]:
    target = {"job": "m365", "instance": case, "customer": case, "tenant": case}
    series = [{"series": "up" + series_labels(target), "values": f"1+0x{MINUTES}"}]
    text = (GOLDEN / f"{case}.prom").read_text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            value = "Inf" if math.isinf(sample.value) else repr(sample.value)
            series.append(
                {
                    "series": sample.name + series_labels({**sample.labels, **target}),
                    "values": f"{value}+0x{MINUTES}",
                }
            )
    return series


def _exp_sample(case: str, alert: Alert) -> dict[str, object]:
    name, extra = alert
    labels = {"alertname": name, "alertstate": "firing", "severity": SEVERITY[name], "job": "m365"}
    if name not in PER_JOB:
        labels |= {"instance": case, "customer": case, "tenant": case}
    labels |= dict(extra)
    return {"labels": "ALERTS" + series_labels(labels), "value": 1}


def test_every_golden_case_is_listed() -> None:
    assert {p.stem for p in GOLDEN.glob("*.prom")} == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_alerts_on_golden_scrape(case: str, tmp_path: Path) -> None:
    expected = [_exp_sample(case, a) for a in sorted(EXPECTED[case])]
    assert_firing(tmp_path, RULES, _input_series(case), MINUTES, expected)
