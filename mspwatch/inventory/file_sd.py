"""Prometheus file_sd target groups from the inventory, one file per scrape job.

Target labels (``customer``, ``site``, ``device``, ``role``, ...) come from here, so the
exporters never invent them. ``__param_*`` labels become URL parameters of the scrape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mspwatch.common.net import split_host_port

from .devices import Device, Site
from .model import Customer, Inventory

TargetGroup = dict[str, Any]


def devices(inv: Inventory) -> list[tuple[Customer, Site, Device]]:
    """Every device with its customer and site, in inventory order."""
    return [(c, s, d) for c in inv.customers for s in c.sites for d in s.devices]


def _labels(customer: Customer, site: Site, dev: Device) -> dict[str, str]:
    return {"customer": customer.name, "site": site.name, "device": dev.name, "role": dev.role}


def snmp_targets(inv: Inventory) -> list[TargetGroup]:
    """Groups for the SNMP exporter: one per device with ``snmp_auth``.

    >>> sw1 = {"name": "sw1", "address": "10.0.0.2", "snmp_auth": "v3", "profiles": ["system", "interfaces"]}
    >>> inv = Inventory(customers=[{"name": "acme", "sites": [{"name": "hq", "devices": [sw1]}]}])
    >>> snmp_targets(inv)[0]["labels"]["__param_module"]
    'system,interfaces'
    """
    groups = []
    for customer, site, dev in devices(inv):
        if dev.snmp_auth is None:
            continue
        labels = _labels(customer, site, dev)
        labels["__param_auth"] = dev.snmp_auth
        if dev.profiles:
            labels["__param_module"] = ",".join(dev.profiles)
        groups.append({"targets": [dev.address], "labels": labels})
    return groups


def icmp_targets(inv: Inventory) -> list[TargetGroup]:
    """Groups for blackbox_exporter's ICMP module: reachability, the parent of SNMP."""
    return [
        {"targets": [split_host_port(dev.address)[0]], "labels": _labels(customer, site, dev)}
        for customer, site, dev in devices(inv)
        if dev.ping
    ]


def backup_targets(inv: Inventory) -> list[TargetGroup]:
    """Groups for the backup exporter: the target is the source name."""
    return [
        {"targets": [source.name], "labels": {"customer": customer.name, "source_kind": source.kind}}
        for customer in inv.customers
        for source in customer.backup_sources
    ]


def m365_targets(inv: Inventory) -> list[TargetGroup]:
    """Groups for the Microsoft 365 exporter: the tenant name is the target."""
    return [
        {"targets": [t.name], "labels": {"customer": c.name, "tenant": t.name}}
        for c in inv.customers
        for t in c.m365_tenants
    ]


def patch_targets(inv: Inventory) -> list[TargetGroup]:
    """Groups for the patch exporter: the target is the source name."""
    return [
        {"targets": [s.name], "labels": {"customer": c.name, "source_kind": s.kind}}
        for c in inv.customers
        for s in c.patch_sources
    ]


# One file per scrape job (the job's name without ``.json``).
TARGET_FILES: dict[str, Callable[[Inventory], list[TargetGroup]]] = {
    "snmp.json": snmp_targets,
    "icmp.json": icmp_targets,
    "backup.json": backup_targets,
    "m365.json": m365_targets,
    "patch.json": patch_targets,
}


def render_targets(inv: Inventory) -> dict[str, str]:
    """File name -> content of every file_sd file."""
    return {
        name: json.dumps(make(inv), indent=2, sort_keys=True) + "\n" for name, make in TARGET_FILES.items()
    }


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step (Prometheus and Alertmanager may read at any moment)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_targets(inv: Inventory, out_dir: Path) -> list[Path]:
    """Write every file_sd file into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_targets(inv).items():
        write_atomically(out_dir / name, text)
        written.append(out_dir / name)
    return written
