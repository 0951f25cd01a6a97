"""``mspwatch snmp-exporter``: scrape SNMP devices the way snmp_exporter is scraped.

GET /snmp?target=10.0.0.1[:161]&auth=public_v2[&module=system,interfaces]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import Metric

from mspwatch.common.net import split_host_port
from mspwatch.exporters.core.cli import register_exporter
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.probe import BadRequest, ProbeApp, ProbeFailure

from .client import Reason, SessionStats, SnmpClient, SnmpError
from .config import Auth, SnmpConfig, load_config
from .dispatch import DispatchingClient
from .profile import Profile, load_profiles
from .scrape import LabelCache, scrape_device, session_families

DEFAULT_PORT = 9816
DEFAULT_AUTH = "public_v2"  # snmp_exporter's default, so its scrape configs keep working


@dataclass(frozen=True)
class SnmpTarget:
    """One request's device, with the config it was parsed against (reloads or not)."""

    host: str
    port: int
    auth_name: str
    auth: Auth
    modules: list[str] | None
    config: SnmpConfig
    profiles: dict[str, Profile]
    cache: LabelCache


class SnmpApp(ProbeApp[SnmpTarget]):
    namespace = "snmp"
    probe_path = "/snmp"
    reasons = Reason
    subject = "device"
    up_help = "1 if the device answered SNMP (a GET of sysObjectID and sysUpTime), 0 otherwise."

    def __init__(
        self,
        config_file: Path,
        client_factory: Callable[[], SnmpClient] = DispatchingClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.config_file = config_file
        self.config, self.profiles = self._load()
        self._client_factory = client_factory
        self._client: SnmpClient | None = None
        self.cache = LabelCache(self.config.lookup_cache_max_age)
        self._clock = clock

    def _load(self) -> tuple[SnmpConfig, dict[str, Profile]]:
        config = load_config(self.config_file)
        return config, load_profiles(config.profile_dirs)

    @property
    def max_in_flight(self) -> int:
        return self.config.max_devices_in_flight

    def reload(self) -> None:
        config, profiles = self._load()
        cache = LabelCache(config.lookup_cache_max_age)
        self.config, self.profiles, self.cache = config, profiles, cache

    async def start(self) -> None:
        self._client = self._client_factory()

    async def stop(self) -> None:
        client, self._client = self._client, None
        close = getattr(client, "close", None)
        if close is not None:
            close()

    def target(self, params: Mapping[str, str]) -> SnmpTarget:
        cfg, profiles = self.config, self.profiles  # one view of the config, reloads or not
        target = params.get("target", "").strip()
        if not target:
            raise BadRequest("'target' parameter must be specified")
        auth_name = params.get("auth") or DEFAULT_AUTH
        auth = cfg.auths.get(auth_name)
        if auth is None:
            raise BadRequest(f"unknown auth {auth_name!r}")
        modules = expand_modules(params.get("module", ""), profiles)
        host, port = _split_target(target)
        return SnmpTarget(host, port, auth_name, auth, modules, cfg, profiles, self.cache)

    async def scrape(self, target: SnmpTarget, deadline: Deadline) -> list[Metric]:
        cfg = target.config
        if self._client is None:
            self._client = self._client_factory()
        try:
            # The name is resolved once, inside the deadline; the address checked against
            # the allowlist is the one the credentials are sent to.
            address = await _address_of(target.host, deadline)
            if cfg.allowed_targets is not None and not _allowed(address, cfg.allowed_targets):
                raise BadRequest(f"target {target.host!r} is not in allowed_targets")
            session = await self._client.session(address, target.port, target.auth, cfg.walk)
        except SnmpError as exc:
            raise ProbeFailure(
                exc.reason, detail=exc.detail, families=session_families(SessionStats())
            ) from None
        return await scrape_device(
            session,
            target.profiles,
            target.modules,
            cfg.walk,
            deadline,
            target.cache,
            (target.host, target.port, target.auth_name),
            clock=self._clock,
        )


# snmp_exporter's module names (from its generator's default config), so scrape configs
# written for it keep working: each maps to the profiles that cover the same OIDs.
SNMP_EXPORTER_MODULES: dict[str, list[str]] = {
    "if_mib": ["system", "interfaces"],
    "system": ["system"],
    "hrDevice": ["host_resources"],
    "hrStorage": ["host_resources"],
    "hrSystem": ["system", "host_resources"],
    "host_resources": ["host_resources"],
    "ucd_la_table": ["ucd"],
    "apcups": ["system", "ups_apc"],
    "ups_mib": ["system", "ups_mib"],
    "cisco_wlc": ["system", "interfaces", "cisco"],
    "paloalto_fw": ["system", "interfaces", "host_resources", "entity_sensor"],
    "arista_sw": ["system", "interfaces", "entity_sensor"],
    "juniper": ["system", "interfaces", "juniper"],
    "fortigate": ["system", "interfaces", "fortinet"],
}


def expand_modules(param: str, profiles: Mapping[str, Profile]) -> list[str] | None:
    """Profiles for a ``module=a,b`` parameter: our profile names or snmp_exporter's modules.

    >>> expand_modules("if_mib", load_profiles())
    ['system', 'interfaces']
    """
    names = [m for m in param.split(",") if m]
    if not names:
        return None
    out: list[str] = []
    for name in names:
        if name in profiles:
            out.append(name)
        elif name in SNMP_EXPORTER_MODULES:
            out += SNMP_EXPORTER_MODULES[name]
        else:
            raise BadRequest(f"unknown module {name!r}")
    return list(dict.fromkeys(out))


def _split_target(target: str) -> tuple[str, int]:
    # snmp_exporter accepts transport prefixes; UDP is what both speak.
    scheme, sep, rest = target.partition("://")
    if sep:
        if scheme not in ("udp", "udp6"):
            # A host may well be called tcpsw1: only a tcp:// prefix names the transport.
            what = (
                "only UDP transport is supported"
                if scheme in ("tcp", "tcp6")
                else f"unknown scheme {scheme!r}"
            )
            raise BadRequest(f"invalid target: {what}")
        target = rest
    try:
        host, port = split_host_port(target)
    except ValueError as exc:
        raise BadRequest(f"invalid target: {exc}") from None
    return host, port or 161


async def _address_of(host: str, deadline: Deadline) -> str:
    """An IP literal for ``host``; a name that does not resolve in time is data, not a 4xx."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(deadline.remaining()):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except TimeoutError:
        raise SnmpError(Reason.DEADLINE, f"resolving {host} took too long") from None
    except OSError as exc:
        raise SnmpError(Reason.RESOLVE, f"cannot resolve {host}: {exc.strerror or exc}") from None
    if not infos:
        raise SnmpError(Reason.RESOLVE, f"{host} has no address")
    return str(infos[0][4][0])


def _allowed(address: str, allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in net for net in allowed)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register_exporter(
        sub,
        "snmp-exporter",
        help="serve SNMP device metrics (multi-target, snmp_exporter-compatible URL)",
        description=__doc__,
        default_port=DEFAULT_PORT,
        default_config="snmp.yml",
        build=SnmpApp,
    )
