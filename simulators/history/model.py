"""What a generated history holds: the estate, the events, and the time span.

Times are Unix seconds (UTC). Intervals are half-open ``[start, end)`` and lie on minute
boundaries, so "a 45-minute outage" is exactly 45 one-minute samples at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

MINUTE = 60
# Samples sit half-way through each minute (as a scrape would, never exactly on the edge),
# so a query window ``(t-60, t]`` (VictoriaMetrics) and ``[t-60, t]`` (Prometheus) hold the
# same single sample and both backends give the same minute-level figures.
SAMPLE_OFFSET = 30
# Slow series (backups, Microsoft 365, patching) are sampled every 5 minutes.
SLOW_STEP = 300


@dataclass(frozen=True)
class Counter:
    """One live value: ``initial + rate * (t - since)``, wrapping at ``modulus``."""

    name: str
    labels: tuple[tuple[str, str], ...]
    initial: float
    rate: float  # per second
    since: float
    modulus: float

    def at(self, times: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Whole values, as the agent serves them.

        >>> Counter("x", (), 500.0, 2.5, 1000.0, 2.0**64).at(np.array([1000, 1010])).tolist()
        [500.0, 525.0]
        """
        values: npt.NDArray[np.float64] = np.floor(
            np.mod(self.initial + self.rate * (times - self.since), self.modulus)
        )
        return values


@dataclass(frozen=True)
class Device:
    customer: str
    site: str
    device: str
    role: str
    address: str  # "host:port" of the SNMP agent
    # The live agent's uptime and byte counters (simulators/history/live.py); without them
    # the history makes up one "uplink" interface and no uptime.
    uptime: Counter | None = None
    counters: tuple[Counter, ...] = ()

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]


@dataclass(frozen=True)
class Outage:
    """The device answers neither ping nor SNMP (what ``DeviceUnreachable`` means)."""

    customer: str
    site: str
    device: str
    start: int
    end: int


@dataclass(frozen=True)
class Gap:
    """No samples at all for a customer (``None``: every customer), e.g. Prometheus was down."""

    customer: str | None
    start: int
    end: int


@dataclass(frozen=True)
class AlertEpisode:
    """One alert that went pending at ``start`` and resolved at ``end``."""

    alertname: str
    severity: str
    labels: tuple[tuple[str, str], ...]  # sorted; include customer (and site/device if any)
    start: int
    end: int
    for_seconds: int = 300  # pending before firing


@dataclass(frozen=True)
class BackupJob:
    customer: str
    source: str
    source_kind: str
    job_name: str
    hour: int  # daily run at this UTC hour
    rpo_seconds: int
    failed_days: tuple[int, ...] = ()  # day numbers (days since the history's start) that failed
    restore_test_day: int | None = None  # day of the last restore test, if any


@dataclass(frozen=True)
class Tenant:
    customer: str
    tenant: str
    users: int
    admins: int
    mfa_start: int  # users registered for MFA on day 0; grows by one every 4 days
    secure_score_start: float
    secure_score_max: float
    licences: int
    incidents: tuple[tuple[str, int, int], ...] = ()  # (service, start, end) degraded


@dataclass(frozen=True)
class PatchDevice:
    customer: str
    source: str
    device: str
    missing_critical_days: tuple[int, int] | None = None  # [first, last) days with a critical missing
    silent_from_day: int | None = None  # stops reporting from this day
    av_off_days: tuple[int, int] | None = None
    source_kind: str = ""  # the patch source's kind (a label of the live series); "" for none


INVENTORY_INSTANCE = "inventory-exporter:9821"  # compose/prometheus.yml's job inventory


@dataclass(frozen=True)
class InventoryState:
    """What the inventory exporter serves for one customer over the history
    (docs/inventory-metrics.md): when its contract measures and its sites' maintenance."""

    customer: str
    contract_spans: tuple[tuple[int, int], ...] | None  # business hours in UTC; None: 24x7
    maintenance: tuple[tuple[str, int, int], ...] = ()  # (site, start, end) open windows


@dataclass(frozen=True)
class History:
    start: int  # first minute (inclusive), a minute boundary
    end: int  # last minute (exclusive)
    devices: tuple[Device, ...]
    outages: tuple[Outage, ...] = ()
    gaps: tuple[Gap, ...] = ()
    alerts: tuple[AlertEpisode, ...] = ()
    backup_jobs: tuple[BackupJob, ...] = ()
    tenants: tuple[Tenant, ...] = ()
    patch_devices: tuple[PatchDevice, ...] = field(default=())
    interfaces: bool = True  # interface counters (off in the report tests: they need none)
    # The inventory exporter's series, for every customer of ``devices`` (24x7 and no
    # maintenance for one without a state here).
    inventory: tuple[InventoryState, ...] = ()
    # Their ``instance``: the address the live scrape of job ``inventory`` gives them, so the
    # past and the live part are one series (``mspwatch demo`` passes its own).
    inventory_instance: str = INVENTORY_INSTANCE
