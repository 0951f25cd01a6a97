"""The ground-truth month: October 2026 for two customers of the demo estate, with events of
known length. October 2026 in Europe/London has 44,700 minutes (BST ends on the 25th).

Every expected figure in the tests is derived by hand in the comments below.
"""

from __future__ import annotations

import datetime as dt

from mspwatch.inventory import Customer
from mspwatch.reports.build import CustomerSpec
from mspwatch.simulators.history.demo import estate_devices, inventory_states, load_estate
from mspwatch.simulators.history.model import (
    AlertEpisode,
    BackupJob,
    Gap,
    History,
    Outage,
    PatchDevice,
    Tenant,
)


def utc(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


START = utc("2026-09-28T00:00")  # day 0 of the history
END = utc("2026-11-03T00:00")
MONTH = "2026-10"


def _customer(name: str, **fields: object) -> Customer:
    """The estate's customer with the ground truth's own contract and windows."""
    base = next(c for c in load_estate().customers if c.name == name)
    return Customer.model_validate(
        {
            "name": name,
            "display_name": base.display_name,
            "sites": [s.model_dump() for s in base.sites],
            **fields,
        }
    )


ACME_CUSTOMER = _customer(
    "acme-dental",
    timezone="Europe/London",
    contract={"availability_target": 99.9, "hours": "24x7", "blip_threshold": "2m"},
    maintenance=[
        {
            "name": "sunday-patching",
            "weekly": {"days": ["sun"], "start": "02:00", "end": "04:00"},
            "sites": ["hq"],
        }
    ],
)
BOLT_CUSTOMER = _customer(
    "bolt-logistics",
    timezone="Europe/London",
    contract={
        "availability_target": 99.5,
        "hours": "business",
        "business_hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"},
        "blip_threshold": "5m",
    },
)
ACME = CustomerSpec.from_inventory(ACME_CUSTOMER)
BOLT = CustomerSpec.from_inventory(BOLT_CUSTOMER)


def history() -> History:
    inv = load_estate()
    devices = estate_devices(inv)
    core = tuple(
        sorted({"customer": "acme-dental", "site": "hq", "device": "core-sw1", "interface": "uplink"}.items())
    )
    return History(
        start=START,
        end=END,
        devices=devices,
        interfaces=False,
        outages=(
            # acme: srv-pms 45 min.
            Outage("acme-dental", "hq", "srv-pms", utc("2026-10-06T08:00"), utc("2026-10-06T08:45")),
            # acme: York's router and the switch behind it, 90 min each: one incident.
            Outage("acme-dental", "branch-york", "rtr1", utc("2026-10-14T13:10"), utc("2026-10-14T14:40")),
            Outage("acme-dental", "branch-york", "sw1", utc("2026-10-14T13:10"), utc("2026-10-14T14:40")),
            # acme: a 1-minute blip (threshold 2 min): ignored, counted.
            Outage("acme-dental", "hq", "fw1", utc("2026-10-20T10:00"), utc("2026-10-20T10:01")),
            # acme: core switch rebooted inside the window of the DST day (02:00-04:00 GMT).
            Outage("acme-dental", "hq", "core-sw1", utc("2026-10-25T02:10"), utc("2026-10-25T03:40")),
            # acme: UPS down 02:30-03:30Z on the 18th; the window is 01:00-03:00Z (BST), so
            # 30 minutes are maintenance and 30 count (a UTC-naive window would excuse all 60).
            Outage("acme-dental", "hq", "ups1", utc("2026-10-18T02:30"), utc("2026-10-18T03:30")),
            # bolt: Wed 17:30-19:00 BST: 90 min, 30 of them in business hours.
            Outage("bolt-logistics", "depot", "srv-dc1", utc("2026-10-07T16:30"), utc("2026-10-07T18:00")),
            # bolt: Saturday, 120 min, none in business hours.
            Outage("bolt-logistics", "datacentre", "nas1", utc("2026-10-17T10:00"), utc("2026-10-17T12:00")),
            # bolt: Mon after DST 07:30-08:30 GMT: 30 business minutes (60 with a stale BST offset).
            Outage("bolt-logistics", "datacentre", "edge1", utc("2026-10-26T07:30"), utc("2026-10-26T08:30")),
            # bolt: a 3-minute blip (threshold 5 min).
            Outage("bolt-logistics", "datacentre", "pdu-a", utc("2026-10-13T10:00"), utc("2026-10-13T10:03")),
        ),
        # acme: 47 minutes with no samples at all.
        gaps=(Gap("acme-dental", utc("2026-10-10T12:00"), utc("2026-10-10T12:47")),),
        alerts=tuple(
            AlertEpisode(
                "InterfaceErrorsHigh", "warning", core, utc(f"2026-10-{d}T09:00"), utc(f"2026-10-{d}T09:30")
            )
            for d in ("03", "15", "27")
        ),
        backup_jobs=(
            # Fails on days 11 and 12 (Oct 9 and 10): out of RPO Oct 9 23:00Z - Oct 11 21:00Z.
            BackupJob("acme-dental", "acme-vbr", "veeam", "PMS", 21, 26 * 3600, (11, 12), 20),
            BackupJob("bolt-logistics", "bolt-vbr", "veeam", "WMS", 22, 26 * 3600),
        ),
        tenants=(
            Tenant(
                "acme-dental",
                "acme",
                40,
                3,
                30,
                50.0,
                100.0,
                45,
                (("Exchange Online", utc("2026-10-12T09:00"), utc("2026-10-12T11:30")),),
            ),
        ),
        patch_devices=(
            PatchDevice("acme-dental", "acme-rmm", "srv-pms"),
            PatchDevice("acme-dental", "acme-rmm", "ws-01", missing_critical_days=(10, 40)),
            PatchDevice("acme-dental", "acme-rmm", "ws-02", silent_from_day=15),
            PatchDevice("acme-dental", "acme-rmm", "ws-03", av_off_days=(20, 25)),
        ),
        # The inventory exporter's series for the SLO rules (tests/reports/test_slo_month.py).
        inventory=inventory_states((ACME_CUSTOMER, BOLT_CUSTOMER), START, END),
    )


# The recorded series as it looks when the availability rules reach a customer only after
# the month began: Acme's devices from 15 October 00:00Z on, every minute up. Read under its
# own name (``recorded=LATE_RECORDED``), so the other tests see the real recorded series.
LATE_RECORDED = "mspwatch_late:reachable:max"
LATE_FROM = utc("2026-10-15T00:00")


def late_recorded_openmetrics() -> str:
    lines = []
    for d in ACME.devices or ():
        labels = f'customer="{ACME.name}",site="{d.site}",device="{d.device}"'
        lines.extend(f"{LATE_RECORDED}{{{labels}}} 1.0 {t}\n" for t in range(LATE_FROM, END, 60))
    return "".join(lines) + "# EOF\n"
