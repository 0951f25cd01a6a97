"""Policy on calendar edges: Patch Tuesday in the customer's zone, rollover, leap years,
and one reason per failing check."""

from __future__ import annotations

from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import pytest

from mspwatch.exporters.patch.policy import Reason, deadline, judge, last_patch_tuesday, parse_iso
from mspwatch.exporters.patch.records import (
    Antivirus,
    Classification,
    DeviceRecord,
    OsFamily,
    Role,
    Severity,
    Update,
)

UTC = ZoneInfo("UTC")
LA = ZoneInfo("America/Los_Angeles")  # UTC-8 in winter
BRISBANE = ZoneInfo("Australia/Brisbane")  # UTC+10, no DST
LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class Policy:
    """Stand-in for the inventory's patch_policy (same names, same defaults)."""

    security_days: int = 14
    other_days: int = 30
    anchor: str = "patch_tuesday"
    max_days_since_contact: int = 7
    max_days_since_scan: int = 7
    max_reboot_pending_days: int = 7
    max_av_signature_age_days: int = 3
    target_compliance: float = 95.0


def local(ts: float, zone: ZoneInfo) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts, zone).isoformat()


@pytest.mark.parametrize(
    ("when", "zone", "expected"),
    [
        # First of the month, before its second Tuesday: last month's.
        ("2026-03-01T00:00:00Z", UTC, "2026-02-10T00:00:00+00:00"),
        # The Tuesday itself from its first second, in UTC.
        ("2026-01-13T00:00:00Z", UTC, "2026-01-13T00:00:00+00:00"),
        ("2026-01-12T23:59:59Z", UTC, "2025-12-09T00:00:00+00:00"),
        # 05:00 UTC on the Tuesday is still Monday evening in Los Angeles: December's.
        ("2026-01-13T05:00:00Z", LA, "2025-12-09T00:00:00-08:00"),
        ("2026-01-13T08:00:00Z", LA, "2026-01-13T00:00:00-08:00"),
        # 20:00 UTC on the Monday is already Tuesday 06:00 in Brisbane: January's.
        ("2026-01-12T20:00:00Z", BRISBANE, "2026-01-13T00:00:00+10:00"),
        ("2026-01-12T13:59:59Z", BRISBANE, "2025-12-09T00:00:00+10:00"),
        # December -> January: early January 2027 still counts December 2026's.
        ("2027-01-05T12:00:00Z", UTC, "2026-12-08T00:00:00+00:00"),
        ("2027-01-12T12:00:00Z", UTC, "2027-01-12T00:00:00+00:00"),
        # Summer time in London: local midnight is 23:00 UTC the day before.
        ("2026-07-13T23:30:00Z", LONDON, "2026-07-14T00:00:00+01:00"),
    ],
)
def test_last_patch_tuesday(when: str, zone: ZoneInfo, expected: str) -> None:
    assert local(last_patch_tuesday(parse_iso(when), zone), zone) == expected


@pytest.mark.parametrize(
    ("detected", "days", "zone", "expected"),
    [
        # Leap year: 8 February 2028 + 30 days crosses 29 February.
        ("2028-02-08T19:00:00Z", 30, UTC, "2028-03-09T00:00:00+00:00"),
        ("2027-02-09T19:00:00Z", 30, UTC, "2027-03-11T00:00:00+00:00"),
        ("2028-02-20T10:00:00Z", 14, UTC, "2028-02-22T00:00:00+00:00"),
        # December's deadline falls in January.
        ("2026-12-08T19:00:00Z", 30, UTC, "2027-01-07T00:00:00+00:00"),
        # Calendar days across the spring DST change stay at local midnight.
        ("2026-03-10T19:00:00Z", 30, LONDON, "2026-04-09T00:00:00+01:00"),
    ],
)
def test_deadline_patch_tuesday(detected: str, days: int, zone: ZoneInfo, expected: str) -> None:
    assert local(deadline(parse_iso(detected), days, "patch_tuesday", zone), zone) == expected


def test_deadline_release() -> None:
    got = deadline(parse_iso("2026-01-20T10:00:00Z"), 14, "release", UTC)
    assert local(got, UTC) == "2026-02-03T10:00:00+00:00"


NOW = parse_iso("2026-02-02T09:00:00Z")  # 20 days after 13 January


def device(**kw: object) -> DeviceRecord:
    base = DeviceRecord(
        id="1",
        name="pc1",
        os_family=OsFamily.WINDOWS,
        role=Role.WORKSTATION,
        os_name="Windows 11 Pro",
        os_version="10.0.26100.2605",
        last_contact=NOW - 300,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def update(
    cls: Classification, sev: Severity = Severity.IMPORTANT, *, at: str, failed: bool = False
) -> Update:
    return Update(classification=cls, severity=sev, failed=failed, detected=parse_iso(at))


JAN_PT_EVENING = "2026-01-13T19:00:00Z"


@pytest.mark.parametrize(
    ("dev", "reasons"),
    [
        (device(), set()),
        # 20 days after Patch Tuesday: a security update is overdue (14), a regular one not (30).
        (device(updates=(update(Classification.SECURITY, at=JAN_PT_EVENING),)), {Reason.MISSING_CRITICAL}),
        (device(updates=(update(Classification.REGULAR, at=JAN_PT_EVENING),)), set()),
        # A regular update rated critical is held to the security deadline.
        (
            device(updates=(update(Classification.REGULAR, Severity.CRITICAL, at=JAN_PT_EVENING),)),
            {Reason.MISSING_CRITICAL},
        ),
        (
            device(updates=(update(Classification.FEATURE, at="2025-12-10T00:00:00Z"),)),
            {Reason.MISSING_OTHER},
        ),
        # Definition updates are the antivirus checks' business.
        (device(updates=(update(Classification.DEFINITION, at="2025-11-01T00:00:00Z"),)), set()),
        # A failed install counts at once, before its deadline.
        (
            device(updates=(update(Classification.REGULAR, at="2026-01-30T00:00:00Z", failed=True),)),
            {Reason.FAILED_INSTALL},
        ),
        (device(last_contact=NOW - 8 * 86400), {Reason.NOT_REPORTING}),
        (device(last_contact=None), {Reason.NOT_REPORTING}),
        (device(last_scan=NOW - 7.5 * 86400), {Reason.NOT_SCANNED}),
        (device(last_scan=NOW - 6 * 86400), set()),
        # The source looked back 14 days and found no scan (NinjaOne's activity log) ...
        (device(no_scan_since=NOW - 14 * 86400), {Reason.NOT_SCANNED}),
        # ... or only 5 days: not yet provably past the limit.
        (device(no_scan_since=NOW - 5 * 86400), set()),
        # A Defender scan is not an update scan: not judged.
        (device(antivirus=Antivirus(True, True, True, last_scan=NOW - 30 * 86400)), set()),
        (device(reboot_pending=True, reboot_pending_since=NOW - 8 * 86400), {Reason.REBOOT_PENDING}),
        (device(reboot_pending=True, reboot_pending_since=NOW - 6 * 86400), set()),
        (device(antivirus=Antivirus(enabled=False, realtime=None, signatures_current=True)), {Reason.AV_OFF}),
        (device(antivirus=Antivirus(enabled=True, realtime=False, signatures_current=True)), {Reason.AV_OFF}),
        (
            device(antivirus=Antivirus(enabled=True, realtime=True, signatures_current=False)),
            {Reason.AV_OUTDATED},
        ),
        (
            device(antivirus=Antivirus(True, True, None, signature_time=NOW - 10 * 86400)),
            {Reason.AV_OUTDATED},
        ),
        (device(antivirus=Antivirus(True, True, None, signature_time=NOW - 2 * 86400)), set()),
    ],
)
def test_verdict(dev: DeviceRecord, reasons: set[Reason]) -> None:
    verdict = judge(dev, Policy(), LONDON, NOW)
    assert verdict.reasons == reasons
    assert verdict.compliant == (not reasons)


def test_month_rollover() -> None:
    """February's update seen on its Patch Tuesday is due 24 February, not earlier."""
    before, after = parse_iso("2026-02-23T23:59:59Z"), parse_iso("2026-02-24T00:00:00Z")
    dev = device(last_contact=before, updates=(update(Classification.SECURITY, at="2026-02-10T19:00:00Z"),))
    assert judge(dev, Policy(), LONDON, before).compliant
    assert judge(dev, Policy(), LONDON, after).reasons == {Reason.MISSING_CRITICAL}


def test_undated_update_anchors_on_latest_patch_tuesday() -> None:
    dev = device(updates=(Update(Classification.SECURITY, Severity.IMPORTANT, failed=False, detected=None),))
    assert judge(dev, Policy(), LONDON, NOW).reasons == {Reason.MISSING_CRITICAL}
    early = parse_iso("2026-01-20T00:00:00Z")
    assert judge(replace(dev, last_contact=early), Policy(), LONDON, early).compliant


def test_release_anchor() -> None:
    dev = device(updates=(update(Classification.SECURITY, at="2026-01-25T00:00:00Z"),))
    assert judge(dev, Policy(), LONDON, NOW).reasons == {Reason.MISSING_CRITICAL}
    assert judge(dev, Policy(anchor="release"), LONDON, NOW).compliant


def test_several_reasons_at_once() -> None:
    dev = device(
        last_contact=NOW - 30 * 86400,
        updates=(update(Classification.SECURITY, at=JAN_PT_EVENING, failed=True),),
        antivirus=Antivirus(enabled=False, realtime=False, signatures_current=False),
    )
    assert judge(dev, Policy(), LONDON, NOW).reasons == {
        Reason.MISSING_CRITICAL,
        Reason.FAILED_INSTALL,
        Reason.NOT_REPORTING,
        Reason.AV_OFF,
        Reason.AV_OUTDATED,
    }
