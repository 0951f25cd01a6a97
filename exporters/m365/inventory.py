"""Microsoft 365 tenants in the customer inventory, and their file_sd target file.

In ``inventory.yml`` each customer lists its tenants; credentials stay in the exporter's
config, referenced by app name (one multi-tenant app consented in every customer tenant is
the common MSP setup, so most tenants name the same app)::

    customers:
      - name: acme
        m365_tenants:
          - name: acme                       # the target: /m365?target=acme
            tenant_id: 2b6f0c5e-0000-4000-8000-00000000c0de   # or acme.onmicrosoft.com
            app: msp                         # an app in the exporter's `apps:` (default: msp)
            signals: [health, issues, licences, secure_score]   # optional: no Entra ID P1/P2

This module imports only the exporter core, so the inventory can import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, StringConstraints

from mspwatch.common.config import StrictModel
from mspwatch.exporters.graph.config import check_tenant_id

from .signals import Signal

TenantName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]


class M365Tenant(StrictModel):
    """One customer tenant, scraped as ``/m365?target=<name>``."""

    name: TenantName
    tenant_id: Annotated[str, AfterValidator(check_tenant_id)]
    app: str = "msp"
    # Replaces the exporter's list for this tenant, e.g. without ``mfa`` where the tenant has
    # no Entra ID P1/P2 (the registration report then answers 403).
    signals: list[Signal] | None = None


class _Customer(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def m365_tenants(self) -> Sequence[M365Tenant]: ...


class _Inventory(Protocol):
    @property
    def customers(self) -> Sequence[_Customer]: ...


def m365_targets(inv: _Inventory) -> list[dict[str, Any]]:
    """file_sd groups for the Microsoft 365 exporter: one group per tenant.

    The tenant name is the target (``__param_target`` after relabelling); ``customer`` and
    ``tenant`` become the series' labels.
    """
    return [
        {"targets": [t.name], "labels": {"customer": c.name, "tenant": t.name}}
        for c in inv.customers
        for t in c.m365_tenants
    ]
