"""SNMP exporter configuration: auths (credentials by name), walk options, limits.

Example ``snmp.yml``::

    auths:
      public_v2:
        version: 2
        community: public
      acme_v3:
        version: 3
        username: monitor
        security_level: authPriv
        auth_protocol: SHA256          # never defaulted: MD5 must be asked for by name
        auth_password: {env: ACME_SNMP_AUTH}
        priv_protocol: AES256
        priv_password: {file: /run/secrets/acme_snmp_priv}
    walk:
      timeout: 2s
      retries: 1
      max_repetitions: 25
      max_concurrent_walks: 4
    max_devices_in_flight: 64
    allowed_targets: [10.0.0.0/8, 192.168.0.0/16]
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from mspwatch.common.config import ConfigError, Duration, StrictModel, load_model, yaml_repr
from mspwatch.common.secrets import Secret


def _network(value: object) -> object:
    # Only a string: pydantic would read the number 12345 as the network 0.0.48.57/32.
    if not isinstance(value, str):
        raise ValueError(f"must be a network such as 10.0.0.0/8 or 2001:db8::/32, got {yaml_repr(value)}")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"invalid network {value!r}: {exc}") from None


Network = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, BeforeValidator(_network)]

AuthProtocol = Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"]
PrivProtocol = Literal["DES", "AES", "AES128", "AES192", "AES256", "AES192C", "AES256C"]
SecurityLevel = Literal["noAuthNoPriv", "authNoPriv", "authPriv"]


class Auth(StrictModel):
    """One named set of SNMP credentials; profiles never carry credentials."""

    version: Literal[1, 2, 3] = 2
    """SNMP version: 1, 2 (v2c) or 3."""
    community: Secret | None = None
    """Community string for v1/v2c; required there, refused with v3."""
    username: str | None = None
    """SNMPv3 user name (USM)."""
    security_level: SecurityLevel | None = None
    """SNMPv3 security level; decides which protocols and passwords are required."""
    auth_protocol: AuthProtocol | None = None
    """SNMPv3 authentication protocol; never defaulted, MD5 must be asked for by name."""
    auth_password: Secret | None = None
    """SNMPv3 authentication passphrase."""
    priv_protocol: PrivProtocol | None = None
    """SNMPv3 privacy (encryption) protocol, with authPriv only."""
    priv_password: Secret | None = None
    """SNMPv3 privacy passphrase."""
    context_name: str = ""
    """SNMPv3 context name (some agents pick a VRF or a virtual device by it)."""

    @model_validator(mode="after")
    def _consistent(self) -> Auth:
        v3_fields = (
            "username",
            "security_level",
            "auth_protocol",
            "auth_password",
            "priv_protocol",
            "priv_password",
        )
        if self.version in (1, 2):
            if self.community is None:
                raise ValueError(f"community: required for SNMP v{self.version}")
            for name in v3_fields:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: only valid with version 3")
            return self
        if self.community is not None:
            raise ValueError("community: not valid with version 3, use username")
        if not self.username:
            raise ValueError("username: required for SNMP v3")
        if self.security_level is None:
            raise ValueError("security_level: required for SNMP v3 (noAuthNoPriv, authNoPriv, authPriv)")
        wants_auth = self.security_level in ("authNoPriv", "authPriv")
        wants_priv = self.security_level == "authPriv"
        for proto, password, wanted, what in (
            ("auth_protocol", "auth_password", wants_auth, "authentication"),
            ("priv_protocol", "priv_password", wants_priv, "privacy"),
        ):
            if wanted:
                if getattr(self, proto) is None:
                    raise ValueError(
                        f"{proto}: required for security_level {self.security_level} "
                        f"(there is no default {what} protocol)"
                    )
                if getattr(self, password) is None:
                    raise ValueError(f"{password}: required for security_level {self.security_level}")
            elif getattr(self, proto) is not None or getattr(self, password) is not None:
                raise ValueError(f"{proto}: not used with security_level {self.security_level}")
        return self


class WalkOptions(StrictModel):
    timeout: Duration = 2.0  # per request, before the scrape deadline cuts it shorter
    """Time to wait for one SNMP answer before retrying; the scrape deadline cuts it shorter."""
    retries: int = Field(default=1, ge=0, le=10)
    """Retries of an unanswered request."""
    max_repetitions: int = Field(default=25, ge=1, le=200)
    """GETBULK max-repetitions: rows asked for per request."""
    max_concurrent_walks: int = Field(default=4, ge=1, le=64)
    """Walks of one device running at once."""
    max_rows_per_walk: int = Field(default=100_000, ge=1)
    """A table longer than this fails its profile instead of being cut silently."""


class SnmpConfig(StrictModel):
    auths: dict[str, Auth] = Field(min_length=1)
    """Credentials by name: a scrape picks one with `auth=` (default `public_v2`), a device `snmp_auth`."""
    walk: WalkOptions = WalkOptions()
    """How devices are walked."""
    max_devices_in_flight: int = Field(default=64, ge=1, le=10_000)
    """Devices scraped at once by the whole exporter; a scrape waits for a slot within its deadline."""
    allowed_targets: list[Network] | None = None
    """Networks a scrape may poll (checked on the resolved address); unset: any."""
    profile_dirs: list[Path] = []
    """Extra folders of profile YAML files (relative to this file), added to the built-in profiles."""
    lookup_cache_max_age: Duration = 3600.0
    """How long a device's lookup labels (interface names, ...) are reused before a fresh walk."""


def load_config(path: Path) -> SnmpConfig:
    cfg = load_model(SnmpConfig, path)
    resolved = []
    for d in cfg.profile_dirs:
        full = d if d.is_absolute() else path.parent / d
        if not full.is_dir():
            raise ConfigError(f"{path}: profile_dirs: not a directory: {d}")
        resolved.append(full)
    return cfg.model_copy(update={"profile_dirs": resolved})
