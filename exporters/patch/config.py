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
    max_sources_in_flight: 16

Sources, time zones and policies are declared per customer in the inventory
(``patch_sources``, ``timezone``, ``patch_policy``).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field

from mspwatch.common.config import ConfigError, Duration, StrictModel, load_model
from mspwatch.common.secrets import Secret
from mspwatch.inventory import IntuneSource, NinjaOneSource, PatchPolicy, load_inventory, resolve


class NinjaCredentials(StrictModel):
    """A NinjaOne API client (client credentials grant)."""

    client_id: str = Field(min_length=1)
    client_secret: Secret


class NinjaSettings(StrictModel):
    page_size: int = Field(default=1000, ge=1, le=10_000)
    request_timeout: Duration = 10.0
    max_retries: int = Field(default=2, ge=0, le=10)
    install_lookback: Duration = 35 * 86400.0
    max_cursor_restarts: int = Field(default=2, ge=0, le=10)
    ca_file: Path | None = Field(default=None, description="CA bundle replacing the system's (a private CA)")


class PatchConfig(StrictModel):
    inventory: Path
    credentials: dict[str, NinjaCredentials] = {}
    ninjaone: NinjaSettings = NinjaSettings()
    max_sources_in_flight: int = Field(default=16, ge=1, le=1024)


@dataclass(frozen=True)
class ConfiguredSource:
    """One source with everything resolved: its customer's zone and policy, credentials."""

    customer: str
    source: NinjaOneSource | IntuneSource
    zone: ZoneInfo
    policy: PatchPolicy
    credentials: NinjaCredentials | None


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
    sources: dict[str, ConfiguredSource] = {}
    for ci, customer in enumerate(inventory.customers):
        for si, source in enumerate(customer.patch_sources):
            creds = None
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
            )
    return LoadedConfig(config=config, sources=sources, tls=_tls(config.ninjaone, path))


def _tls(settings: NinjaSettings, path: Path) -> ssl.SSLContext | bool:
    """Load the CA bundle once now, so a bad one fails --config.check, not every scrape."""
    ca = resolve(path.parent, settings.ca_file)
    if ca is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca))
    except ssl.SSLError:  # a subclass of OSError: first
        raise ConfigError(f"{path}: ninjaone.ca_file: {ca} is not a PEM CA bundle") from None
    except OSError as exc:
        raise ConfigError(f"{path}: ninjaone.ca_file: cannot read {ca}: {exc.strerror or exc}") from None
