"""A seeded past for the demo estate: outages, blips, a site outage, a maintenance-window
reboot, a monitoring gap, failed backups, a Microsoft 365 incident and patch drift.

The same seed and end give the same history, byte for byte.

How the past meets the live demo, which starts where the history ends (``mspwatch demo``):

- Every outage, blip, gap, incident and flapping episode drawn here ends before the history's
  last day, so none is still running when the live part starts and none ends twice.
- The problems the live simulators have at their start (:data:`LIVE_PROBLEMS`, times from
  their scenarios, which are relative to the start) begin in the history and run to its end,
  with their alert firing as it would have: ``ALERTS_FOR_STATE`` carries each alert's start,
  so the demo's Prometheus restores it at start (``--rules.alert.for-outage-tolerance``, 1 h)
  and it fires at once instead of waiting its ``for:`` again. Their labels are the live
  series' labels exactly; the demo's check proves it by the alert firing within minutes.
- Patch devices are the NinjaOne scenario's own (names, organisations), so the patch series
  before and after the start are one series.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from mspwatch.inventory import Customer, Inventory, PatchSource, load_inventory, maintenance_spans
from mspwatch.inventory.localtime import weekly_spans
from mspwatch.simulators.history.model import (
    INVENTORY_INSTANCE,
    MINUTE,
    AlertEpisode,
    BackupJob,
    Device,
    Gap,
    History,
    InventoryState,
    Outage,
    PatchDevice,
    Tenant,
)
from mspwatch.simulators.history.series import DAY

if TYPE_CHECKING:
    from mspwatch.simulators.history.live import LiveDevice

ESTATE = Path(__file__).resolve().parent.parent / "estate" / "inventory.yml"
NINJA_SCENARIO = Path(__file__).resolve().parent.parent / "ninjaone" / "scenarios" / "estate.yaml"
GATEWAY_ROLES = ("core", "router", "uplink", "firewall")
HOUR = 3600


def _problem(
    alertname: str, for_seconds: int, since: int, **labels: str
) -> tuple[str, int, int, tuple[tuple[str, str], ...]]:
    return alertname, for_seconds, since, tuple(sorted({**labels, "severity": "warning"}.items()))


# What the live simulators start with, as (alert, its ``for:``, since when relative to the
# history's end, the live alert's labels). Each source: its scenario file.
LIVE_PROBLEMS = (
    # simulators/veeam/scenarios/estate-acme-vbr.yaml: Imaging archive failed at -30h (for 24 min) and -6h.
    _problem(
        "BackupJobFailed",
        HOUR,
        -30 * HOUR + 24 * MINUTE,
        customer="acme-dental",
        instance="acme-vbr",
        job="backup",
        job_name="Imaging archive",
        result="failed",
        source_kind="veeam",
    ),
    # simulators/graph/scenarios/estate.yaml: acme's Exchange Online degraded since -1h14m.
    _problem(
        "M365ServiceDegraded",
        10 * MINUTE,
        -74 * MINUTE,
        customer="acme-dental",
        instance="acme",
        job="m365",
        service="Exchange Online",
        tenant="acme",
    ),
    # simulators/ninjaone/scenarios/estate.yaml: acme-dc1's critical update (detected -40d) overdue.
    _problem(
        "PatchCriticalUpdateOverdue",
        HOUR,
        -12 * 86400,
        customer="acme-dental",
        device="acme-dc1",
        instance="acme-ninja",
        job="patch",
        reason="missing_critical",
        source_kind="ninjaone",
    ),
)


def live_problems(inv: Inventory, end: int) -> list[AlertEpisode]:
    """:data:`LIVE_PROBLEMS` of the estate's customers, as episodes running to ``end``."""
    customers = {c.name for c in inv.customers}
    out = []
    for alertname, for_seconds, since, labels in LIVE_PROBLEMS:
        if dict(labels)["customer"] in customers:
            out.append(AlertEpisode(alertname, "warning", labels, end + since, end, for_seconds))
    return out


def ninja_devices(organization: str, scenario: Path = NINJA_SCENARIO) -> list[str]:
    """The device names of a NinjaOne scenario's organisation (``count`` expands to name-001...)."""
    raw = yaml.safe_load(scenario.read_text(encoding="utf-8"))
    names: list[str] = []
    for org in raw.get("organizations", []):
        if org.get("name") == organization:
            for d in org.get("devices", []):
                count = d.get("count")
                names += [f"{d['name']}-{n:03d}" for n in range(1, count + 1)] if count else [d["name"]]
    return names


def estate_devices(inv: Inventory, live: Mapping[str, LiveDevice] | None = None) -> tuple[Device, ...]:
    """The inventory's devices; with ``live`` (address -> the demo agent's values) their
    uptimes and byte counters are the live ones."""
    live = live or {}
    out = []
    for c in inv.customers:
        for s in c.sites:
            for d in s.devices:
                agent = live.get(d.address)
                counters = agent.counters if agent is not None else ()
                uptime = agent.uptime if agent is not None else None
                out.append(Device(c.name, s.name, d.name, d.role, d.address, uptime, counters))
    return tuple(out)


def inventory_states(customers: Iterable[Customer], start: int, end: int) -> tuple[InventoryState, ...]:
    """Each customer's contract hours and maintenance over ``[start, end)``, in UTC, from the
    inventory's own DST-correct window logic (what the inventory exporter serves)."""
    lo, hi = dt.datetime.fromtimestamp(start, dt.UTC), dt.datetime.fromtimestamp(end, dt.UTC)

    def utc(spans: list[tuple[dt.datetime, dt.datetime]]) -> tuple[tuple[int, int], ...]:
        return tuple((int(a.timestamp()), int(b.timestamp())) for a, b in spans)

    out = []
    for c in customers:
        bh = c.contract.business_hours
        hours = None
        if c.contract.hours == "business" and bh is not None:
            hours = utc(weekly_spans(bh.days, bh.start, bh.end, c.zone, lo, hi))
        windows = tuple((s.name, a, b) for s in c.sites for a, b in utc(maintenance_spans(c, s.name, lo, hi)))
        out.append(InventoryState(c.name, hours, windows))
    return tuple(out)


def estate_history(
    inv: Inventory,
    end: int,
    days: int = 35,
    seed: int = 1,
    live: Mapping[str, LiveDevice] | None = None,
    inventory_instance: str = INVENTORY_INSTANCE,
) -> History:
    """``days`` of history ending at ``end`` (rounded down to a minute); ``live``: the demo
    agents' counters by address (:func:`mspwatch.simulators.history.live.live_devices`);
    ``inventory_instance``: the live scrape's ``instance`` of job ``inventory``."""
    rng = random.Random(seed)
    end -= end % MINUTE
    start = end - days * DAY
    devices = estate_devices(inv, live)

    def at(day: float, hour: float) -> int:
        t = start - start % DAY + int(day * DAY + hour * 3600)
        return t - t % MINUTE

    def day(lo: int, hi: int) -> int:
        """A random day in [lo, hi], squeezed into a short history (the demo's tests write 2
        or 3 days); with a week or more the same draws as always."""
        hi = max(0, min(hi, days - 2))
        return rng.randint(min(lo, hi), hi)

    outages: list[Outage] = []
    alerts: list[AlertEpisode] = []
    for c in inv.customers:
        mine = [d for d in devices if d.customer == c.name]
        for _ in range(3):  # real outages, 8-95 minutes
            d = rng.choice(mine)
            s = at(day(1, days - 2), rng.uniform(0, 23))
            outages.append(Outage(d.customer, d.site, d.device, s, s + MINUTE * rng.randint(8, 95)))
        for _ in range(4):  # blips of 1-2 minutes
            d = rng.choice(mine)
            s = at(day(1, days - 2), rng.uniform(0, 23))
            outages.append(Outage(d.customer, d.site, d.device, s, s + MINUTE * rng.randint(1, 2)))
        # One site outage: the gateway goes and takes everything behind it.
        site = c.sites[-1]
        s = at(day(3, days - 3), 10.25)
        for sd in site.devices:
            outages.append(Outage(c.name, site.name, sd.name, s, s + 70 * MINUTE))
        # A reboot in the Sunday-night patching window (02:00-04:00 local).
        core = next(d for d in mine if d.role in GATEWAY_ROLES)
        # Day 0 of the Unix epoch was a Thursday, so (days since epoch + 3) % 7 == 6 is Sunday.
        sundays = [day for day in range(1, days) if (start // DAY + day + 3) % 7 == 6]
        if sundays:
            s = at(sundays[len(sundays) // 2], 2.5)
            outages.append(Outage(core.customer, core.site, core.device, s, s + 25 * MINUTE))
        # A flapping interface: the recurring problem of the month.
        flappy = rng.choice(mine)
        labels = tuple(
            sorted(
                {
                    "customer": c.name,
                    "site": flappy.site,
                    "device": flappy.device,
                    "interface": "uplink",
                }.items()
            )
        )
        for _ in range(6):
            s = at(day(1, days - 2), rng.uniform(6, 20))
            alerts.append(
                AlertEpisode("InterfaceErrorsHigh", "warning", labels, s, s + MINUTE * rng.randint(12, 50))
            )
    # Prometheus itself was down for 47 minutes: no data for anyone.
    g = at(days // 2, 14.0)
    gaps = (Gap(None, g, g + 47 * MINUTE),)

    jobs: list[BackupJob] = []
    tenants: list[Tenant] = []
    patch: list[PatchDevice] = []
    for i, c in enumerate(inv.customers):
        for src in c.backup_sources:
            for j, job in enumerate(("Servers", "File shares")):
                failed = tuple(sorted(rng.sample(range(1, max(days, 3)), 2 if j == 0 else 1)))
                jobs.append(
                    BackupJob(
                        c.name,
                        src.name,
                        src.kind,
                        f"{job}",
                        21 + j,
                        26 * 3600,
                        failed,
                        days - 20 if j == 0 else None,
                    )
                )
        for t in c.m365_tenants:
            s = at(day(2, days - 2), 9.0)
            tenants.append(
                Tenant(
                    c.name,
                    t.name,
                    40 + 25 * i,
                    3,
                    30 + 20 * i,
                    52.0 + 6 * i,
                    120.0,
                    50 + 30 * i,
                    (("Exchange Online", s, s + 150 * MINUTE), *_live_incidents(c.name, t.name, end)),
                )
            )
        live_devices = {dict(labels).get("device") for _, _, _, labels in LIVE_PROBLEMS}
        patch_sources: list[PatchSource | None] = [*c.patch_sources] or [None]
        for psrc in patch_sources:
            organization = getattr(psrc, "organization", None)
            scenario = ninja_devices(organization) if organization else []
            servers = [d.device for d in devices if d.customer == c.name and d.role == "server"]
            names = scenario or servers + [f"ws-{n:02d}" for n in range(1, 9)]
            for k, name in enumerate(names):
                if scenario:
                    # The live scenario's overdue update and silent laptop (last contact -12d)
                    # begin here; the other drift is over by the live start.
                    missing = (days - 12, days) if name in live_devices else ((8, 15) if k == 3 else None)
                    silent = days - 12 if name == "acme-lt-surgeon" else None
                else:
                    missing = (days - 12, days) if k == 0 else ((8, 15) if k == 3 else None)
                    silent = days - 9 if k == 5 else None
                patch.append(
                    PatchDevice(
                        c.name,
                        psrc.name if psrc is not None else f"{c.name}-rmm",
                        name,
                        missing_critical_days=missing,
                        silent_from_day=silent,
                        av_off_days=(20, 24) if k == 6 else None,
                        source_kind=psrc.kind if psrc is not None else "",
                    )
                )
    return History(
        start=start,
        end=end,
        devices=devices,
        outages=tuple(sorted(outages, key=lambda o: (o.start, o.customer, o.device))),
        gaps=gaps,
        alerts=(*alerts, *live_problems(inv, end)),
        backup_jobs=tuple(jobs),
        tenants=tuple(tenants),
        patch_devices=tuple(patch),
        inventory=inventory_states(inv.customers, start, end),
        inventory_instance=inventory_instance,
    )


def load_estate(path: Path = ESTATE) -> Inventory:
    return load_inventory(path)


def _live_incidents(customer: str, tenant: str, end: int) -> list[tuple[str, int, int]]:
    """The degraded services of :data:`LIVE_PROBLEMS` for one tenant, as (service, start, end)."""
    out = []
    for alertname, _, since, labels in LIVE_PROBLEMS:
        lab = dict(labels)
        if alertname == "M365ServiceDegraded" and (lab["customer"], lab["tenant"]) == (customer, tenant):
            out.append((lab["service"], end + since, end))
    return out
