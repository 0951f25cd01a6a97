"""Queries -> frames: what the report asks Prometheus, and the plain tables it gets back.

Cheap by design: one server-side aggregate per customer says which devices had any down or
missing minute in the month; only those devices are fetched minute by minute. A quiet device
costs no samples on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mspwatch.reports.availability import DOWN, NO_DATA, UP, States
from mspwatch.reports.contract import Month
from mspwatch.reports.query import Prometheus, QueryError, quote

# "Down" as the alerting means it (alertrules/snmp.yml DeviceUnreachable): neither ping nor
# SNMP answers. Each minute is judged on its last sample (last_over_time over the minute
# that ends at the evaluation time), so backfilled data without staleness markers and a
# crashed scrape both show their gaps minute for minute.
REACH = (
    "max by (customer, site, device) ("
    'last_over_time(probe_success{{job="icmp",{sel}}}[1m]) '
    'or last_over_time(snmp_up{{job="snmp",{sel}}}[1m]))'
)
# The patch exporter's names (exporters/patch/mapping.py).
PATCH_COMPLIANT = "patch_device_compliant"
PATCH_OVERDUE = "patch_device_overdue_updates"
PATCH_LAST_CONTACT = "patch_device_last_contact_timestamp_seconds"
PATCH_AV_ENABLED = "patch_device_av_enabled"


@dataclass(frozen=True)
class DeviceRef:
    site: str
    device: str
    role: str


def _sel(customer: str, extra: str = "") -> str:
    return f"customer={quote(customer)}" + (f",{extra}" if extra else "")


def discover_devices(prom: Prometheus, customer: str, month: Month) -> list[DeviceRef]:
    """Devices with any reachability sample in the month (when no inventory is given)."""
    secs = month.end - month.start
    found: dict[tuple[str, str], str] = {}
    for metric, job in (("probe_success", "icmp"), ("snmp_up", "snmp")):
        sel = f'job="{job}",{_sel(customer)}'
        expr = f"group by (site, device, role) (last_over_time({metric}{{{sel}}}[{secs}s]))"
        for s in prom.instant(expr, month.end):
            found.setdefault((s.label("site"), s.label("device")), s.label("role"))
    return [DeviceRef(site, dev, role) for (site, dev), role in sorted(found.items())]


def device_states(
    prom: Prometheus, customer: str, month: Month, devices: list[DeviceRef]
) -> dict[tuple[str, str], States]:
    """Per (site, device): the month minute by minute, UP / DOWN / NO_DATA.

    Two cheap questions first: which devices ever reported 0 on ping or SNMP (raw-sample
    ``min_over_time``, no per-minute evaluation), and per minute how many of the customer's
    devices had data (one series). A device that never reported 0 while every minute had
    either all devices or none is UP except in the customer-wide gaps: exact without
    fetching it. Only the others are fetched minute by minute.
    """
    n = month.minutes
    secs = month.end - month.start
    sel = _sel(customer)
    flagged: set[tuple[str, str]] = set()
    for metric, job in (("probe_success", "icmp"), ("snmp_up", "snmp")):
        expr = f'min by (site, device) (min_over_time({metric}{{job="{job}",{sel}}}[{secs}s])) == 0'
        flagged |= {(s.label("site"), s.label("device")) for s in prom.instant(expr, month.end)}
    present = np.zeros(n, dtype=np.int64)
    for r in prom.range(f"count({REACH.format(sel=sel)})", month.start + 60, month.end, 60):
        idx = (r.times - month.start) // 60 - 1
        ok = (idx >= 0) & (idx < n)
        present[idx[ok]] = r.values[ok].astype(np.int64)
    whole_gap = present == 0
    partial = bool(((present > 0) & (present < len(devices))).any())
    out: dict[tuple[str, str], States] = {}
    busy: list[DeviceRef] = []
    for d in devices:
        if partial or (d.site, d.device) in flagged:
            busy.append(d)
        else:
            out[(d.site, d.device)] = np.where(whole_gap, NO_DATA, UP).astype(np.int8)
    if busy:
        names = "|".join(sorted({d.device for d in busy}))
        detail = REACH.format(sel=_sel(customer, f"device=~{quote(names)}"))
        got = {
            (r.label("site"), r.label("device")): r
            for r in prom.range(detail, month.start + 60, month.end, 60)
        }
        for d in busy:
            states = np.full(n, NO_DATA, dtype=np.int8)
            series = got.get((d.site, d.device))
            if series is not None:
                idx = (series.times - month.start) // 60 - 1
                ok = (idx >= 0) & (idx < n)
                states[idx[ok]] = np.where(series.values[ok] > 0, UP, DOWN).astype(np.int8)
            out[(d.site, d.device)] = states
    return out


@dataclass(frozen=True)
class Episode:
    """A stretch of consecutive minutes in which a series was present (or 1)."""

    labels: dict[str, str]
    start: int
    end: int

    @property
    def minutes(self) -> int:
        return (self.end - self.start) // 60


def _episodes(prom: Prometheus, expr: str, month: Month, step: int) -> list[Episode]:
    out = []
    for r in prom.range(expr, month.start + step, month.end, step):
        present = r.values > 0
        times = r.times[present]
        if not len(times):
            continue
        breaks = np.flatnonzero(np.diff(times) > step)
        starts = np.concatenate([[0], breaks + 1])
        ends = np.concatenate([breaks, [len(times) - 1]])
        labels = dict(r.labels)
        for a, b in zip(starts, ends, strict=True):
            out.append(Episode(labels, int(times[a]) - step, int(times[b])))
    return sorted(out, key=lambda e: (e.start, sorted(e.labels.items())))


def firing_alerts(prom: Prometheus, customer: str, month: Month) -> list[Episode]:
    """Each firing episode of each alert of the customer (from ``ALERTS``)."""
    expr = f'last_over_time(ALERTS{{alertstate="firing",{_sel(customer)}}}[1m])'
    return _episodes(prom, expr, month, 60)


def m365_incidents(prom: Prometheus, customer: str, month: Month) -> list[Episode]:
    expr = f"last_over_time(m365_service_degraded{{{_sel(customer)}}}[5m]) == 1"
    return _episodes(prom, expr, month, 300)


def last_values(
    prom: Prometheus, metric: str, customer: str, at: int, extra: str = "", window: str = "1h"
) -> pd.DataFrame:
    """The last value of every series of ``metric`` at ``at``: one row per series."""
    rows = [
        dict(s.labels) | {"value": s.value}
        for s in prom.instant(f"last_over_time({metric}{{{_sel(customer, extra)}}}[{window}])", at)
    ]
    return pd.DataFrame(rows)


def over_month(
    prom: Prometheus, fn: str, metric: str, customer: str, month: Month, extra: str = ""
) -> pd.DataFrame:
    """``fn_over_time`` of a metric over the month, per series (aggregated on the server)."""
    secs = month.end - month.start
    rows = [
        dict(s.labels) | {"value": s.value}
        for s in prom.instant(f"{fn}_over_time({metric}{{{_sel(customer, extra)}}}[{secs}s])", month.end)
    ]
    return pd.DataFrame(rows)


def backup_runs(prom: Prometheus, customer: str, month: Month) -> pd.DataFrame:
    """One row per backup run that started in the month: source, job, start, result."""
    sel = _sel(customer)
    runs = prom.range(
        f"last_over_time(backup_job_last_run_timestamp_seconds{{{sel}}}[5m])",
        month.start + 300,
        month.end,
        300,
    )
    ok = {
        (r.label("instance"), r.label("job_name")): r
        for r in prom.range(
            f'last_over_time(backup_job_last_result{{{sel},result="success"}}[5m])',
            month.start + 300,
            month.end,
            300,
        )
    }
    rows = []
    for r in runs:
        key = (r.label("instance"), r.label("job_name"))
        res = ok.get(key)
        starts, first = np.unique(r.values, return_index=True)
        for start, i in zip(starts, first, strict=True):
            if not month.start <= start < month.end:
                continue
            success = res is not None and bool(res.values[np.searchsorted(res.times, r.times[i])] > 0)
            rows.append(
                {
                    "source": key[0],
                    "job": key[1],
                    "start": int(start),
                    "result": "success" if success else "failed",
                }
            )
    return pd.DataFrame(rows, columns=["source", "job", "start", "result"])


def daily(prom: Prometheus, expr: str, month: Month) -> list[tuple[int, float]]:
    """An aggregate sampled at the end of each local day (for trends)."""
    out: list[tuple[int, float]] = []
    for r in prom.range(expr, month.start + 86400, month.end, 86400):
        out.extend(zip(r.times.tolist(), r.values.tolist(), strict=True))
    return sorted(out)


def require_data(prom: Prometheus, customer: str, month: Month) -> None:
    secs = month.end - month.start
    sel = _sel(customer)
    expr = (
        f"count(last_over_time(probe_success{{{sel}}}[{secs}s]) or last_over_time(snmp_up{{{sel}}}[{secs}s]))"
    )
    if not prom.instant(expr, month.end):
        raise QueryError(f"Prometheus at {prom.url} has no data for customer {customer!r} in {month.label}")
