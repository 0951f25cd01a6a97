"""Cross-check the inventory against the exporters' configs before anything is written.

What a scrape would otherwise refuse with HTTP 400 on every interval (Prometheus shows the
target down, no device alert can fire) is refused here, once, naming the field::

    inventory.yml: customers.0.sites.0.devices.1.snmp_auth: device acme-dental/hq/fw1:
    unknown auth 'acme_v3x' (auths in snmp.yml: acme_v3, public_v2)

(one line in the terminal).

Only the names are compared: an exporter config is read as YAML without resolving its
secrets (``--config.check`` of each exporter validates the rest), so the generator needs
no credentials. Each config is optional; what is not given is not checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mspwatch.common.config import ConfigError, load_yaml
from mspwatch.inventory import IntuneSource, Inventory, NinjaOneSource, ResticSource, VeeamSource


@dataclass(frozen=True)
class ExporterConfigs:
    """The exporter config files to check the inventory against (each optional)."""

    snmp: Path | None = None
    backup: Path | None = None
    m365: Path | None = None
    patch: Path | None = None


def _mapping(path: Path, key: str) -> dict[str, Any]:
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: (top level): must be a mapping")
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key}: must be a mapping of names")
    return value


def _known(names: Any) -> str:
    return ", ".join(sorted(str(n) for n in names)) or "none"


def _profile_names(path: Path) -> set[str]:
    """Every name a device's ``profiles`` may use: the exporter's profiles and module aliases."""
    from mspwatch.exporters.snmp.main import SNMP_EXPORTER_MODULES
    from mspwatch.exporters.snmp.profile import load_profiles

    doc = load_yaml(path)
    dirs = (doc.get("profile_dirs") or []) if isinstance(doc, dict) else []
    full = [Path(d) if Path(d).is_absolute() else path.parent / d for d in dirs]
    return set(load_profiles(full)) | set(SNMP_EXPORTER_MODULES)


def check_snmp(inv: Inventory, source: str, config: Path) -> None:
    """Each device's ``snmp_auth`` is an auth of the SNMP exporter, each profile exists."""
    auths = _mapping(config, "auths")
    profiles = _profile_names(config)
    for ci, customer in enumerate(inv.customers):
        for si, site in enumerate(customer.sites):
            for di, dev in enumerate(site.devices):
                where = f"{source}: customers.{ci}.sites.{si}.devices.{di}"
                who = f"device {customer.name}/{site.name}/{dev.name}"
                if dev.snmp_auth is not None and dev.snmp_auth not in auths:
                    raise ConfigError(
                        f"{where}.snmp_auth: {who}: unknown auth {dev.snmp_auth!r}"
                        f" (auths in {config.name}: {_known(auths)})"
                    )
                for pi, profile in enumerate(dev.profiles or []):
                    if profile not in profiles:
                        raise ConfigError(
                            f"{where}.profiles.{pi}: {who}: unknown profile {profile!r}"
                            f" (profiles: {_known(profiles)})"
                        )


def check_backup(inv: Inventory, source: str, config: Path) -> None:
    """Each backup source that needs credentials names an entry of ``backup.yml``."""
    credentials = _mapping(config, "credentials")
    for ci, customer in enumerate(inv.customers):
        for bi, backup in enumerate(customer.backup_sources):
            if not isinstance(backup, VeeamSource | ResticSource) or backup.credentials is None:
                continue
            where = f"{source}: customers.{ci}.backup_sources.{bi}.credentials"
            who = f"backup source {customer.name}/{backup.name}"
            entry = credentials.get(backup.credentials)
            if entry is None:
                raise ConfigError(
                    f"{where}: {who}: unknown credentials {backup.credentials!r}"
                    f" (credentials in {config.name}: {_known(credentials)})"
                )
            if isinstance(backup, VeeamSource) and not (isinstance(entry, dict) and entry.get("username")):
                raise ConfigError(
                    f"{config}: credentials.{backup.credentials}.username: {who}:"
                    " a Veeam source needs a username"
                )


def check_m365(inv: Inventory, source: str, config: Path) -> None:
    """Each tenant's ``app`` is an app of the Microsoft 365 exporter."""
    apps = _mapping(config, "apps")
    for ci, customer in enumerate(inv.customers):
        for ti, tenant in enumerate(customer.m365_tenants):
            if tenant.app not in apps:
                raise ConfigError(
                    f"{source}: customers.{ci}.m365_tenants.{ti}.app: tenant {customer.name}/{tenant.name}:"
                    f" unknown app {tenant.app!r} (apps in {config.name}: {_known(apps)})"
                )


def check_patch(inv: Inventory, source: str, config: Path) -> None:
    """Each NinjaOne source names an entry of the patch exporter's ``credentials``; each
    Intune source's tenant uses an app of its ``apps``."""
    credentials = _mapping(config, "credentials")
    apps = _mapping(config, "apps")
    for ci, customer in enumerate(inv.customers):
        tenants = {t.name: t for t in customer.m365_tenants}
        for pi, patch in enumerate(customer.patch_sources):
            where = f"{source}: customers.{ci}.patch_sources.{pi}"
            who = f"patch source {customer.name}/{patch.name}"
            if isinstance(patch, NinjaOneSource) and patch.credentials not in credentials:
                raise ConfigError(
                    f"{where}.credentials: {who}: unknown credentials {patch.credentials!r}"
                    f" (credentials in {config.name}: {_known(credentials)})"
                )
            if isinstance(patch, IntuneSource) and tenants[patch.tenant].app not in apps:
                raise ConfigError(
                    f"{where}.tenant: {who}: tenant {patch.tenant!r} uses app {tenants[patch.tenant].app!r},"
                    f" which is not in {config.name} (apps: {_known(apps)})"
                )


def cross_check(inv: Inventory, source: str, configs: ExporterConfigs) -> None:
    """Run every check whose config is given; raise ``ConfigError`` at the first mismatch."""
    if configs.snmp is not None:
        check_snmp(inv, source, configs.snmp)
    if configs.backup is not None:
        check_backup(inv, source, configs.backup)
    if configs.m365 is not None:
        check_m365(inv, source, configs.m365)
    if configs.patch is not None:
        check_patch(inv, source, configs.patch)
