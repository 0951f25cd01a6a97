"""Microsoft 365 tenants in the customer inventory.

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
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator

from mspwatch.common.config import StrictModel

from .names import SourceName

# The signals a tenant is read for; the exporter refreshes each on its own interval.
Signal = Literal["health", "issues", "licences", "secure_score", "mfa"]
SIGNALS: tuple[Signal, ...] = ("health", "issues", "licences", "secure_score", "mfa")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$")


def check_tenant_id(value: str) -> str:
    """A tenant is a GUID or a verified domain.

    >>> check_tenant_id("contoso.onmicrosoft.com")
    'contoso.onmicrosoft.com'
    """
    if not (_GUID.match(value) or _DOMAIN.match(value)):
        raise ValueError(f"invalid tenant id {value!r}, want a GUID or a domain name")
    return value


class M365Tenant(StrictModel):
    """One customer tenant, scraped as ``/m365?target=<name>``."""

    name: SourceName
    """Short name: the exporter's `target` and the `tenant` label (unique across customers)."""
    tenant_id: Annotated[str, AfterValidator(check_tenant_id)]
    """The tenant's directory (tenant) ID, a GUID."""
    app: str = "msp"
    """Name of the Graph app in the m365 exporter's `apps` that is consented in this tenant."""
    # Replaces the exporter's list for this tenant, e.g. without ``mfa`` where the tenant has
    # no Entra ID P1/P2 (the registration report then answers 403).
    signals: list[Signal] | None = None
    """Signals read for this tenant; default: the exporter's `signals` (MFA needs Entra ID P1/P2)."""
