"""The view model: every figure the report prints, computed before any HTML exists.

Times are UTC seconds; the template shows them on the customer's clock. Percentages are
fractions (0.9979) and formatted by the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Brand:
    name: str = "mspwatch"
    colour: str = "#1f4e79"  # headings and the cover band; greyscale-safe (dark)
    logo: str | None = None  # file name of an SVG/PNG in the report assets dir


@dataclass(frozen=True)
class Availability:
    name: str  # device, site or customer
    counted: int
    up: int
    down: int
    no_data: int
    maintenance: int
    blips: int
    availability: float
    site: str = ""
    role: str = ""


@dataclass(frozen=True)
class Incident:
    start: int
    end: int
    minutes: int
    contract_minutes: int  # of which inside contract hours
    devices: tuple[str, ...]  # "site/device"


@dataclass(frozen=True)
class MaintenanceRow:
    name: str
    start: int
    end: int
    minutes: int
    sites: str


@dataclass(frozen=True)
class Recurring:
    alertname: str
    count: int
    minutes: int


@dataclass(frozen=True)
class BackupJobRow:
    source: str
    job: str
    runs: int
    failed: int
    rpo_compliance: float  # share of the month within RPO
    last_restore_test: int  # 0: never


@dataclass(frozen=True)
class Backup:
    jobs: tuple[BackupJobRow, ...]
    runs: int
    failed: int
    success_rate: float | None
    rpo_compliance: float | None
    failures: tuple[tuple[int, str, str], ...]  # (start, source, job)


@dataclass(frozen=True)
class Patch:
    devices: int
    compliance: float | None  # at month end
    target: float
    trend: tuple[tuple[int, float], ...]
    overdue_critical: tuple[str, ...]
    not_reporting: tuple[str, ...]
    av_off: tuple[str, ...]


@dataclass(frozen=True)
class M365Incident:
    tenant: str
    service: str
    start: int
    end: int
    minutes: int


@dataclass(frozen=True)
class M365:
    tenants: tuple[str, ...]
    incidents: tuple[M365Incident, ...]
    licences_used: int
    licences_total: int
    secure_score: float | None  # ratio at month end
    secure_score_start: float | None
    mfa: float | None  # share of users registered at month end
    mfa_start: float | None
    secure_trend: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class RiskComponent:
    area: str
    weight: int
    points: float  # 0..weight
    reason: str


@dataclass(frozen=True)
class Risk:
    area: str
    finding: str
    recommendation: str
    decision: str


@dataclass(frozen=True)
class AreaStatus:
    area: str
    rag: str  # green | amber | red
    headline: str
    change: str


@dataclass(frozen=True)
class CustomerReport:
    customer: str
    display_name: str
    month: str  # "2026-10"
    month_label: str  # "October 2026"
    timezone: str
    hours: str  # "24x7" or "Mon-Fri 08:00-18:00"
    target: float  # percent
    blip_threshold_minutes: int
    summary: tuple[AreaStatus, ...]
    total: Availability
    sites: tuple[Availability, ...]
    devices: tuple[Availability, ...]
    maintenance: tuple[MaintenanceRow, ...]
    incidents: tuple[Incident, ...]
    longest_minutes: int
    mttr_minutes: float | None
    recurring: tuple[Recurring, ...]
    backup: Backup
    patch: Patch
    m365: M365
    risk_score: int
    risk_previous: int | None
    risk_components: tuple[RiskComponent, ...]
    top_risks: tuple[Risk, ...]
    budget_used: float
    met: bool
    availability_previous: float | None = None
    daily_down: tuple[tuple[int, int], ...] = ()  # (local midnight, device-minutes down)
    # "recorded": customer_site_device:reachable:max; "raw": ping and SNMP samples (rules
    # loaded after the month began)
    availability_source: str = "recorded"
    charts: dict[str, str] = field(default_factory=dict)  # name -> SVG text

    @property
    def downtime_minutes(self) -> int:
        return self.total.down


@dataclass(frozen=True)
class SummaryRow:
    customer: str
    display_name: str
    availability: float
    target: float
    met: bool
    incidents: int
    downtime_minutes: int
    risk_score: int
    risk_previous: int | None


@dataclass(frozen=True)
class MspSummary:
    month: str
    month_label: str
    rows: tuple[SummaryRow, ...]
    charts: dict[str, str] = field(default_factory=dict)
