"""Patch exporter configuration: where the inventory is, API credentials by name, options.

Example ``patch.yml``::

    inventory: inventory.yml                 # relative to this file
    credentials:
      acme_ninja:
        client_id: 0oa1b2c3d4e5f6g7h8i9
        client_secret: {env: ACME_NINJA_SECRET}
    ninjaone:
      page_size: 1000
      request_timeout: 10s
      install_lookback: 35d
      scan_lookback: 14d
    apps:                                    # Intune: Graph apps, as in m365.yml
      msp: {client_id: 4f1c2d9e-0000-4000-8000-000000000001, client_secret: {env: M365_CLIENT_SECRET}}
    graph: {request_timeout: 10s}
    intune:
      quality_updates:                       # cumulative updates per Windows build (the latest
        - {build: "10.0.26100", revision: 2605, released: 2025-12-10}   # one at least)
        - {build: "10.0.26100", revision: 2894, released: 2026-01-13}
      protection_state_ttl: 1h
    max_sources_in_flight: 16

Sources, time zones and policies are declared per customer in the inventory
(``patch_sources``, ``timezone``, ``patch_policy``); an Intune source names one of the
customer's ``m365_tenants``, whose ``app`` must be in ``apps``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from mspwatch.common.config import ConfigError, Duration, StrictModel, check_ca_file, load_model
from mspwatch.common.secrets import Secret
from mspwatch.exporters.graph.config import GraphApp, GraphOptions, resolve_files
from mspwatch.inventory import IntuneSource, NinjaOneSource, PatchPolicy, load_inventory, resolve

from .intune import QualityUpdate


class NinjaCredentials(StrictModel):
    """A NinjaOne API client (client credentials grant)."""

    client_id: str = Field(min_length=1)
    """The API client's id (Administration > Apps > API)."""
    client_secret: Secret
    """Its secret; `{env: NAME}` or `{file: PATH}`."""


class NinjaSettings(StrictModel):
    page_size: int = Field(default=1000, ge=1, le=10_000)
    """Devices per page (`after` paging) and rows per query page (`cursor` paging)."""
    request_timeout: Duration = 10.0
    """Longest wait for one answer; never past the scrape deadline."""
    max_retries: int = Field(default=2, ge=0, le=10)
    """Repeats per request after a 429, 5xx, timeout or network error."""
    install_lookback: Duration = 35 * 86400.0
    """How far back install attempts are listed (`os-patch-installs?installedAfter=`)."""
    max_cursor_restarts: int = Field(default=2, ge=0, le=10)
    """Times a query whose cursor expired is started over before the scrape fails."""
    scan_lookback: Duration = 14 * 86400.0
    """How far back the first scrape reads patch scans (`/v2/activities`); later scrapes read
    only newer ones. A device with no scan in it counts as not scanned since then."""
    ca_file: Path | None = None
    """CA bundle replacing the system's (a private CA or a proxy); relative to this file."""


class QualityUpdateEntry(StrictModel):
    build: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    """A Windows build: `10.0.26100` (the first three parts of `osVersion`)."""
    revision: int = Field(ge=0)
    """The revision of its latest cumulative update: `10.0.26100.<revision>`."""
    released: date
    """The day that update was released (a Patch Tuesday, or the day of an out-of-band one)."""


class IntuneSettings(StrictModel):
    quality_updates: list[QualityUpdateEntry] = []
    """Cumulative updates per Windows build, at least the latest of each; a device below one lacks
    it (and every later one). List the last two or three months so a device several months
    behind is judged from the first update it lacks."""
    protection_state_ttl: Duration = 3600.0
    """How long a device's Defender state (one Graph call per device) is reused."""
    max_concurrent_requests: int = Field(default=8, ge=1, le=64)
    """Defender reads in flight per tenant."""

    @field_validator("quality_updates")
    @classmethod
    def _consistent(cls, entries: list[QualityUpdateEntry]) -> list[QualityUpdateEntry]:
        by_build: dict[str, list[QualityUpdateEntry]] = {}
        for e in entries:
            same = by_build.setdefault(e.build, [])
            if any(o.revision == e.revision for o in same):
                raise ValueError(f"build {e.build!r} revision {e.revision} is listed twice")
            for o in same:
                if (o.revision < e.revision) != (o.released < e.released):
                    a, b = sorted((o, e), key=lambda x: x.revision)
                    raise ValueError(
                        f"build {e.build!r}: revision {b.revision} released {b.released} is not"
                        f" after revision {a.revision} ({a.released})"
                    )
            same.append(e)
        return entries

    def table(self) -> dict[str, tuple[QualityUpdate, ...]]:
        """Build -> its cumulative updates, oldest first."""
        out: dict[str, list[QualityUpdate]] = {}
        for e in sorted(self.quality_updates, key=lambda e: e.revision):
            out.setdefault(e.build, []).append(QualityUpdate(e.revision, e.released))
        return {build: tuple(updates) for build, updates in out.items()}


class PatchConfig(StrictModel):
    inventory: Path
    """The customer inventory naming the patch sources (relative to this file)."""
    credentials: dict[str, NinjaCredentials] = {}
    """NinjaOne API clients by name; a NinjaOne source names one with `credentials`."""
    ninjaone: NinjaSettings = NinjaSettings()
    """Paging, timeouts and lookback of the NinjaOne client."""
    apps: dict[str, GraphApp] = {}
    """Graph apps by name, as in m365.yml; an Intune source's tenant names one with `app`."""
    graph: GraphOptions = GraphOptions()
    """Graph endpoints and limits, as in m365.yml."""
    intune: IntuneSettings = IntuneSettings()
    """Quality-update table and Defender reads of the Intune client."""
    max_sources_in_flight: int = Field(default=16, ge=1, le=1024)
    """Sources scraped at once by the whole exporter; a scrape waits for a slot within its deadline."""


@dataclass(frozen=True)
class ConfiguredSource:
    """One source with everything resolved: its customer's zone and policy, credentials."""

    customer: str
    source: NinjaOneSource | IntuneSource
    zone: ZoneInfo
    policy: PatchPolicy
    credentials: NinjaCredentials | None
    tenant_id: str | None = None  # Intune: the tenant's GUID or domain
    app: GraphApp | None = None  # Intune: the Graph app of that tenant


@dataclass(frozen=True)
class LoadedConfig:
    config: PatchConfig
    sources: dict[str, ConfiguredSource]
    tls: ssl.SSLContext | bool  # NinjaOne's TLS verification, built once


def load_config(path: Path) -> LoadedConfig:
    """Load patch.yml and the inventory it names; cross-check credentials.

    >>> load_config(Path("/nonexistent/patch.yml"))
    Traceback (most recent call last):
    ...
    mspwatch.common.config.ConfigError: /nonexistent/patch.yml: cannot read: No such file or directory
    """
    config = load_model(PatchConfig, path)
    inv_path = resolve(path.parent, config.inventory)
    assert inv_path is not None
    inventory = load_inventory(inv_path)
    config = _resolve_graph_paths(config, path)
    sources: dict[str, ConfiguredSource] = {}
    for ci, customer in enumerate(inventory.customers):
        for si, source in enumerate(customer.patch_sources):
            creds = None
            tenant_id = app = None
            if isinstance(source, IntuneSource):
                tenant = next(t for t in customer.m365_tenants if t.name == source.tenant)  # checked
                app = config.apps.get(tenant.app)
                if app is None:
                    known = ", ".join(sorted(config.apps)) or "none"
                    raise ConfigError(
                        f"{inv_path}: customers.{ci}.patch_sources.{si}.tenant: tenant {tenant.name!r}"
                        f" uses app {tenant.app!r} (apps in {path.name}: {known})"
                    )
                tenant_id = tenant.tenant_id
            if isinstance(source, NinjaOneSource):
                creds = config.credentials.get(source.credentials)
                if creds is None:
                    raise ConfigError(
                        f"{inv_path}: customers.{ci}.patch_sources.{si}.credentials: "
                        f"unknown credentials {source.credentials!r} (not in {path.name})"
                    )
            sources[source.name] = ConfiguredSource(
                customer=customer.name,
                source=source,
                zone=ZoneInfo(customer.timezone),
                policy=customer.patch_policy,
                credentials=creds,
                tenant_id=tenant_id,
                app=app,
            )
    return LoadedConfig(config=config, sources=sources, tls=_tls(config.ninjaone, path))


def _resolve_graph_paths(config: PatchConfig, path: Path) -> PatchConfig:
    """Relative ``graph.ca_file`` and certificate files are relative to patch.yml."""
    graph, apps = resolve_files(config.graph, config.apps, path)
    return config.model_copy(update={"graph": graph, "apps": apps})


def _tls(settings: NinjaSettings, path: Path) -> ssl.SSLContext | bool:
    """Load the CA bundle once now, so a bad one fails --config.check, not every scrape."""
    ca = resolve(path.parent, settings.ca_file)
    if ca is None:
        return True
    check_ca_file(ca, f"{path}: ninjaone.ca_file")
    return ssl.create_default_context(cafile=str(ca))
