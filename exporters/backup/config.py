"""Backup exporter configuration: where the inventory is, credentials by name, the log.

Example ``backup.yml``::

    inventory: inventory.yml                   # relative to this file
    credentials:
      acme_veeam:
        username: svc-monitor
        password: {env: ACME_VEEAM_PASSWORD}
      acme_restic:
        password: {file: /run/secrets/acme_restic}
    restore_test_log: restore-tests.jsonl      # appended by `mspwatch backup record-restore-test`
    max_sources_in_flight: 16

Sources themselves are declared per customer in the inventory (``backup_sources``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from mspwatch.common.config import ConfigError, StrictModel, check_ca_file, load_model
from mspwatch.common.secrets import Secret
from mspwatch.inventory import BackupSource, ResticSource, VeeamSource, resolve


class Credentials(StrictModel):
    username: str | None = None
    """User name (Veeam); not used by restic."""
    password: Secret
    """Password (Veeam) or repository password (restic)."""


class BackupConfig(StrictModel):
    inventory: Path
    """The customer inventory naming the backup sources (relative to this file)."""
    credentials: dict[str, Credentials] = {}
    """Credentials by name; a backup source in the inventory names one with `credentials`."""
    restore_test_log: Path | None = None
    """JSON-lines log of restore tests appended by `mspwatch backup record-restore-test`."""
    max_sources_in_flight: int = Field(default=16, ge=1, le=1024)
    """Sources scraped at once by the whole exporter; a scrape waits for a slot within its deadline."""


@dataclass(frozen=True)
class ConfiguredSource:
    """One source with everything resolved: its customer, paths and credentials."""

    customer: str
    source: BackupSource
    base_dir: Path  # relative paths in the source resolve against this
    credentials: Credentials | None


@dataclass(frozen=True)
class LoadedConfig:
    config: BackupConfig
    sources: dict[str, ConfiguredSource]
    restore_test_log: Path | None


def load_config(path: Path) -> LoadedConfig:
    """Load backup.yml and the inventory it names; cross-check names and credentials."""
    from mspwatch.inventory import load_inventory

    config = load_model(BackupConfig, path)
    inv_path = resolve(path.parent, config.inventory)
    assert inv_path is not None
    inventory = load_inventory(inv_path)
    sources: dict[str, ConfiguredSource] = {}
    for ci, customer in enumerate(inventory.customers):
        for si, source in enumerate(customer.backup_sources):
            where = f"{inv_path}: customers.{ci}.backup_sources.{si}"
            creds = None
            if isinstance(source, VeeamSource | ResticSource) and source.credentials is not None:
                creds = config.credentials.get(source.credentials)
                if creds is None:
                    raise ConfigError(
                        f"{where}.credentials: unknown credentials {source.credentials!r}"
                        f" (not in {path.name})"
                    )
                if isinstance(source, VeeamSource) and not creds.username:
                    raise ConfigError(
                        f"{path}: credentials.{source.credentials}.username: a Veeam source needs a username"
                    )
            if isinstance(source, VeeamSource) and source.ca_file is not None:
                ca_file = resolve(inv_path.parent, source.ca_file)
                assert ca_file is not None
                check_ca_file(ca_file, f"{where}.ca_file")
            sources[source.name] = ConfiguredSource(
                customer=customer.name,
                source=source,
                base_dir=inv_path.parent,
                credentials=creds,
            )
    return LoadedConfig(
        config=config,
        sources=sources,
        restore_test_log=resolve(path.parent, config.restore_test_log),
    )
