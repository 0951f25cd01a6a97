"""The compliance policy: Patch Tuesday, deadlines, and a verdict with reasons per device.

Pure functions, no I/O. Patch Tuesday is the second Tuesday of the month *in the
customer's time zone*, its start being local midnight; an update's deadline is its
anchor plus the days the policy allows for its classification::

    >>> from zoneinfo import ZoneInfo
    >>> patch_tuesday(2026, 1)
    datetime.date(2026, 1, 13)
    >>> utc = ZoneInfo("UTC")
    >>> fmt(last_patch_tuesday(parse_iso("2026-02-01T12:00:00Z"), utc), utc)   # before Feb's
    '2026-01-13T00:00:00+00:00'
    >>> fmt(deadline(parse_iso("2026-01-14T09:00:00Z"), 14, "patch_tuesday", utc), utc)
    '2026-01-27T00:00:00+00:00'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from .records import JUDGED_CLASSES, SECURITY_CLASSES, DeviceRecord, Severity, Update

DAY = 86400.0


class PolicySettings(Protocol):
    """The per-customer ``patch_policy`` of the inventory (read-only view)."""

    @property
    def security_days(self) -> float: ...
    @property
    def other_days(self) -> float: ...
    @property
    def anchor(self) -> str: ...  # "patch_tuesday" | "release"
    @property
    def max_days_since_contact(self) -> float: ...
    @property
    def max_days_since_scan(self) -> float: ...
    @property
    def max_reboot_pending_days(self) -> float: ...
    @property
    def max_av_signature_age_days(self) -> float: ...
    @property
    def target_compliance(self) -> float: ...  # percent


class Reason(StrEnum):
    """Why a device is not compliant; each is one ``patch_device_noncompliant{reason}`` series."""

    MISSING_CRITICAL = "missing_critical"  # a security/critical update past its deadline
    MISSING_OTHER = "missing_other"  # another update past other_days
    FAILED_INSTALL = "failed_install"  # an update whose last install attempt failed
    REBOOT_PENDING = "reboot_pending"  # a reboot pending longer than max_reboot_pending_days
    NOT_REPORTING = "not_reporting"  # no contact within max_days_since_contact
    NOT_SCANNED = "not_scanned"  # no update scan within max_days_since_scan
    AV_OFF = "av_off"  # antivirus or its real-time protection switched off
    AV_OUTDATED = "av_outdated"  # signatures out of date or older than the maximum age


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def fmt(ts: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).isoformat()


def patch_tuesday(year: int, month: int) -> date:
    """The second Tuesday of ``month``.

    >>> patch_tuesday(2026, 12), patch_tuesday(2027, 1), patch_tuesday(2028, 2)
    (datetime.date(2026, 12, 8), datetime.date(2027, 1, 12), datetime.date(2028, 2, 8))
    """
    first = date(year, month, 1)
    first_tuesday = first + timedelta(days=(1 - first.weekday()) % 7)
    return first_tuesday + timedelta(days=7)


def _local_midnight(day: date, zone: ZoneInfo) -> float:
    return datetime.combine(day, time(0, 0), zone).timestamp()


def last_patch_tuesday(ts: float, zone: ZoneInfo) -> float:
    """Start (local midnight) of the latest Patch Tuesday at or before ``ts`` in ``zone``."""
    local = datetime.fromtimestamp(ts, zone)
    year, month = local.year, local.month
    start = _local_midnight(patch_tuesday(year, month), zone)
    if ts < start:  # before this month's: last month's, across the year boundary too
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        start = _local_midnight(patch_tuesday(year, month), zone)
    return start


def patch_tuesdays_since(day: date, now: float, zone: ZoneInfo) -> int:
    """Patch Tuesdays after ``day`` that have begun by ``now`` in ``zone``.

    >>> utc = ZoneInfo("UTC")
    >>> [patch_tuesdays_since(date(2026, 1, 13), parse_iso(t), utc)
    ...  for t in ("2026-02-09T23:59:59Z", "2026-02-10T00:00:00Z", "2026-04-01T00:00:00Z")]
    [0, 1, 2]
    """
    count, year, month = 0, day.year, day.month
    while True:
        tuesday = patch_tuesday(year, month)
        if tuesday > day:
            if _local_midnight(tuesday, zone) > now:
                return count
            count += 1
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def deadline(detected: float, days: float, anchor: str, zone: ZoneInfo) -> float:
    """When an update first seen at ``detected`` becomes overdue.

    ``patch_tuesday``: local midnight ``days`` calendar days after the Patch Tuesday at or
    before ``detected`` (calendar days in the zone, so a DST change shifts nothing);
    ``release``: ``days`` x 24 h after ``detected``.
    """
    if anchor == "release":
        return detected + days * DAY
    start = datetime.fromtimestamp(last_patch_tuesday(detected, zone), zone).date()
    whole = int(days)
    end = datetime.combine(start + timedelta(days=whole), time(0, 0), zone).timestamp()
    return end + (days - whole) * DAY


def is_security(update: Update) -> bool:
    """Held to ``security_days``: a security-class update, or any rated critical."""
    return update.classification in SECURITY_CLASSES or update.severity is Severity.CRITICAL


@dataclass(frozen=True)
class Verdict:
    reasons: frozenset[Reason]
    overdue_security: int  # updates past the security deadline
    overdue_other: int

    @property
    def compliant(self) -> bool:
        return not self.reasons


def judge(device: DeviceRecord, policy: PolicySettings, zone: ZoneInfo, now: float) -> Verdict:
    """Compliant, or not with every reason that applies.

    An update the source gives no detection time for is anchored on the latest Patch
    Tuesday before ``now`` (neither the strictest nor the laxest reading). Checks whose
    input the source does not report (scan time, antivirus, signature date) are not judged;
    a device the source found no scan for since ``no_scan_since`` counts from then.
    """
    reasons: set[Reason] = set()
    overdue_security = overdue_other = 0
    for update in device.updates:
        if update.classification not in JUDGED_CLASSES:
            continue
        if update.failed:
            reasons.add(Reason.FAILED_INSTALL)
        seen = update.detected if update.detected is not None else last_patch_tuesday(now, zone)
        security = is_security(update)
        days = policy.security_days if security else policy.other_days
        if now >= deadline(seen, days, policy.anchor, zone):
            if security:
                overdue_security += 1
            else:
                overdue_other += 1
    if overdue_security:
        reasons.add(Reason.MISSING_CRITICAL)
    if overdue_other:
        reasons.add(Reason.MISSING_OTHER)
    if device.last_contact is None or now - device.last_contact > policy.max_days_since_contact * DAY:
        reasons.add(Reason.NOT_REPORTING)
    scanned = device.last_scan if device.last_scan is not None else device.no_scan_since
    if scanned is not None and now - scanned > policy.max_days_since_scan * DAY:
        reasons.add(Reason.NOT_SCANNED)
    if (
        device.reboot_pending
        and device.reboot_pending_since is not None
        and now - device.reboot_pending_since > policy.max_reboot_pending_days * DAY
    ):
        reasons.add(Reason.REBOOT_PENDING)
    av = device.antivirus
    if av is not None:
        if av.enabled is False or av.realtime is False:
            reasons.add(Reason.AV_OFF)
        too_old = (
            av.signature_time is not None and now - av.signature_time > policy.max_av_signature_age_days * DAY
        )
        if av.signatures_current is False or too_old:
            reasons.add(Reason.AV_OUTDATED)
    return Verdict(frozenset(reasons), overdue_security, overdue_other)
