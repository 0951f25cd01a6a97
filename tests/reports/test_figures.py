"""Every availability, downtime, incident and MTTR figure of the ground-truth month, exactly.

Derivations: tests/reports/groundtruth.py. October 2026 in London: 44,700 minutes; the hq
Sunday window 02:00-04:00 local covers 4 x 120 = 480 minutes (Oct 4, 11, 18 in BST, 25 in GMT).
"""

from __future__ import annotations

import dataclasses

import pytest

from mspwatch.reports.build import CustomerSpec, build_customers
from mspwatch.reports.contract import month_span
from mspwatch.reports.frames import Batch
from mspwatch.reports.model import CustomerReport
from mspwatch.reports.query import Prometheus
from tests.reports import groundtruth
from tests.reports.groundtruth import utc

HQ = 44_700 - 480


def _dev(r: CustomerReport, site: str, device: str) -> tuple[int, int, int, int, int, int]:
    d = next(x for x in r.devices if (x.site, x.name) == (site, device))
    return (d.counted, d.up, d.down, d.no_data, d.maintenance, d.blips)


def test_acme_devices(acme: CustomerReport) -> None:
    assert _dev(acme, "hq", "core-sw1") == (HQ, HQ - 47, 0, 47, 480, 0)  # its outage was in the window
    assert _dev(acme, "hq", "fw1") == (HQ, HQ - 47, 0, 47, 480, 1)  # the 1-minute blip
    assert _dev(acme, "hq", "ups1") == (HQ, HQ - 47 - 30, 30, 47, 480, 0)  # half in the window
    assert _dev(acme, "hq", "srv-pms") == (HQ, HQ - 47 - 45, 45, 47, 480, 0)
    assert _dev(acme, "hq", "wlc1") == (HQ, HQ - 47, 0, 47, 480, 0)
    assert _dev(acme, "branch-york", "rtr1") == (44_700, 44_700 - 47 - 90, 90, 47, 0, 0)
    assert _dev(acme, "branch-york", "sw1") == (44_700, 44_700 - 47 - 90, 90, 47, 0, 0)


def test_acme_totals(acme: CustomerReport) -> None:
    t = acme.total
    assert (t.counted, t.up, t.down, t.no_data, t.maintenance, t.blips) == (
        310_500,
        309_916,
        255,
        329,
        2_400,
        1,
    )
    assert t.availability == 309_916 / 310_500
    assert not acme.met  # 99.81 % < 99.9 %
    assert round(acme.budget_used, 6) == round((1 - 309_916 / 310_500) / 0.001, 6)


def test_acme_sites(acme: CustomerReport) -> None:
    sites = {s.name: (s.counted, s.up, s.down, s.no_data, s.maintenance) for s in acme.sites}
    # hq has two gateways (core-sw1, fw1) never down together; York's only gateway is rtr1.
    assert sites == {"hq": (HQ, HQ - 47, 0, 47, 480), "branch-york": (44_700, 44_700 - 137, 90, 47, 0)}


def test_acme_incidents(acme: CustomerReport) -> None:
    got = [(i.start, i.end, i.minutes, i.devices) for i in acme.incidents]
    assert got == [
        (utc("2026-10-06T08:00"), utc("2026-10-06T08:45"), 45, ("hq/srv-pms",)),
        (utc("2026-10-14T13:10"), utc("2026-10-14T14:40"), 90, ("branch-york/rtr1", "branch-york/sw1")),
        (utc("2026-10-18T03:00"), utc("2026-10-18T03:30"), 30, ("hq/ups1",)),
    ]
    assert acme.longest_minutes == 90
    assert acme.mttr_minutes == 55.0


def test_acme_maintenance_listed(acme: CustomerReport) -> None:
    got = [(m.start, m.minutes) for m in acme.maintenance]
    assert got == [
        (utc("2026-10-04T01:00"), 120),
        (utc("2026-10-11T01:00"), 120),
        (utc("2026-10-18T01:00"), 120),
        (utc("2026-10-25T02:00"), 120),  # GMT from 25 October
    ]


def test_acme_recurring(acme: CustomerReport) -> None:
    # DeviceUnreachable fires after 5 minutes: 40 + 85 + 85 + 55 + 85 (in the window, still fired).
    got = [(r.alertname, r.count, r.minutes) for r in acme.recurring]
    assert got == [("DeviceUnreachable", 5, 350), ("InterfaceErrorsHigh", 3, 75)]


def test_bolt_business_hours(bolt: CustomerReport) -> None:
    business = 22 * 600  # 22 weekdays in October 2026, 10 hours each
    assert _dev(bolt, "depot", "srv-dc1") == (business, business - 30, 30, 0, 0, 0)
    assert _dev(bolt, "datacentre", "nas1") == (business, business, 0, 0, 0, 0)  # Saturday
    assert _dev(bolt, "datacentre", "edge1") == (business, business - 30, 30, 0, 0, 0)  # DST-correct
    assert _dev(bolt, "datacentre", "pdu-a") == (business, business, 0, 0, 0, 1)
    t = bolt.total
    assert (t.counted, t.up, t.down, t.no_data) == (8 * business, 8 * business - 60, 60, 0)
    assert bolt.met
    got = [(i.minutes, i.contract_minutes, i.devices) for i in bolt.incidents]
    assert got == [
        (90, 30, ("depot/srv-dc1",)),
        (120, 0, ("datacentre/nas1",)),
        (60, 30, ("datacentre/edge1",)),
    ]
    assert (bolt.longest_minutes, bolt.mttr_minutes) == (120, 90.0)


def test_backup(acme: CustomerReport, bolt: CustomerReport) -> None:
    b = acme.backup
    assert (b.runs, b.failed) == (31, 2)  # 21:00Z on every day of October
    assert [f[0] for f in b.failures] == [utc("2026-10-09T21:00"), utc("2026-10-10T21:00")]
    # 8,940 five-minute samples less the 10 lost in the 47-minute gap (Oct 10 12:00Z);
    # out of RPO from Oct 9 23:00Z to Oct 11 21:00Z: 552 samples, less the same 10.
    assert b.rpo_compliance == (8930 - 542) / 8930
    assert b.jobs[0].last_restore_test == utc("2026-10-18T12:00")
    assert (bolt.backup.runs, bolt.backup.failed, bolt.backup.jobs[0].last_restore_test) == (31, 0, 0)


def test_patch_and_m365(acme: CustomerReport) -> None:
    p = acme.patch
    assert (p.devices, p.compliance) == (4, 0.5)
    assert (p.overdue_critical, p.not_reporting, p.av_off) == (("ws-01",), ("ws-02",), ())
    m = acme.m365
    assert [(i.service, i.start, i.minutes) for i in m.incidents] == [
        ("Exchange Online", utc("2026-10-12T09:00"), 150)
    ]
    assert (m.licences_used, m.licences_total) == (40, 45)


@pytest.mark.parametrize("which", ["acme", "bolt"])
def test_raw_samples_give_the_same_figures(
    which: str, prom: Prometheus, acme: CustomerReport, bolt: CustomerReport
) -> None:
    """Without the recorded series (its rules loaded after the month began) each minute is
    judged on the raw ping and SNMP samples with the rule's own expression: same figures."""
    expected, spec = (acme, groundtruth.ACME) if which == "acme" else (bolt, groundtruth.BOLT)
    (got,) = build_customers(prom, [spec], groundtruth.MONTH, recorded="mspwatch_not_recorded")
    assert isinstance(got, CustomerReport)
    assert (expected.availability_source, got.availability_source) == ("recorded", "raw")
    assert dataclasses.replace(got, availability_source="recorded") == expected


def test_recorded_series_from_mid_month(prom: Prometheus, acme: CustomerReport) -> None:
    """Acme's recorded series (here under its own name) begins on 15 October: its rules came
    late. Read as it is, the first fortnight would be no data; a series without a sample in
    the month's first hour is not used, the customer is judged on its raw samples: the same
    figures, and the methodology page says which source was used."""
    from mspwatch.reports import render
    from mspwatch.reports.model import Brand

    name, month_end = groundtruth.LATE_RECORDED, utc("2026-11-01T00:00")
    seen = prom.instant(f"count by (customer) (last_over_time({name}[31d]))", month_end)
    assert [(s.label("customer"), s.value) for s in seen] == [("acme-dental", 7.0)]
    first = prom.instant(f"count_over_time({name}[1h])", utc("2026-10-01T00:00"))  # 01:00 BST
    assert first == []
    (late,) = build_customers(prom, [groundtruth.ACME], groundtruth.MONTH, recorded=name)
    assert isinstance(late, CustomerReport)
    assert late.availability_source == "raw"
    assert dataclasses.replace(late, availability_source="recorded") == acme
    html = render.customer_html(late, Brand(), {"devices": "<svg/>", "downtime": "<svg/>"})
    assert "does not cover this month (its rules were loaded later)" in html
    assert "judged on the raw ping and SNMP samples" in html


def test_one_question_for_all_customers(prom: Prometheus) -> None:
    """Customers sharing a time zone (both Europe/London) are asked together: each question
    names them all, so two cost fewer requests than one and one (only the days with
    something to look into are asked per day, for the customers that had one)."""

    def requests(specs: list[CustomerSpec]) -> int:
        with Prometheus(prom.url) as p:
            got = build_customers(p, specs, groundtruth.MONTH, with_previous=False)
            assert all(isinstance(r, CustomerReport) for r in got)
            return p.requests

    acme, bolt = requests([groundtruth.ACME]), requests([groundtruth.BOLT])
    assert requests([groundtruth.ACME, groundtruth.BOLT]) < acme + bolt


def test_only_days_with_events_read_in_full(prom: Prometheus) -> None:
    """The devices' minutes are read one by one only in the 24-hour tiles of the month (from
    local midnight on 1 October, 23:00Z) that hold an outage, a blip or a gap; every other
    tile is judged from the customer's series of devices reporting and the down minutes
    alone (alertrules/availability.yml)."""
    month = month_span(groundtruth.MONTH, "Europe/London")
    batch = Batch(prom, month, ["acme-dental", "bolt-logistics"])
    for spec in (groundtruth.ACME, groundtruth.BOLT):
        assert spec.devices is not None
        batch.device_states(spec.name, list(spec.devices))
    tiles = {c: [(t - month.start) // 86400 + 1 for t in starts] for c, starts in batch.read_in_full.items()}
    # acme: srv-pms 6th, gap 10th, York 14th, UPS 18th, blip 20th, core switch 25th.
    # bolt: srv-dc1 7th, blip 13th, nas1 17th, edge1 on the 26th at 07:30Z (tile 26 begins
    # at 23:00Z on the 25th: the clocks went back on the 25th).
    assert tiles == {"acme-dental": [6, 10, 14, 18, 20, 25], "bolt-logistics": [7, 13, 17, 26]}


def test_without_the_companion_series_the_same_minutes(prom: Prometheus) -> None:
    """History recorded by rules without the reporting and down series (older rule files):
    every tile is read device by device, and every minute comes out the same."""
    month = month_span(groundtruth.MONTH, "Europe/London")
    names = ["acme-dental", "bolt-logistics"]
    usual, older = Batch(prom, month, names), Batch(prom, month, names, companions=("absent:a", "absent:b"))
    for spec in (groundtruth.ACME, groundtruth.BOLT):
        assert spec.devices is not None
        devices = list(spec.devices)
        got, want = older.device_states(spec.name, devices), usual.device_states(spec.name, devices)
        assert got.keys() == want.keys()
        assert all((got[k] == want[k]).all() for k in want)
        assert len(older.read_in_full[spec.name]) == 32  # 31 days and the hour the clocks went back
