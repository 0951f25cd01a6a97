"""Microsoft 365 exporter configuration: apps (credentials), Graph, refresh intervals, tenants.

Example ``m365.yml``::

    inventory: inventory.yml      # tenants come from customers[].m365_tenants
    apps:
      msp:                        # the multi-tenant app consented in each customer tenant
        client_id: 4f1c2d9e-0000-4000-8000-000000000001
        client_secret: {env: M365_CLIENT_SECRET}
    refresh:                      # each signal on its own interval, in the background
      health: 2m
      issues: 5m
      licences: 1h
      secure_score: 1d
      mfa: 6h
      retry: 1m                   # after a failure, try again this soon (Retry-After wins)
      timeout: 1m                 # budget of one refresh
    tenants:                      # optional: tenants declared here instead of the inventory
      - {name: lab, tenant_id: lab.onmicrosoft.com, app: msp}
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from mspwatch.common.config import ConfigError, Duration, StrictModel, load_model
from mspwatch.exporters.graph.config import GraphApp, GraphOptions, resolve_files
from mspwatch.inventory import M365Tenant
from mspwatch.inventory.m365 import SIGNALS, Signal

__all__ = ["SIGNALS", "M365Config", "Refresh", "Signal", "load_config"]


class Refresh(StrictModel):
    health: Duration = 120.0
    """Interval of the service health refresh (healthOverviews)."""
    issues: Duration = 300.0
    """Interval of the open service issues refresh."""
    licences: Duration = 3600.0
    """Interval of the licence (subscribedSkus) refresh."""
    secure_score: Duration = 86400.0
    """Interval of the Secure Score refresh."""
    mfa: Duration = 21600.0
    """Interval of the MFA registration refresh (needs Entra ID P1/P2)."""
    retry: Duration = 60.0
    """Wait before retrying a failed refresh."""
    timeout: Duration = 60.0
    """Time one refresh of one signal may take."""

    def interval(self, signal: Signal) -> float:
        return float(getattr(self, signal))


class M365Config(StrictModel):
    apps: dict[str, GraphApp] = Field(min_length=1)
    """Graph apps by name (one multi-tenant app is usual); a tenant names one with `app`."""
    graph: GraphOptions = GraphOptions()
    """Graph endpoints, TLS and request limits."""
    refresh: Refresh = Refresh()
    """Background refresh intervals per signal."""
    signals: list[Signal] = list(SIGNALS)
    """Signals read for every tenant unless the tenant lists its own."""
    inventory: Path | None = None
    """The customer inventory whose `m365_tenants` are read (relative to this file)."""
    tenants: list[M365Tenant] = []
    """Tenants declared here instead of (or besides) the inventory."""
    max_concurrent_refreshes: int = Field(default=32, ge=1, le=1000)
    """Refreshes running at once across all tenants."""
    max_concurrent_refreshes_per_tenant: int = Field(default=2, ge=1, le=5)
    """Refreshes of one tenant running at once, so a slow tenant only delays itself."""


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def load_config(path: Path) -> tuple[M365Config, list[M365Tenant]]:
    """Load the config and the tenants it covers (its own list plus the inventory's)."""
    cfg = load_model(M365Config, path)
    base = path.parent
    graph, apps = resolve_files(cfg.graph, cfg.apps, path)

    tenants: list[tuple[str, M365Tenant]] = [(f"{path}: tenants.{i}", t) for i, t in enumerate(cfg.tenants)]
    inventory = cfg.inventory
    if inventory is not None:
        from mspwatch.inventory import load_inventory  # the exporter reads the shared inventory

        inventory = _resolve(base, inventory)
        inv = load_inventory(inventory)
        for ci, customer in enumerate(inv.customers):
            for ti, tenant in enumerate(customer.m365_tenants):
                tenants.append((f"{inventory}: customers.{ci}.m365_tenants.{ti}", tenant))
    seen: dict[str, str] = {}
    for where, tenant in tenants:
        if tenant.app not in apps:
            known = ", ".join(sorted(apps))
            raise ConfigError(f"{where}.app: unknown app {tenant.app!r} (apps in {path.name}: {known})")
        if tenant.name in seen:
            raise ConfigError(f"{where}.name: duplicate tenant name {tenant.name!r}")
        seen[tenant.name] = where
    cfg = cfg.model_copy(update={"graph": graph, "apps": apps, "inventory": inventory})
    return cfg, [t for _, t in tenants]
