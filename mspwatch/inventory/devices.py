"""Sites and the devices at them: what the SNMP exporter polls and blackbox pings.

Example::

    sites:
      - name: hq
        display_name: Head office, Leeds
        devices:
          - {name: core-sw1, address: 10.20.0.2, snmp_auth: acme_v3, role: core}
          - name: ups1
            address: "10.20.0.9:1161"
            snmp_auth: public_v2
            profiles: [system, ups_apc]     # default: chosen by sysObjectID
            role: ups
          - {name: printer1, address: printer1.acme.example, role: printer}   # pinged only
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mspwatch.common.config import StrictModel
from mspwatch.common.net import split_host_port

from .names import Slug, no_duplicates

Role = Literal[
    "core",
    "distribution",
    "access",
    "uplink",
    "router",
    "firewall",
    "wifi",
    "ups",
    "server",
    "storage",
    "printer",
    "other",
]


class Device(StrictModel):
    """One device: pinged unless ``ping: false``, polled over SNMP when it has ``snmp_auth``."""

    name: Slug
    """Short name: the `device` label (unique within the site)."""
    address: str = Field(description="host or IP, optionally :port (IPv6 in brackets)")
    role: Role = "other"
    """What it does; a core, router, uplink or firewall device is its site's gateway for availability."""
    snmp_auth: str | None = Field(default=None, description="auth name in the SNMP exporter config")
    profiles: list[str] | None = Field(
        default=None, description="SNMP profiles to walk; default: chosen by sysObjectID"
    )
    ping: bool = True
    """Also probe the device by ICMP (blackbox_exporter); ping is the parent of SNMP alerts."""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        split_host_port(value)
        return value


class Site(StrictModel):
    name: Slug
    """Short name: the `site` label (unique within the customer)."""
    display_name: str | None = None
    """Name printed on dashboards and reports; default: `name`."""
    devices: list[Device] = []
    """The devices polled by SNMP and ping at this site."""

    @field_validator("devices")
    @classmethod
    def _unique(cls, devices: list[Device]) -> list[Device]:
        return no_duplicates(devices, "device")
