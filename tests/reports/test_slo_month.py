"""The SLO rules over the ground-truth month give the report's availability.

The reports' Prometheus (tests/reports/conftest.py) holds the ground-truth month with
alertrules/availability.yml recorded over it once a minute, at whole minutes, as a running
Prometheus would (``backfill_rules``: first the device reachability, then the device-minutes
that read it); the device-minutes summed over the customer's month are the SLA board's
month-to-date figure.

One difference, and only one: the report ignores outages shorter than the contract's
blip_threshold (counted up, and listed as blips); the rules count every minute. So the
rules' up device-minutes are the report's less the blips' minutes, named below.
"""

from __future__ import annotations

import httpx
import pytest

from mspwatch.reports.contract import month_span
from mspwatch.reports.model import CustomerReport
from tests.reports import groundtruth

MONTH = month_span(groundtruth.MONTH, "Europe/London")
# The report's blips, which the rules count as down: (device, start, minutes).
BLIPS = {
    "acme-dental": [("hq/fw1", groundtruth.utc("2026-10-20T10:00"), 1)],  # threshold 2 min
    "bolt-logistics": [("datacentre/pdu-a", groundtruth.utc("2026-10-13T10:00"), 3)],  # threshold 5 min
}


def _month_sum(url: str, series: str) -> dict[str, float]:
    """The series summed over the month's minutes.

    The recorded series are stamped at whole minutes (``backfill_rules`` asks range queries
    at whole-minute steps): the minute [K, K+60) has its sample at K+30 and is judged by the
    evaluation at K+60, so the month's minutes are the evaluations in (start, end].
    """
    millis = (MONTH.end - MONTH.start) * 1000 - 1
    answer = httpx.get(
        f"{url}/api/v1/query",
        params={"query": f"sum_over_time({series}[{millis}ms])", "time": f"{MONTH.end}"},
        timeout=120,
    ).json()
    assert answer["status"] == "success", answer
    return {r["metric"]["customer"]: float(r["value"][1]) for r in answer["data"]["result"]}


@pytest.fixture(scope="session")
def slo_month(prometheus_url: str) -> dict[str, tuple[float, float]]:
    counted = _month_sum(prometheus_url, "customer:availability_counted_devices:sum")
    up = _month_sum(prometheus_url, "customer:availability_up_devices:sum")
    return {c: (counted[c], up[c]) for c in counted}


@pytest.mark.parametrize("name", ["acme", "bolt"])
def test_the_slo_rules_count_what_the_report_counts(
    name: str, slo_month: dict[str, tuple[float, float]], request: pytest.FixtureRequest
) -> None:
    report: CustomerReport = request.getfixturevalue(name)
    customer = {"acme": "acme-dental", "bolt": "bolt-logistics"}[name]
    counted, up = slo_month[customer]
    t = report.total
    # Contract hours and maintenance, DST-correct, from the inventory exporter's series.
    assert counted == t.counted
    # The only difference: the report's blips, counted up there and down here.
    blip_minutes = sum(minutes for _, _, minutes in BLIPS[customer])
    assert t.blips == len(BLIPS[customer])
    assert up == t.up - blip_minutes
    # No data (the 47-minute gap) is counted and not up in both.
    assert counted - up == t.down + t.no_data + blip_minutes


def test_the_month_figures(slo_month: dict[str, tuple[float, float]]) -> None:
    """The same, as numbers (tests/reports/test_figures.py derives the report's)."""
    assert slo_month == {
        "acme-dental": (310_500, 309_916 - 1),
        "bolt-logistics": (8 * 22 * 600, 8 * 22 * 600 - 60 - 3),
    }
