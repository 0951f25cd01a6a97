"""Patch sources and the patch policy a customer's fleet is held to.

Example (per customer)::

    patch_sources:
      - name: acme-ninja
        kind: ninjaone
        url: https://eu.ninjarmm.com     # the region's host
        organization: Acme Dental        # the organisation's name in NinjaOne
        credentials: acme_ninja          # an entry of the patch exporter's config
      - {name: acme-intune, kind: intune, tenant: acme}   # a tenant in this customer's m365_tenants
    patch_policy:                      # optional; these are the defaults
      security_days: 14                # days after the anchor for security/critical updates
      other_days: 30
      anchor: patch_tuesday            # patch_tuesday | release
      max_days_since_contact: 7
      max_days_since_scan: 7
      max_reboot_pending_days: 7
      max_av_signature_age_days: 3
      target_compliance: 95            # percent of the fleet

``credentials`` names an entry of the patch exporter's own config, so the inventory holds
no secret. The target of a scrape is the source name: ``/patch?target=acme-ninja``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from mspwatch.common.config import StrictModel

from .backup import check_base_url
from .names import SourceName


class NinjaOneSource(StrictModel):
    """One organisation in a NinjaOne (NinjaRMM) instance, read through its public API v2."""

    name: SourceName
    """Short name: the exporter's `target` and the `source` label (unique across customers)."""
    kind: Literal["ninjaone"]
    """`ninjaone`: NinjaOne's public API v2."""
    url: str = Field(description="the region's host, e.g. https://eu.ninjarmm.com")
    organization: str = Field(min_length=1, description="the organisation's name in NinjaOne")
    credentials: str = Field(min_length=1, description="entry in the patch exporter's credentials")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_base_url(value, "https://eu.ninjarmm.com")


class IntuneSource(StrictModel):
    """The customer's Intune-managed devices, read through Microsoft Graph with the tenant's app."""

    name: SourceName
    """Short name: the exporter's `target` and the `source` label (unique across customers)."""
    kind: Literal["intune"]
    """`intune`: Microsoft Intune through Microsoft Graph."""
    tenant: str = Field(min_length=1, description="a name in this customer's m365_tenants")


PatchSource = Annotated[NinjaOneSource | IntuneSource, Field(discriminator="kind")]


class PatchPolicy(StrictModel):
    security_days: int = Field(default=14, ge=0, le=365)
    """Days after the anchor within which security and critical updates must be installed."""
    other_days: int = Field(default=30, ge=0, le=365)
    """Days after the anchor for every other classification."""
    anchor: Literal["patch_tuesday", "release"] = "patch_tuesday"
    """Count from Patch Tuesday (2nd Tuesday of the month, customer's zone) or from each release."""
    max_days_since_contact: int = Field(default=7, ge=1, le=365)
    """A device not seen by its source for longer is not reporting."""
    max_days_since_scan: int = Field(default=7, ge=1, le=365)
    """A device whose last update scan is older is `not_scanned` (NinjaOne: its patch-scan
    activities; Intune reports no update scan, so it is not judged there)."""
    max_reboot_pending_days: int = Field(default=7, ge=1, le=365)
    """Longest a reboot may stay pending after an install."""
    max_av_signature_age_days: int = Field(default=3, ge=1, le=365)
    """Oldest antivirus signatures a compliant device may have, where the source gives their
    date; NinjaOne and Intune give none, so `av_outdated` follows the source's own flag."""
    target_compliance: float = Field(default=95.0, gt=0, le=100, description="percent of the fleet")
