"""A seeded past for the demo estate: outages, blips, a site outage, a maintenance-window
reboot, a monitoring gap, failed backups, a Microsoft 365 incident and patch drift.

The same seed and end give the same history, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from pathlib import Path

from mspwatch.inventory import Customer, Inventory, load_inventory, maintenance_spans
from mspwatch.inventory.localtime import weekly_spans
from mspwatch.simulators.history.model import (
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

ESTATE = Path(__file__).resolve().parent.parent / "estate" / "inventory.yml"
GATEWAY_ROLES = ("core", "router", "uplink", "firewall")


def estate_devices(inv: Inventory) -> tuple[Device, ...]:
    return tuple(
        Device(c.name, s.name, d.name, d.role, d.address)
        for c in inv.customers
        for s in c.sites
        for d in s.devices
    )


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


def estate_history(inv: Inventory, end: int, days: int = 35, seed: int = 1) -> History:
    """``days`` of history ending at ``end`` (rounded down to a minute)."""
    rng = random.Random(seed)
    end -= end % MINUTE
    start = end - days * DAY
    devices = estate_devices(inv)

    def at(day: float, hour: float) -> int:
        t = start - start % DAY + int(day * DAY + hour * 3600)
        return t - t % MINUTE

    outages: list[Outage] = []
    alerts: list[AlertEpisode] = []
    for c in inv.customers:
        mine = [d for d in devices if d.customer == c.name]
        for _ in range(3):  # real outages, 8-95 minutes
            d = rng.choice(mine)
            s = at(rng.randint(1, days - 2), rng.uniform(0, 23))
            outages.append(Outage(d.customer, d.site, d.device, s, s + MINUTE * rng.randint(8, 95)))
        for _ in range(4):  # blips of 1-2 minutes
            d = rng.choice(mine)
            s = at(rng.randint(1, days - 2), rng.uniform(0, 23))
            outages.append(Outage(d.customer, d.site, d.device, s, s + MINUTE * rng.randint(1, 2)))
        # One site outage: the gateway goes and takes everything behind it.
        site = c.sites[-1]
        s = at(rng.randint(3, days - 3), 10.25)
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
            s = at(rng.randint(1, days - 2), rng.uniform(6, 20))
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
                failed = tuple(sorted(rng.sample(range(1, days), 2 if j == 0 else 1)))
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
            s = at(rng.randint(2, days - 2), 9.0)
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
                    (("Exchange Online", s, s + 150 * MINUTE),),
                )
            )
        servers = [d for d in devices if d.customer == c.name and d.role == "server"]
        names = [d.device for d in servers] + [f"ws-{n:02d}" for n in range(1, 9)]
        for k, name in enumerate(names):
            patch.append(
                PatchDevice(
                    c.name,
                    f"{c.name}-rmm",
                    name,
                    missing_critical_days=(days - 12, days) if k == 0 else ((8, 15) if k == 3 else None),
                    silent_from_day=days - 9 if k == 5 else None,
                    av_off_days=(20, 24) if k == 6 else None,
                )
            )
    return History(
        start=start,
        end=end,
        devices=devices,
        outages=tuple(sorted(outages, key=lambda o: (o.start, o.customer, o.device))),
        gaps=gaps,
        alerts=tuple(alerts),
        backup_jobs=tuple(jobs),
        tenants=tuple(tenants),
        patch_devices=tuple(patch),
        inventory=inventory_states(inv.customers, start, end),
    )


def load_estate(path: Path = ESTATE) -> Inventory:
    return load_inventory(path)
