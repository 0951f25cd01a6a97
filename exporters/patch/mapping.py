"""Records and policy -> metric families for one scrape of one source (pure, no I/O).

One NinjaOne organisation (abridged; the probe core adds ``patch_up`` and friends)::

    patch_device_compliant{device="acme-sql1"} 0
    patch_device_noncompliant{device="acme-sql1",reason="missing_critical"} 1
    patch_device_missing_updates{classification="security",device="acme-sql1"} 1
    patch_device_reboot_pending{device="acme-fs1"} 1

Every device gets every series (zero is a value): each classification, severity and
reason. KB numbers and titles never become labels; ``device`` is the RMM's display name,
made unique within the source by appending ``#<id>`` to a repeated name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from prometheus_client.core import GaugeMetricFamily, Metric

from mspwatch.exporters.core.http import RequestStats

from .policy import PolicySettings, Reason, Verdict, judge, last_patch_tuesday, patch_tuesdays_since
from .records import Classification, DeviceRecord, Severity, SourceData

DAY = 86400.0


@dataclass(frozen=True)
class SourceScrape:
    """Everything one scrape found, plus what it is judged against."""

    data: SourceData | None  # None: the source could not be read
    now: float
    policy: PolicySettings
    zone: ZoneInfo
    stats: RequestStats


def _g(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"patch_{name}", doc, labels=list(labels))


def unique_names(devices: list[DeviceRecord]) -> list[str]:
    """Display names, a repeated one made unique with its id: ``ws-1``, ``ws-1#42``."""
    seen: set[str] = set()
    out = []
    for d in devices:
        name = d.name if d.name not in seen else f"{d.name}#{d.id}"
        seen.add(name)
        out.append(name)
    return out


def map_source(s: SourceScrape) -> list[Metric]:
    """Every family of one scrape; a source that could not be read yields the counters and
    the policy only (``patch_up``, ``patch_scrape_error`` and the duration are the core's)."""
    requests = _g("scrape_requests", "HTTP requests this scrape sent to the source (token included).")
    requests.add_metric([], float(s.stats.requests))
    retries = _g("scrape_retries", "Requests this scrape repeated (429, 5xx, timeout, expired token).")
    retries.add_metric([], float(s.stats.retries))
    restarts = _g(
        "scrape_cursor_restarts", "Report queries restarted from their first page after the cursor expired."
    )
    restarts.add_metric([], float(s.stats.restarts))
    families: list[Metric] = [requests, retries, restarts, *_policy(s)]
    if s.data is not None:
        families += _devices(s, s.data.devices)
        if s.data.update_table is not None:
            families += _update_table(s, s.data.update_table)
    return families


def _update_table(s: SourceScrape, table: dict[str, float]) -> list[Metric]:
    """The hand-kept quality-update table (patch.yml ``intune.quality_updates``) and whether
    it has this month's update: it goes stale each Patch Tuesday until someone adds it."""
    released = _g(
        "quality_update_released_timestamp_seconds",
        "Release of the newest cumulative update listed per Windows build (intune.quality_updates).",
        ["build"],
    )
    for build in sorted(table):
        released.add_metric([build], table[build])
    if not table:
        return []
    newest = datetime.fromtimestamp(max(table.values()), s.zone).date()
    missed = _g(
        "quality_updates_missed_patch_tuesdays",
        "Patch Tuesdays since the newest release in intune.quality_updates (0: the table is current).",
    )
    missed.add_metric([], float(patch_tuesdays_since(newest, s.now, s.zone)))
    return [released, missed]


def _policy(s: SourceScrape) -> list[Metric]:
    p = s.policy
    target = _g("policy_target_compliance_ratio", "Share of the fleet the contract wants compliant.")
    target.add_metric([], p.target_compliance / 100.0)
    pt = last_patch_tuesday(s.now, s.zone)
    tuesday = _g(
        "policy_patch_tuesday_timestamp_seconds",
        "Start of the latest Patch Tuesday (second Tuesday, local midnight in the customer's zone).",
    )
    tuesday.add_metric([], pt)
    days = _g(
        "policy_deadline_seconds",
        "Time the policy allows after the anchor, by deadline (security: security/critical/rollup).",
        ["deadline"],
    )
    days.add_metric(["security"], p.security_days * DAY)
    days.add_metric(["other"], p.other_days * DAY)
    return [target, tuesday, days]


def _devices(s: SourceScrape, devices: list[DeviceRecord]) -> list[Metric]:
    dev = ["device"]
    info = _g(
        "device_info",
        "Device metadata (NinjaOne nodeClass and operating-systems name/buildNumber), value 1.",
        ["device", "device_id", "os", "role", "os_name", "os_version"],
    )
    missing = _g(
        "device_missing_updates",
        "Updates not installed (pending, approved or failed; rejected ones excluded), by classification.",
        ["device", "classification"],
    )
    by_sev = _g(
        "device_missing_updates_by_severity",
        "Updates not installed, by the source's severity.",
        ["device", "severity"],
    )
    overdue = _g(
        "device_overdue_updates",
        "Updates not installed past the policy's deadline, by deadline (security or other).",
        ["device", "deadline"],
    )
    failed = _g("device_failed_updates", "Updates whose last install attempt failed (status FAILED).", dev)
    attempts = _g(
        "device_install_attempts",
        "Install attempts within the install lookback, by result (os-patch-installs).",
        ["device", "result"],
    )
    last_install = _g(
        "device_last_install_timestamp_seconds",
        "Newest successful install within the lookback; 0 if none.",
        dev,
    )
    contact = _g(
        "device_last_contact_timestamp_seconds",
        "When the agent last checked in (lastContact); 0 if never.",
        dev,
    )
    scan = _g(
        "device_last_scan_timestamp_seconds",
        "Last update scan (NinjaOne: newest PATCH_MANAGEMENT_SCAN_COMPLETED activity; 0 if none within"
        " the scan lookback); Intune reports none.",
        dev,
    )
    boot = _g("device_last_boot_timestamp_seconds", "Last boot (lastBootTime); 0 if unknown.", dev)
    reboot = _g("device_reboot_pending", "Whether the device waits for a reboot (needsReboot).", dev)
    reboot_since = _g(
        "device_reboot_pending_since_timestamp_seconds",
        "Since when a reboot is pending (first install after the last boot); 0 if none or unknown.",
        dev,
    )
    compliant = _g("device_compliant", "Whether the device meets the customer's patch policy.", dev)
    noncompliant = _g(
        "device_noncompliant",
        "Why the device does not meet the policy: one series per reason, 1 where it applies.",
        ["device", "reason"],
    )
    av_enabled = _g(
        "device_av_enabled",
        "Antivirus on (productState ON); only devices the source reports antivirus for.",
        dev,
    )
    av_realtime = _g(
        "device_av_realtime_enabled",
        "Real-time protection on (Defender realTimeProtectionEnabled); only where the source says.",
        dev,
    )
    av_current = _g(
        "device_av_signatures_current",
        "Antivirus definitions up to date (definitionStatus); only where the source says.",
        dev,
    )
    av_scan = _g(
        "device_av_last_scan_timestamp_seconds",
        "Newest antivirus scan, quick or full (Defender lastQuickScanDateTime, lastFullScanDateTime);"
        " only where the source says.",
        dev,
    )
    for name, d in zip(unique_names(devices), devices, strict=True):
        v: Verdict = judge(d, s.policy, s.zone, s.now)
        info.add_metric([name, d.id, d.os_family.value, d.role.value, d.os_name, d.os_version], 1.0)
        pending = d.updates
        classes = Counter(u.classification for u in pending)
        for c in Classification:
            missing.add_metric([name, c.value], float(classes[c]))
        severities = Counter(u.severity for u in pending)
        for sev in Severity:
            by_sev.add_metric([name, sev.value], float(severities[sev]))
        overdue.add_metric([name, "security"], float(v.overdue_security))
        overdue.add_metric([name, "other"], float(v.overdue_other))
        failed.add_metric([name], float(sum(1 for u in d.updates if u.failed)))
        ok = [a for a in d.installs if a.ok]
        attempts.add_metric([name, "installed"], float(len(ok)))
        attempts.add_metric([name, "failed"], float(len(d.installs) - len(ok)))
        last_install.add_metric([name], max((a.at for a in ok), default=0.0))
        contact.add_metric([name], d.last_contact or 0.0)
        if d.last_scan is not None or d.no_scan_since is not None:
            scan.add_metric([name], d.last_scan or 0.0)
        boot.add_metric([name], d.last_boot or 0.0)
        reboot.add_metric([name], 1.0 if d.reboot_pending else 0.0)
        reboot_since.add_metric([name], d.reboot_pending_since or 0.0)
        compliant.add_metric([name], 1.0 if v.compliant else 0.0)
        for reason in Reason:
            noncompliant.add_metric([name, reason.value], 1.0 if reason in v.reasons else 0.0)
        av = d.antivirus
        if av is not None and av.enabled is not None:
            av_enabled.add_metric([name], 1.0 if av.enabled else 0.0)
        if av is not None and av.realtime is not None:
            av_realtime.add_metric([name], 1.0 if av.realtime else 0.0)
        if av is not None and av.signatures_current is not None:
            av_current.add_metric([name], 1.0 if av.signatures_current else 0.0)
        if av is not None and av.last_scan is not None:
            av_scan.add_metric([name], av.last_scan)
    # Families only some sources fill are left out when empty (no bare HELP/TYPE lines).
    optional = [f for f in (scan, av_enabled, av_realtime, av_current, av_scan) if f.samples]
    return [
        info,
        compliant,
        noncompliant,
        missing,
        by_sev,
        overdue,
        failed,
        attempts,
        last_install,
        contact,
        boot,
        reboot,
        reboot_since,
        *optional,
    ]
