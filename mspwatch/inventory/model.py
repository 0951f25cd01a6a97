"""The customer inventory: customers -> sites -> devices, and what hangs off each customer.

Example ``inventory.yml``::

    customers:
      - name: acme-dental
        display_name: Acme Dental Ltd
        timezone: Europe/London
        contract: {availability_target: 99.9, hours: 24x7}
        alerting: {receivers: [acme-dental-escalation]}
        sites:
          - name: hq
            devices:
              - {name: core-sw1, address: 10.20.0.2, snmp_auth: acme_v3, role: core}
        maintenance:
          - {name: sunday-patching, weekly: {days: [sun], start: "02:00", end: "04:00"}}
        backup_sources: [...]          # mspwatch.inventory.backup
        m365_tenants: [...]            # mspwatch.inventory.m365
        patch_sources: [...]           # mspwatch.inventory.patch
        patch_policy: {...}

Names that become scrape targets (backup sources, tenants, patch sources) are unique across
the whole inventory, so one ``?target=`` names one thing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationInfo, field_validator

from mspwatch.common.config import StrictModel

from .backup import BackupSource
from .contract import Contract
from .devices import Site
from .localtime import TimeZone
from .m365 import M365Tenant
from .maintenance import MaintenanceWindow
from .names import Slug, no_duplicates
from .patch import IntuneSource, PatchPolicy, PatchSource


class Alerting(StrictModel):
    """Who besides the MSP hears about this customer's alerts."""

    receivers: list[str] = Field(
        default=[], description="receivers of compose/alertmanager.base.yml that also get these alerts"
    )
    severities: list[Literal["critical", "warning"]] = Field(default=["critical"], min_length=1)
    """Severities that reach the customer's escalation receivers (besides the MSP's own routing)."""


class Customer(StrictModel):
    name: Slug
    """Short name: the `customer` label on every series, in file names and URLs (a-z, 0-9, `-`, `_`)."""
    display_name: str | None = None
    """Name printed on dashboards and reports; default: `name`."""
    timezone: TimeZone = Field(
        default="UTC", description="IANA zone (Europe/London): maintenance and business hours are in it"
    )
    contract: Contract = Contract()
    """The SLA the monthly report and the burn-rate alerts measure."""
    alerting: Alerting = Alerting()
    """Which extra receivers of the Alertmanager base config this customer's alerts reach."""
    sites: list[Site] = []
    """The customer's sites, each with its devices."""
    maintenance: list[MaintenanceWindow] = []
    """Maintenance windows: alerts muted, time left out of the SLA."""
    backup_sources: list[BackupSource] = []
    """Backup servers and repositories the backup exporter reads."""
    m365_tenants: list[M365Tenant] = []
    """Microsoft 365 tenants the m365 exporter reads."""
    patch_sources: list[PatchSource] = []
    """RMM and Intune sources the patch exporter reads."""
    patch_policy: PatchPolicy = PatchPolicy()
    """How patch compliance is judged for this customer's devices."""

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, sites: list[Site]) -> list[Site]:
        return no_duplicates(sites, "site")

    @field_validator("maintenance")
    @classmethod
    def _windows(cls, windows: list[MaintenanceWindow], info: ValidationInfo) -> list[MaintenanceWindow]:
        no_duplicates(windows, "maintenance window")
        known = [s.name for s in info.data.get("sites", [])]
        for window in windows:
            for site in window.sites or []:
                if site not in known:
                    raise ValueError(
                        f"window {window.name!r}: unknown site {site!r}"
                        f" (this customer's sites: {', '.join(known) or 'none'})"
                    )
        return windows

    @field_validator("m365_tenants")
    @classmethod
    def _unique_tenants(cls, tenants: list[M365Tenant]) -> list[M365Tenant]:
        return no_duplicates(tenants, "tenant")

    @field_validator("patch_sources")
    @classmethod
    def _patch_tenants(cls, sources: list[PatchSource], info: ValidationInfo) -> list[PatchSource]:
        tenants = [t.name for t in info.data.get("m365_tenants", [])]
        for source in sources:
            if isinstance(source, IntuneSource) and source.tenant not in tenants:
                raise ValueError(
                    f"source {source.name!r}: unknown tenant {source.tenant!r}"
                    f" (this customer's m365_tenants: {', '.join(tenants) or 'none'})"
                )
        return sources

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def measured_minutes(self, start: datetime, end: datetime) -> float:
        """Minutes of ``[start, end)`` inside the contract's hours (all of them for 24x7)."""
        return self.contract.measured_minutes(self.zone, start, end)


class Inventory(StrictModel):
    customers: list[Customer]
    """Every customer of the MSP."""

    @field_validator("customers")
    @classmethod
    def _unique(cls, customers: list[Customer]) -> list[Customer]:
        no_duplicates(customers, "customer")
        for what, field in (
            ("backup source", "backup_sources"),
            ("tenant", "m365_tenants"),
            ("patch source", "patch_sources"),
        ):
            seen: dict[str, str] = {}
            for ci, customer in enumerate(customers):
                for i, item in enumerate(getattr(customer, field)):
                    here = f"customers.{ci}.{field}.{i}.name"
                    if item.name in seen:
                        raise ValueError(
                            f"duplicate {what} name {item.name!r} ({seen[item.name]} and {here})"
                        )
                    seen[item.name] = here
        return customers

    def customer(self, name: str) -> Customer:
        """The customer called ``name`` (KeyError if there is none)."""
        for customer in self.customers:
            if customer.name == name:
                return customer
        raise KeyError(name)
