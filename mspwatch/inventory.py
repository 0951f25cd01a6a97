"""The customer inventory: customers -> sites -> devices, the one source of target labels.

Example ``inventory.yml``::

    customers:
      - name: acme
        display_name: Acme Dental Ltd
        sites:
          - name: hq
            devices:
              - name: core-sw1
                address: 10.20.0.2
                snmp_auth: acme_v3
                role: core
              - name: ups1
                address: 10.20.0.9:1161
                snmp_auth: public_v2
                profiles: [system, ups_apc]
                role: ups

Later areas (backup sources, Microsoft 365 tenants, patch sources, SLA targets, maintenance
windows) hang off the same customers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field, field_validator

from mspwatch.common.config import StrictModel, load_model
from mspwatch.exporters.backup.inventory import BackupSource, backup_targets
from mspwatch.exporters.core.net import split_host_port as split_host_port  # re-exported
from mspwatch.exporters.m365.inventory import M365Tenant, m365_targets

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lowercase letters, digits, '-' or '_' "
            "(at most 63, e.g. acme-dental)"
        )
    return value


# Label values that are safe in file names, URLs and PromQL regexes alike.
Slug = Annotated[str, AfterValidator(_slug)]

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
    name: Slug
    address: str
    role: Role = "other"
    snmp_auth: str | None = Field(default=None, description="auth name in the SNMP exporter config")
    profiles: list[str] | None = Field(
        default=None, description="SNMP profiles to walk; default: chosen by sysObjectID"
    )
    ping: bool = True

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        split_host_port(value)
        return value


class Site(StrictModel):
    name: Slug
    display_name: str | None = None
    devices: list[Device] = []

    @field_validator("devices")
    @classmethod
    def _unique(cls, devices: list[Device]) -> list[Device]:
        return _no_duplicates(devices, "device")


class Customer(StrictModel):
    name: Slug
    display_name: str | None = None
    sites: list[Site] = []
    backup_sources: list[BackupSource] = []
    m365_tenants: list[M365Tenant] = []

    @field_validator("sites")
    @classmethod
    def _unique(cls, sites: list[Site]) -> list[Site]:
        return _no_duplicates(sites, "site")


class Inventory(StrictModel):
    customers: list[Customer]

    @field_validator("customers")
    @classmethod
    def _unique(cls, customers: list[Customer]) -> list[Customer]:
        return _no_duplicates(customers, "customer")


_Named = TypeVar("_Named", Customer, Site, Device)


def _no_duplicates(items: list[_Named], what: str) -> list[_Named]:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"duplicate {what} name {item.name!r}")
        seen.add(item.name)
    return items


def load_inventory(path: Path) -> Inventory:
    return load_model(Inventory, path)


TargetGroup = dict[str, Any]


def snmp_targets(inv: Inventory) -> list[TargetGroup]:
    """file_sd groups for the SNMP exporter: one group per device.

    ``__param_auth`` and ``__param_module`` become URL parameters of the scrape, the rest
    become the series' labels, so exporters never invent ``customer`` or ``site``.
    """
    groups = []
    for customer, site, dev in _devices(inv):
        if dev.snmp_auth is None:
            continue
        labels = _labels(customer, site, dev)
        labels["__param_auth"] = dev.snmp_auth
        if dev.profiles:
            labels["__param_module"] = ",".join(dev.profiles)
        groups.append({"targets": [dev.address], "labels": labels})
    return groups


def icmp_targets(inv: Inventory) -> list[TargetGroup]:
    """file_sd groups for blackbox_exporter's ICMP module: reachability, the parent of SNMP."""
    return [
        {"targets": [split_host_port(dev.address)[0]], "labels": _labels(customer, site, dev)}
        for customer, site, dev in _devices(inv)
        if dev.ping
    ]


def _devices(inv: Inventory) -> list[tuple[Customer, Site, Device]]:
    return [(c, s, d) for c in inv.customers for s in c.sites for d in s.devices]


def _labels(customer: Customer, site: Site, dev: Device) -> dict[str, str]:
    return {"customer": customer.name, "site": site.name, "device": dev.name, "role": dev.role}


# One file per scrape job; later areas add their own generator here.
TARGET_FILES: dict[str, Callable[[Inventory], list[TargetGroup]]] = {
    "snmp.json": snmp_targets,
    "icmp.json": icmp_targets,
    "backup.json": backup_targets,
    "m365.json": m365_targets,
}


def write_targets(inv: Inventory, out_dir: Path) -> list[Path]:
    """Write every file_sd file atomically (Prometheus may read at any moment)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in TARGET_FILES.items():
        path = out_dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(make(inv), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
