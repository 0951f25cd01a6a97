"""Addresses: ``host[:port]`` parsing shared by the inventory and the exporters."""

from __future__ import annotations

import ipaddress
import re

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def split_host_port(address: str) -> tuple[str, int | None]:
    """Split ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; validate both parts.

    >>> split_host_port("[2001:db8::1]:161")
    ('2001:db8::1', 161)
    """
    host, port = address, None
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"invalid address {address!r}")
            port = _port(rest[1:], address)
        ipaddress.IPv6Address(host)
        return host, port
    if address.count(":") == 1:
        host, raw = address.split(":")
        port = _port(raw, address)
    elif address.count(":") > 1:
        ipaddress.IPv6Address(address)
        return address, None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # A name whose last label is a number is a mistyped IPv4 address (10.0.0.300), never a
        # host name (RFC 3696 section 2: top-level domains are not all-numeric).
        if host.rsplit(".", 1)[-1].isdigit():
            raise ValueError(f"invalid IP address {host!r}") from None
        if not _HOSTNAME.match(host):
            raise ValueError(f"invalid host {host!r}") from None
    return host, port


def _port(raw: str, address: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"invalid port in {address!r}")
    return int(raw)
