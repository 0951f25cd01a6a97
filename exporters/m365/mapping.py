"""Mapping: one tenant's latest records -> metric families. Pure: no I/O, no clock.

Sample (abridged; the probe core adds ``m365_up`` and friends)::

    m365_signal_data_age_seconds{signal="health"} 42
    m365_service_status{service="Exchange Online",status="serviceDegradation"} 1
    m365_service_status{service="Exchange Online",status="serviceOperational"} 0
    m365_service_degraded{service="Exchange Online"} 1
    m365_issues_open{classification="incident",service="Exchange Online"} 1
    m365_issue_info{classification="incident",issue_id="EX123456",service="Exchange Online"} 1
    m365_issue_start_timestamp_seconds{issue_id="EX123456"} 1.7935992e+09
    m365_license_prepaid_units{sku="ENTERPRISEPACK",state="enabled"} 50
    m365_secure_score_current 41.5
    m365_mfa_registered_users{group="admins"} 4
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mspwatch.exporters.graph.client import COMMON_STATUSES, RequestStats
from mspwatch.exporters.graph.errors import Reason
from mspwatch.inventory.m365 import Signal

from .client import Issue, MfaCounts, SecureScore, ServiceHealth, Sku

# Graph's serviceHealthStatus enum (v1.0), in its canonical spelling; "unknownFutureValue"
# and anything newer map to "unknown".
STATUSES: tuple[str, ...] = (
    "serviceOperational",
    "investigating",
    "restoringService",
    "verifyingService",
    "serviceRestored",
    "postIncidentReviewPublished",
    "serviceDegradation",
    "serviceInterruption",
    "extendedRecovery",
    "falsePositive",
    "investigationSuspended",
    "resolved",
    "mitigatedExternal",
    "mitigated",
    "resolvedExternal",
    "confirmed",
    "reported",
    "unknown",
)
_BY_FOLDED = {s.lower(): s for s in STATUSES}

# Statuses in which Microsoft reports (or is working on) user impact right now.
DEGRADED: frozenset[str] = frozenset(
    {
        "investigating",
        "restoringService",
        "verifyingService",
        "serviceDegradation",
        "serviceInterruption",
        "extendedRecovery",
        "confirmed",
    }
)
CLASSIFICATIONS: tuple[str, ...] = ("advisory", "incident")
PREPAID_STATES: tuple[str, ...] = ("enabled", "suspended", "warning", "locked_out")


def canonical_status(raw: str) -> str:
    """Fold case (``ServiceDegradation`` == ``serviceDegradation``); unknown -> ``unknown``."""
    return _BY_FOLDED.get(raw.strip().lower(), "unknown")


def canonical_classification(raw: str) -> str:
    folded = raw.strip().lower()
    return folded if folded in CLASSIFICATIONS else "unknown"


@dataclass(frozen=True)
class SignalState:
    """Where one signal of one tenant stands."""

    interval: float
    attempted: bool = False
    ok: bool = False  # the latest attempt succeeded
    reason: Reason | None = None  # why the latest attempt failed
    fetched_at: float | None = None  # when the data served now was fetched


@dataclass(frozen=True)
class TenantView:
    """Everything the mapping needs for one tenant, frozen at scrape time."""

    signals: Mapping[Signal, SignalState]
    now: float
    requests: RequestStats
    health: Sequence[ServiceHealth] | None = None
    issues: Sequence[Issue] | None = None
    licences: Sequence[Sku] | None = None
    secure_score: SecureScore | None = None
    mfa: MfaCounts | None = None


def _g(name: str, doc: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def map_tenant(view: TenantView) -> list[Metric]:
    """Build every family for one tenant."""
    out: list[Metric] = []
    out += _status_families(view)
    if view.health is not None or view.issues is not None:
        out += _service_families(view.health, view.issues)
    if view.licences is not None:
        out += _licence_families(view.licences)
    if view.secure_score is not None:
        out += _secure_score_families(view.secure_score)
    if view.mfa is not None:
        out += _mfa_families(view.mfa)
    return out


def _status_families(view: TenantView) -> list[Metric]:
    # m365_up and m365_scrape_error are the probe core's (M365App.scrape says why).
    sig_up = _g(
        "m365_signal_up", "Whether the latest background refresh of this signal succeeded.", ["signal"]
    )
    age = _g(
        "m365_signal_data_age_seconds",
        "Age of the data served for this signal (cached, refreshed in the background); "
        "+Inf until the first successful refresh.",
        ["signal"],
    )
    interval = _g(
        "m365_signal_refresh_interval_seconds",
        "Configured background refresh interval of this signal.",
        ["signal"],
    )
    for signal, state in sorted(view.signals.items()):
        sig_up.add_metric([signal], 1.0 if state.ok else 0.0)
        age.add_metric(
            [signal], math.inf if state.fetched_at is None else max(0.0, view.now - state.fetched_at)
        )
        interval.add_metric([signal], state.interval)
    stats = view.requests
    requests = CounterMetricFamily(
        "m365_graph_requests",
        "Graph requests made for this tenant, by HTTP status code (error: no answer).",
        labels=["code"],
    )
    for code in sorted(set(COMMON_STATUSES) | set(stats.by_status)):  # zero rather than nothing
        requests.add_metric([code], float(stats.by_status[code]))
    throttled = CounterMetricFamily(
        "m365_graph_throttled", "Graph answers 429 Too Many Requests for this tenant."
    )
    throttled.add_metric([], float(stats.throttled))
    retries = CounterMetricFamily(
        "m365_graph_retries", "Graph requests retried after a 429, 5xx or network error."
    )
    retries.add_metric([], float(stats.retries))
    restarts = CounterMetricFamily(
        "m365_graph_paging_restarts",
        "Listings restarted from the first page because the page token had expired.",
    )
    restarts.add_metric([], float(stats.restarts))
    return [sig_up, age, interval, requests, throttled, retries, restarts]


def _service_families(health: Sequence[ServiceHealth] | None, issues: Sequence[Issue] | None) -> list[Metric]:
    out: list[Metric] = []
    services: set[str] = set()
    if health is not None:
        status = _g(
            "m365_service_status",
            "Service health status from healthOverviews.status, one series per state "
            "(compared case-insensitively; values Graph adds later are 'unknown').",
            ["service", "status"],
        )
        degraded = _g(
            "m365_service_degraded",
            "Whether healthOverviews.status reports user impact (investigating, "
            "serviceDegradation, serviceInterruption, restoringService, extendedRecovery, "
            "verifyingService, confirmed).",
            ["service"],
        )
        info = _g(
            "m365_service_info",
            "Service id (healthOverviews.id) of each service name.",
            ["service", "service_id"],
        )
        by_name: dict[str, ServiceHealth] = {}
        for svc in health:
            by_name.setdefault(svc.service, svc)
        for name, svc in sorted(by_name.items()):
            current = canonical_status(svc.status)
            for state in STATUSES:
                status.add_metric([name, state], 1.0 if state == current else 0.0)
            degraded.add_metric([name], 1.0 if current in DEGRADED else 0.0)
            info.add_metric([name, svc.id], 1.0)
            services.add(name)
        out += [status, degraded, info]
    if issues is not None:
        # One issue once, even if it moved between pages while they were read.
        open_issues = list({i.id: i for i in issues if not i.resolved}.values())
        counts = Counter((i.service, canonical_classification(i.classification)) for i in open_issues)
        services |= {i.service for i in open_issues}
        classes = set(CLASSIFICATIONS) | {c for _, c in counts}
        by_service = _g(
            "m365_issues_open",
            "Open service issues (issues with isResolved false) by service and classification.",
            ["service", "classification"],
        )
        for svc_name in sorted(services):
            for cls in sorted(classes):
                by_service.add_metric([svc_name, cls], float(counts[(svc_name, cls)]))
        info = _g(
            "m365_issue_info",
            "One series per open service issue: its id (issues.id), service and classification.",
            ["issue_id", "service", "classification"],
        )
        start = _g(
            "m365_issue_start_timestamp_seconds",
            "Start time of each open service issue (issues.startDateTime).",
            ["issue_id"],
        )
        for issue in sorted(open_issues, key=lambda i: i.id):
            info.add_metric([issue.id, issue.service, canonical_classification(issue.classification)], 1.0)
            if issue.start is not None:
                start.add_metric([issue.id], issue.start)
        out += [by_service, info, start]
    return out


def _licence_families(skus: Sequence[Sku]) -> list[Metric]:
    prepaid = _g(
        "m365_license_prepaid_units",
        "Licence units bought per SKU (subscribedSkus.prepaidUnits: enabled, suspended, warning, lockedOut).",
        ["sku", "state"],
    )
    consumed = _g(
        "m365_license_consumed_units",
        "Licence units assigned per SKU (subscribedSkus.consumedUnits).",
        ["sku"],
    )
    by_part: dict[str, Sku] = {}
    for sku in skus:
        by_part.setdefault(sku.part_number, sku)
    for part, sku in sorted(by_part.items()):
        values = (sku.enabled, sku.suspended, sku.warning, sku.locked_out)
        for state, value in zip(PREPAID_STATES, values, strict=True):
            prepaid.add_metric([part, state], value)
        consumed.add_metric([part], sku.consumed)
    return [prepaid, consumed]


def _secure_score_families(score: SecureScore) -> list[Metric]:
    current = _g("m365_secure_score_current", "Microsoft Secure Score (secureScores.currentScore).")
    current.add_metric([], score.current)
    maximum = _g("m365_secure_score_max", "Highest reachable Secure Score (secureScores.maxScore).")
    maximum.add_metric([], score.max)
    out: list[Metric] = [current, maximum]
    if score.created is not None:
        created = _g(
            "m365_secure_score_timestamp_seconds",
            "When Microsoft computed the latest Secure Score (secureScores.createdDateTime).",
        )
        created.add_metric([], score.created)
        out.append(created)
    return out


def _mfa_families(mfa: MfaCounts) -> list[Metric]:
    users = _g(
        "m365_users",
        "Users in the authentication methods registration report (userRegistrationDetails), "
        "all or admins (isAdmin).",
        ["group"],
    )
    registered = _g(
        "m365_mfa_registered_users",
        "Users registered for MFA (userRegistrationDetails.isMfaRegistered), all or admins.",
        ["group"],
    )
    users.add_metric(["admins"], float(mfa.admins))
    users.add_metric(["all"], float(mfa.users))
    registered.add_metric(["admins"], float(mfa.admins_registered))
    registered.add_metric(["all"], float(mfa.registered))
    return [users, registered]
