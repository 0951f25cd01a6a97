"""Frames -> view model: one :class:`CustomerReport` per customer and month."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from mspwatch.inventory import Contract, Customer
from mspwatch.reports import availability as av
from mspwatch.reports import frames, incidents, risk
from mspwatch.reports.contract import GATEWAY_ROLES, Month, month_span, previous_month
from mspwatch.reports.model import (
    M365,
    AreaStatus,
    Availability,
    Backup,
    BackupJobRow,
    CustomerReport,
    Incident,
    M365Incident,
    MaintenanceRow,
    Patch,
    Risk,
)
from mspwatch.reports.query import NoDataError, Prometheus, QueryError

RESTORE_TEST_MAX_AGE = 90 * 86400
PATCH_SILENT_AFTER = 7 * 86400


@dataclass(frozen=True)
class CustomerSpec:
    """A customer to report on: the inventory's entry, and which devices to judge."""

    customer: Customer
    devices: tuple[frames.DeviceRef, ...] | None = None  # None: discover from Prometheus

    @property
    def name(self) -> str:
        return self.customer.name

    @property
    def display_name(self) -> str:
        return self.customer.display_name or self.customer.name

    @classmethod
    def from_inventory(cls, customer: Customer) -> CustomerSpec:
        return cls(
            customer,
            tuple(frames.DeviceRef(s.name, d.name, d.role) for s in customer.sites for d in s.devices),
        )


def hours_text(contract: Contract) -> str:
    if contract.hours == "business" and contract.business_hours is not None:
        bh = contract.business_hours
        days = ", ".join(d.capitalize() for d in bh.days)
        return f"business hours ({days} {bh.start}-{bh.end})"
    return "24x7"


def _row(name: str, f: av.Figures, site: str = "", role: str = "") -> Availability:
    return Availability(
        name, f.counted, f.up, f.down, f.no_data, f.maintenance, f.blips, f.availability, site, role
    )


def _total(name: str, rows: list[Availability]) -> Availability:
    counted = sum(r.counted for r in rows)
    up = sum(r.up for r in rows)
    return Availability(
        name,
        counted,
        up,
        sum(r.down for r in rows),
        sum(r.no_data for r in rows),
        sum(r.maintenance for r in rows),
        sum(r.blips for r in rows),
        up / counted if counted else 1.0,
    )


def _backup(b: frames.Batch, customer: str) -> Backup:
    runs = b.backup_runs(customer)
    # Counts, not avg_over_time: integers are exact on every backend (VictoriaMetrics and
    # Prometheus sum floats in different orders), and the ratio is taken here once.
    inside = b.over_month("sum", "backup_job_within_rpo", customer)
    samples = b.over_month("count", "backup_job_within_rpo", customer)
    tests = b.over_month("max", "backup_restore_test_last_timestamp_seconds", customer)
    jobs = []
    keys = sorted({(s, j) for s, j in zip(runs["source"], runs["job"], strict=True)} | _keys(samples))
    for source, job in keys:
        mine = runs[(runs["source"] == source) & (runs["job"] == job)]
        jobs.append(
            BackupJobRow(
                source,
                job,
                len(mine),
                int((mine["result"] == "failed").sum()),
                _value(inside, source, job, 0.0) / (_value(samples, source, job, 0.0) or 1.0),
                int(_value(tests, source, job, 0.0)),
            )
        )
    total = sum(j.runs for j in jobs)
    failed = sum(j.failed for j in jobs)
    failures = tuple(
        (int(start), str(source), str(job))
        for start, source, job in runs[runs["result"] == "failed"]
        .sort_values("start")[["start", "source", "job"]]
        .to_numpy()
    )
    return Backup(
        tuple(jobs),
        total,
        failed,
        (total - failed) / total if total else None,
        float(np.mean([j.rpo_compliance for j in jobs])) if jobs else None,
        failures,
    )


def _keys(df: pd.DataFrame) -> set[tuple[str, str]]:
    if df.empty:
        return set()
    return {(str(s), str(j)) for s, j in zip(df["instance"], df["job_name"], strict=True)}


def _value(df: pd.DataFrame, source: str, job: str, default: float) -> float:
    if df.empty:
        return default
    hit = df[(df["instance"] == source) & (df["job_name"] == job)]
    return float(hit["value"].iloc[0]) if len(hit) else default


def _patch(b: frames.Batch, customer: str, target: float) -> Patch:
    month = b.month
    comp = b.last_values(frames.PATCH_COMPLIANT, customer, month.end)
    if comp.empty:
        return Patch(0, None, target, (), (), (), ())
    missing = b.last_values(frames.PATCH_OVERDUE, customer, month.end, 'deadline="security"')
    contact = b.last_values(frames.PATCH_LAST_CONTACT, customer, month.end)
    avon = b.last_values(frames.PATCH_AV_ENABLED, customer, month.end)
    trend = b.daily(f"avg by (customer) (last_over_time({frames.PATCH_COMPLIANT}{{$sel}}[1h]))", customer)

    def names(df: pd.DataFrame, cond: pd.Series) -> tuple[str, ...]:
        return tuple(sorted(df[cond]["device"].astype(str))) if not df.empty else ()

    return Patch(
        devices=len(comp),
        compliance=float(comp["value"].mean()),
        target=target,
        trend=tuple(trend),
        overdue_critical=names(missing, missing["value"] > 0) if not missing.empty else (),
        not_reporting=names(contact, month.end - contact["value"] > PATCH_SILENT_AFTER)
        if not contact.empty
        else (),
        av_off=names(avon, avon["value"] == 0) if not avon.empty else (),
    )


def _m365(b: frames.Batch, customer: str) -> M365:
    month = b.month
    eps = b.m365_incidents(customer)
    incs = tuple(
        M365Incident(e.labels.get("tenant", ""), e.labels.get("service", ""), e.start, e.end, e.minutes)
        for e in eps
    )
    used = b.last_values("m365_license_consumed_units", customer, month.end)
    total = b.last_values("m365_license_prepaid_units", customer, month.end, 'state="enabled"')

    def ratio(num: str, den: str, at: int, extra: str = "") -> float | None:
        n = b.last_values(num, customer, at, extra)
        d = b.last_values(den, customer, at, extra)
        if n.empty or d.empty or float(d["value"].sum()) == 0:
            return None
        return float(n["value"].sum() / d["value"].sum())

    first = month.start + 86400
    trend = b.daily(
        "sum by (customer) (last_over_time(m365_secure_score_current{$sel}[1d]))"
        " / sum by (customer) (last_over_time(m365_secure_score_max{$sel}[1d]))",
        customer,
    )
    tenants = b.last_values("m365_up", customer, month.end, window="1d")
    return M365(
        tenants=tuple(sorted(tenants["tenant"].astype(str))) if not tenants.empty else (),
        incidents=incs,
        licences_used=int(used["value"].sum()) if not used.empty else 0,
        licences_total=int(total["value"].sum()) if not total.empty else 0,
        secure_score=ratio("m365_secure_score_current", "m365_secure_score_max", month.end),
        secure_score_start=ratio("m365_secure_score_current", "m365_secure_score_max", first),
        mfa=ratio("m365_mfa_registered_users", "m365_users", month.end, 'group="all"'),
        mfa_start=ratio("m365_mfa_registered_users", "m365_users", first, 'group="all"'),
        secure_trend=tuple(trend),
    )


def local_time(ts: int, tz: str) -> str:
    return dt.datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%a %d %b %H:%M")


def build_customers(
    prom: Prometheus,
    specs: Sequence[CustomerSpec],
    month_key: str,
    *,
    with_previous: bool = True,
    recorded: str = frames.RECORDED,
) -> list[CustomerReport | NoDataError]:
    """Query, compute and assemble each customer's month, asking each question once for all
    customers that share a time zone; a customer without data gets its :class:`NoDataError`
    in its place (any other query error is raised)."""
    batches: dict[str, frames.Batch] = {}
    for spec in specs:
        tz = spec.customer.timezone
        if tz not in batches:
            names = [s.name for s in specs if s.customer.timezone == tz]
            batches[tz] = frames.Batch(prom, month_span(month_key, tz), names, recorded)
    previous: dict[str, CustomerReport] = {}
    if with_previous:
        try:
            before = build_customers(
                prom, specs, previous_month(month_key), with_previous=False, recorded=recorded
            )
        except QueryError:
            before = []
        for r in before:
            # Mostly unmonitored (e.g. history starts mid-month): no fair comparison.
            if isinstance(r, CustomerReport) and r.total.no_data * 2 <= r.total.counted:
                previous[r.customer] = r
    out: list[CustomerReport | NoDataError] = []
    for spec in specs:
        try:
            out.append(_assemble(batches[spec.customer.timezone], spec, month_key, previous.get(spec.name)))
        except NoDataError as exc:
            out.append(exc)
    return out


def build_customer(
    prom: Prometheus, spec: CustomerSpec, month_key: str, *, with_previous: bool = True
) -> CustomerReport:
    """One customer's month (raises :class:`NoDataError` when it has no data)."""
    (r,) = build_customers(prom, [spec], month_key, with_previous=with_previous)
    if isinstance(r, NoDataError):
        raise r
    return r


def _assemble(
    b: frames.Batch, spec: CustomerSpec, month_key: str, previous: CustomerReport | None
) -> CustomerReport:
    c = spec.customer.contract
    month = b.month
    b.require_data(spec.name)
    devices = list(spec.devices) if spec.devices is not None else b.discover_devices(spec.name)
    states = b.device_states(spec.name, devices)
    contract_mask = av.contract_mask(month, spec.customer)
    occs = av.occurrences(spec.customer, month)
    blip_minutes = max(1, math.ceil(c.blip_threshold / 60))  # runs shorter than this are blips

    device_rows: list[Availability] = []
    counted_down: dict[str, av.Mask] = {}
    by_site: dict[str, list[tuple[frames.DeviceRef, av.States]]] = {}
    for d in devices:
        raw = states[(d.site, d.device)]
        filtered, blips = av.ignore_blips(raw, blip_minutes)
        maint = av.maintenance_mask(month, occs, d.site)
        device_rows.append(_row(d.device, av.figures(filtered, contract_mask, maint, blips), d.site, d.role))
        counted_down[f"{d.site}/{d.device}"] = (filtered == av.DOWN) & ~maint
        by_site.setdefault(d.site, []).append((d, filtered))
    site_rows = []
    for site, members in by_site.items():
        s = av.site_states([st for _, st in members], [d.role in GATEWAY_ROLES for d, _ in members])
        site_rows.append(
            _row(site, av.figures(s, contract_mask, av.maintenance_mask(month, occs, site), 0), site)
        )
    total = _total(spec.display_name, device_rows)
    incs = incidents.incidents(counted_down, contract_mask, month.start)
    used = av.budget_used(total.availability, c.availability_target)
    met = total.availability * 100 >= c.availability_target

    backup = _backup(b, spec.name)
    patch = _patch(b, spec.name, spec.customer.patch_policy.target_compliance)
    m365 = _m365(b, spec.name)
    parts = risk.components(
        used, backup.success_rate, backup.rpo_compliance, patch.compliance, m365.secure_score, m365.mfa
    )
    score = risk.score(parts)

    summary = _summary(total.availability, c, met, used, incs, backup, patch, m365, previous)
    return CustomerReport(
        customer=spec.name,
        display_name=spec.display_name,
        month=month_key,
        month_label=month.label,
        timezone=spec.customer.timezone,
        hours=hours_text(c),
        target=c.availability_target,
        blip_threshold_minutes=blip_minutes,
        summary=summary,
        total=total,
        sites=tuple(site_rows),
        devices=tuple(device_rows),
        maintenance=tuple(
            MaintenanceRow(o.name, o.start, o.end, o.minutes, ", ".join(o.sites) if o.sites else "all sites")
            for o in occs
        ),
        incidents=tuple(incs),
        longest_minutes=max((i.minutes for i in incs), default=0),
        mttr_minutes=incidents.mttr(incs),
        recurring=tuple(incidents.recurring(b.firing_alerts(spec.name))),
        availability_source=b.source(spec.name).label,
        backup=backup,
        patch=patch,
        m365=m365,
        risk_score=score,
        risk_previous=previous.risk_score if previous else None,
        risk_components=tuple(parts),
        top_risks=tuple(_top_risks(total.availability, c, met, used, incs, backup, patch, m365)),
        budget_used=used,
        met=met,
        availability_previous=previous.total.availability if previous else None,
        daily_down=_daily_down(month, counted_down, contract_mask),
    )


def _daily_down(month: Month, down: dict[str, av.Mask], contract: av.Mask) -> tuple[tuple[int, int], ...]:
    """Device-minutes down per local day (contract hours): the downtime chart's bars."""
    starts = av.minute_starts(month)
    local = pd.to_datetime(starts, unit="s", utc=True).tz_convert(month.timezone).normalize()
    total = np.zeros(len(starts), dtype=np.int64)
    for mask in down.values():
        total += mask & contract
    per_day = pd.Series(total, index=local).groupby(level=0).sum()
    return tuple(
        (int(pd.Timestamp(day).timestamp()), int(v)) for day, v in zip(per_day.index, per_day, strict=True)
    )


def _summary(
    availability: float,
    c: Contract,
    met: bool,
    used: float,
    incs: Sequence[Incident],
    backup: Backup,
    patch: Patch,
    m365: M365,
    prev: CustomerReport | None,
) -> tuple[AreaStatus, ...]:
    def change(now: float | None, before: float | None, unit: str = " pts") -> str:
        if now is None or before is None:
            return "no previous month"
        delta = (now - before) * 100
        return "no change" if abs(delta) < 0.005 else f"{delta:+.2f}{unit} since last month"

    out = []
    rag = "green" if met and used < 0.75 else ("amber" if met else "red")
    verb = "kept" if met else "missed"
    out.append(
        AreaStatus(
            "Availability",
            rag,
            f"{availability * 100:.2f}% against a {c.availability_target:g}% target: "
            f"agreement {verb}; {len(incs)} outage(s).",
            change(availability, prev.total.availability if prev else None),
        )
    )
    if backup.success_rate is None:
        out.append(AreaStatus("Backup", "amber", "No backup data for this month.", "no previous month"))
    else:
        ok = backup.success_rate >= 0.98 and (backup.rpo_compliance or 0) >= 0.99
        rag = "green" if ok else ("amber" if backup.success_rate >= 0.9 else "red")
        out.append(
            AreaStatus(
                "Backup",
                rag,
                f"{backup.runs - backup.failed} of {backup.runs} runs succeeded; "
                f"within RPO {(backup.rpo_compliance or 0) * 100:.1f}% of the time.",
                change(backup.success_rate, prev.backup.success_rate if prev else None),
            )
        )
    if patch.compliance is None:
        out.append(AreaStatus("Patching", "amber", "No patch data for this month.", "no previous month"))
    else:
        pct = patch.compliance * 100
        rag = "green" if pct >= patch.target else ("amber" if pct >= patch.target - 10 else "red")
        out.append(
            AreaStatus(
                "Patching",
                rag,
                f"{pct:.0f}% of {patch.devices} devices compliant (target {patch.target:g}%); "
                f"{len(patch.overdue_critical)} with overdue critical updates.",
                change(patch.compliance, prev.patch.compliance if prev else None),
            )
        )
    if m365.mfa is None:
        out.append(
            AreaStatus("Microsoft 365", "amber", "No Microsoft 365 data for this month.", "no previous month")
        )
    else:
        rag = "green" if not m365.incidents and m365.mfa >= 0.95 else ("amber" if m365.mfa >= 0.8 else "red")
        out.append(
            AreaStatus(
                "Microsoft 365",
                rag,
                f"{len(m365.incidents)} service incident(s); {m365.mfa * 100:.0f}% of users have MFA; "
                f"Secure Score {(m365.secure_score or 0) * 100:.0f}%.",
                change(m365.mfa, prev.m365.mfa if prev else None),
            )
        )
    return tuple(out)


def _top_risks(
    availability: float,
    c: Contract,
    met: bool,
    used: float,
    incs: Sequence[Incident],
    backup: Backup,
    patch: Patch,
    m365: M365,
) -> list[Risk]:
    out = []
    if not met:
        out.append(
            Risk(
                "Availability",
                f"Availability {availability * 100:.2f}% is below the {c.availability_target:g}% target.",
                "Review the longest outages below and add redundancy where one device takes a site down.",
                "Approve a redundant uplink or gateway for the sites affected.",
            )
        )
    if backup.failed:
        out.append(
            Risk(
                "Backup",
                f"{backup.failed} backup run(s) failed this month.",
                "Investigate each failed job; confirm the next run succeeded.",
                "None if the next runs succeeded; otherwise approve storage or licence changes.",
            )
        )
    now = max((j.last_restore_test for j in backup.jobs), default=0)
    untested = [
        j for j in backup.jobs if j.last_restore_test == 0 or now - j.last_restore_test > RESTORE_TEST_MAX_AGE
    ]
    if untested:
        out.append(
            Risk(
                "Backup",
                f"{len(untested)} backup job(s) have no restore test in the last 90 days.",
                "Schedule a restore test for each; a backup never restored is a hope, not a plan.",
                "Agree a quarterly restore-test window.",
            )
        )
    if patch.overdue_critical:
        out.append(
            Risk(
                "Patching",
                f"{len(patch.overdue_critical)} device(s) miss a critical update past the deadline.",
                "Patch them in the next maintenance window.",
                "Approve an out-of-hours reboot if the window is too far away.",
            )
        )
    if patch.not_reporting:
        out.append(
            Risk(
                "Patching",
                f"{len(patch.not_reporting)} device(s) stopped reporting to the patch system.",
                "Find each device; reinstall the agent or retire it.",
                "Confirm whether the devices are still in use.",
            )
        )
    if m365.mfa is not None and m365.mfa < 1:
        out.append(
            Risk(
                "Microsoft 365",
                f"{(1 - m365.mfa) * 100:.0f}% of users have no multi-factor authentication.",
                "Enforce MFA registration with a conditional-access policy.",
                "Approve enforcing MFA for all users.",
            )
        )
    return out[:5]
