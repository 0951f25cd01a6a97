"""Turn a :class:`History` into series: per series, sample times and values for a time slice.

The names are the exporters' (docs/*-metrics.md; the up metrics as unified to
``<ns>_up``), labelled as Prometheus would label them from the inventory's file_sd targets,
plus ``ALERTS`` / ``ALERTS_FOR_STATE`` as Prometheus's rule manager writes them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from mspwatch.simulators.history.model import (
    MINUTE,
    SAMPLE_OFFSET,
    SLOW_STEP,
    AlertEpisode,
    BackupJob,
    Device,
    History,
    InventoryState,
    PatchDevice,
    Tenant,
)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
DAY = 86400

# The patch exporter's names (exporters/patch/mapping.py): compliant 0/1, updates past the
# policy deadline by classification (security/other), last contact, antivirus enabled.
PATCH_COMPLIANT = "patch_device_compliant"
PATCH_OVERDUE = "patch_device_overdue_updates"
PATCH_LAST_CONTACT = "patch_device_last_contact_timestamp_seconds"
PATCH_AV_ENABLED = "patch_device_av_enabled"

M365_SERVICES = ("Exchange Online", "Microsoft Teams", "SharePoint Online")
BACKUP_RESULTS = ("success", "warning", "failed", "none", "unknown")


@dataclass(frozen=True)
class Series:
    name: str
    labels: tuple[tuple[str, str], ...]  # sorted by name
    times: Ints  # Unix seconds
    values: Floats


def _labels(**kv: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kv.items()))


def _in_any(times: Ints, spans: list[tuple[int, int]]) -> npt.NDArray[np.bool_]:
    mask = np.zeros(times.shape, dtype=bool)
    for start, end in spans:
        mask |= (times >= start) & (times < end)
    return mask


class _Generator:
    """Computes each series over the whole span once; slices are views of it."""

    def __init__(self, history: History) -> None:
        self.h = history
        self.minutes: Ints = np.arange(history.start, history.end, MINUTE, dtype=np.int64) + SAMPLE_OFFSET
        self.slow: Ints = np.arange(history.start, history.end, SLOW_STEP, dtype=np.int64) + SAMPLE_OFFSET
        self.day0 = history.start - history.start % DAY

    def gap_mask(self, customer: str, times: Ints) -> npt.NDArray[np.bool_]:
        spans = [(g.start, g.end) for g in self.h.gaps if g.customer in (None, customer)]
        return _in_any(times, spans)

    @cached_property
    def all_series(self) -> list[Series]:
        out: list[Series] = []
        for dev in self.h.devices:
            out.extend(self._device(dev))
        for ep in self._alert_episodes:
            out.extend(self._alert(ep))
        for job in self.h.backup_jobs:
            out.extend(self._backup(job))
        for tenant in self.h.tenants:
            out.extend(self._tenant(tenant))
        for pdev in self.h.patch_devices:
            out.extend(self._patch(pdev))
        out.extend(self._inventory())
        return _merge(out)

    def _keep(self, customer: str, times: Ints, values: Floats) -> tuple[Ints, Floats]:
        keep = ~self.gap_mask(customer, times)
        return times[keep], values[keep]

    # --- devices -------------------------------------------------------------------------
    def _device(self, dev: Device) -> Iterator[Series]:
        t = self.minutes
        spans = [
            (o.start, o.end)
            for o in self.h.outages
            if (o.customer, o.site, o.device) == (dev.customer, dev.site, dev.device)
        ]
        down = _in_any(t, spans)
        up: Floats = np.where(down, 0.0, 1.0)
        base = {"customer": dev.customer, "site": dev.site, "device": dev.device, "role": dev.role}
        tt, vv = self._keep(dev.customer, t, up)
        yield Series("probe_success", _labels(job="icmp", instance=dev.host, **base), tt, vv)
        yield Series("snmp_up", _labels(job="snmp", instance=dev.address, **base), tt, vv)
        if not self.h.interfaces:
            return
        if dev.counters or dev.uptime is not None:
            # The live agent's own values, sampled while it answers (a down agent serves none):
            # uptimes every minute, byte counters every 5 minutes (hundreds of them; graphs
            # over days rate() them over windows of 10 minutes and more).
            answered = t[~down]
            slow = self.slow[~_in_any(self.slow, spans)]
            for c in (dev.uptime,) if dev.uptime is not None else ():
                yield Series(
                    c.name,
                    _labels(job="snmp", instance=dev.address, **base),
                    *self._keep(dev.customer, answered, c.at(answered)),
                )
            for c in dev.counters:
                labels = _labels(job="snmp", instance=dev.address, **dict(c.labels), **base)
                yield Series(c.name, labels, *self._keep(dev.customer, slow, c.at(slow)))
            return
        # Interface counters: a daily traffic curve, flat while the device is down.
        seed = sum(map(ord, dev.customer + dev.device))
        hours = (t % DAY) / 3600.0
        rate = (2e5 + seed * 1e3) * (1.2 + np.sin((hours - 9.0) / 24.0 * 2 * math.pi))
        for direction, share in (("receive", 1.0), ("transmit", 0.35)):
            counter = np.cumsum(np.where(down, 0.0, np.round(rate * share * MINUTE)))
            tt, vv = self._keep(dev.customer, t, counter)
            labels = _labels(job="snmp", instance=dev.address, if_index="1", interface="uplink", **base)
            yield Series(f"snmp_interface_{direction}_bytes_total", labels, tt, vv)

    # --- alerts --------------------------------------------------------------------------
    @cached_property
    def _alert_episodes(self) -> list[AlertEpisode]:
        """The scenario's alerts plus ``DeviceUnreachable`` for every outage."""
        by_key = {(d.customer, d.site, d.device): d for d in self.h.devices}
        episodes = list(self.h.alerts)
        for o in self.h.outages:
            dev = by_key[(o.customer, o.site, o.device)]
            labels = _labels(
                customer=o.customer, site=o.site, device=o.device, role=dev.role, instance=dev.address
            )
            episodes.append(AlertEpisode("DeviceUnreachable", "critical", labels, o.start, o.end))
        return episodes

    def _alert(self, ep: AlertEpisode) -> Iterator[Series]:
        t = self.minutes
        customer = dict(ep.labels)["customer"]
        base = dict(ep.labels) | {"alertname": ep.alertname, "severity": ep.severity}
        active = (t >= ep.start) & (t < ep.end)
        fire_at = ep.start + ep.for_seconds
        for state, mask in (("pending", active & (t < fire_at)), ("firing", active & (t >= fire_at))):
            if mask.any():
                tt, vv = self._keep(customer, t[mask], np.ones(int(mask.sum())))
                yield Series("ALERTS", _labels(alertstate=state, **base), tt, vv)
        tt, vv = self._keep(customer, t[active], np.full(int(active.sum()), float(ep.start)))
        yield Series("ALERTS_FOR_STATE", _labels(**base), tt, vv)

    # --- backups -------------------------------------------------------------------------
    def _backup(self, job: BackupJob) -> Iterator[Series]:
        t = self.slow
        days = np.arange(-2, (self.h.end - self.day0) // DAY + 1)
        runs = self.day0 + days * DAY + job.hour * 3600
        ok = ~np.isin(days, job.failed_days)
        idx = np.searchsorted(runs, t, side="right") - 1  # the newest run at or before t
        last_run = runs[idx].astype(np.float64)
        ok_runs = runs[ok]
        last_ok = ok_runs[np.searchsorted(ok_runs, t, side="right") - 1].astype(np.float64)
        failed = ~ok[idx]
        base = {"job": "backup", "customer": job.customer, "source_kind": job.source_kind}
        lab = dict(base, instance=job.source, job_name=job.job_name)
        for result in BACKUP_RESULTS:
            if result == "failed":
                val = failed.astype(np.float64)
            elif result == "success":
                val = (~failed).astype(np.float64)
            else:
                val = np.zeros(t.shape)
            yield Series(
                "backup_job_last_result", _labels(result=result, **lab), *self._keep(job.customer, t, val)
            )
        within = ((t - last_ok) <= job.rpo_seconds).astype(np.float64)
        rpo = np.full(t.shape, float(job.rpo_seconds))
        if job.restore_test_day is None:
            restore = np.zeros(t.shape)
        else:
            when = self.day0 + job.restore_test_day * DAY + 12 * 3600
            restore = np.where(t >= when, float(when), 0.0)
        for name, val in (
            ("backup_job_last_run_timestamp_seconds", last_run),
            ("backup_job_last_success_timestamp_seconds", last_ok),
            ("backup_job_last_restore_point_timestamp_seconds", last_ok),
            ("backup_job_rpo_seconds", rpo),
            ("backup_job_within_rpo", within),
            ("backup_restore_test_last_timestamp_seconds", restore),
        ):
            yield Series(name, _labels(**lab), *self._keep(job.customer, t, val))
        up = np.ones(t.shape)
        yield Series("backup_up", _labels(instance=job.source, **base), *self._keep(job.customer, t, up))

    # --- Microsoft 365 -------------------------------------------------------------------
    def _tenant(self, ten: Tenant) -> Iterator[Series]:
        t = self.slow
        day = (t - self.h.start) // DAY
        lab = {"job": "m365", "customer": ten.customer, "tenant": ten.tenant, "instance": ten.tenant}

        def s(name: str, val: Floats, **extra: str) -> Series:
            return Series(name, _labels(**lab, **extra), *self._keep(ten.customer, t, val))

        yield s("m365_up", np.ones(t.shape))
        yield s("m365_secure_score_current", np.round(ten.secure_score_start + 0.5 * day, 1))
        yield s("m365_secure_score_max", np.full(t.shape, ten.secure_score_max))
        yield s("m365_users", np.full(t.shape, float(ten.users)), group="all")
        yield s("m365_users", np.full(t.shape, float(ten.admins)), group="admins")
        mfa = np.minimum(ten.users, ten.mfa_start + day // 4).astype(np.float64)
        yield s("m365_mfa_registered_users", mfa, group="all")
        admins_mfa = np.where(day < 20, ten.admins - 1, ten.admins).astype(np.float64)
        yield s("m365_mfa_registered_users", admins_mfa, group="admins")
        yield s("m365_license_consumed_units", np.full(t.shape, float(ten.users)), sku="SPE_E3")
        yield s(
            "m365_license_prepaid_units", np.full(t.shape, float(ten.licences)), sku="SPE_E3", state="enabled"
        )
        for service in M365_SERVICES:
            spans = [(a, b) for svc, a, b in ten.incidents if svc == service]
            yield s("m365_service_degraded", _in_any(t, spans).astype(np.float64), service=service)

    # --- patching ------------------------------------------------------------------------
    def _patch(self, pd: PatchDevice) -> Iterator[Series]:
        t = self.slow
        day = (t - self.h.start) // DAY
        lab = {"job": "patch", "customer": pd.customer, "instance": pd.source, "device": pd.device}
        if pd.source_kind:
            lab["source_kind"] = pd.source_kind
        missing = np.zeros(t.shape)
        if pd.missing_critical_days is not None:
            a, b = pd.missing_critical_days
            missing = ((day >= a) & (day < b)).astype(np.float64)
        av = np.ones(t.shape)
        if pd.av_off_days is not None:
            a, b = pd.av_off_days
            av = np.where((day >= a) & (day < b), 0.0, 1.0)
        contact = t.astype(np.float64) - 1800
        silent = np.zeros(t.shape, dtype=bool)
        if pd.silent_from_day is not None:
            silent = day >= pd.silent_from_day
            contact = np.where(silent, float(self.h.start + pd.silent_from_day * DAY), contact)
        compliant = ((missing == 0) & (av == 1) & ~silent).astype(np.float64)

        def s(name: str, val: Floats, **extra: str) -> Series:
            return Series(name, _labels(**lab, **extra), *self._keep(pd.customer, t, val))

        yield s(PATCH_COMPLIANT, compliant)
        yield s(PATCH_OVERDUE, missing, deadline="security")
        yield s(PATCH_OVERDUE, np.zeros(t.shape), deadline="other")
        yield s(PATCH_LAST_CONTACT, contact)
        yield s(PATCH_AV_ENABLED, av)

    # --- the inventory exporter ----------------------------------------------------------
    def _inventory(self) -> Iterator[Series]:
        """What ``mspwatch inventory-exporter`` serves, as the SLO rules read it.

        Written through monitoring gaps: the inventory is known even when nothing was
        scraped, so rules evaluated over the history count a gap as no data, as the report
        does. Device info changes only with the inventory: every 5 minutes is enough for a
        5-minute lookback; windows and contract hours every minute, for exact edges.
        """
        t = self.minutes
        base = {"job": "inventory", "instance": self.h.inventory_instance}
        states = {s.customer: s for s in self.h.inventory}
        sites: dict[str, list[str]] = {}
        for dev in self.h.devices:
            if dev.site not in sites.setdefault(dev.customer, []):
                sites[dev.customer].append(dev.site)
            labels = _labels(customer=dev.customer, site=dev.site, device=dev.device, role=dev.role, **base)
            yield Series("inventory_device_info", labels, self.slow, np.ones(self.slow.shape))
        for customer, names in sites.items():
            state = states.get(customer, InventoryState(customer, None))
            spans = state.contract_spans
            measuring = np.ones(t.shape) if spans is None else _in_any(t, list(spans)).astype(np.float64)
            labels = _labels(customer=customer, **base)
            yield Series("inventory_contract_measuring", labels, t, measuring)
            for site in names:
                windows = [(a, b) for s, a, b in state.maintenance if s == site]
                active = _in_any(t, windows).astype(np.float64)
                labels = _labels(customer=customer, site=site, **base)
                yield Series("inventory_maintenance_active", labels, t, active)


def _merge(series: list[Series]) -> list[Series]:
    """One series per name and labels, samples in time order (repeated alert episodes of the
    same labels are one ``ALERTS`` series; promtool rejects a sample older than the previous)."""
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[Series]] = {}
    for s in series:
        groups.setdefault((s.name, s.labels), []).append(s)
    out = []
    for (name, labels), parts in groups.items():
        if len(parts) == 1:
            out.append(parts[0])
            continue
        times = np.concatenate([p.times for p in parts])
        values = np.concatenate([p.values for p in parts])
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        keep = np.ones(times.shape, dtype=bool)  # empty when every episode lies before the start
        keep[1:] = times[1:] != times[:-1]
        out.append(Series(name, labels, times[keep], values[keep]))
    return out


def history_series(history: History) -> list[Series]:
    """Every series of the history over its whole span."""
    return _Generator(history).all_series
