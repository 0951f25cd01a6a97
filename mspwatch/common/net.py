"""Addresses: ``host[:port]`` parsing shared by the inventory and the exporters."""

from __future__ import annotations

import ipaddress
import re

_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_PORT = re.compile(r"[0-9]{1,5}")  # ASCII only: str.isdigit() also takes '¹' and '١٦١'


def split_host_port(address: str) -> tuple[str, int | None]:
    """Split ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; validate both parts.

    >>> split_host_port("[2001:db8::1]:161")
    ('2001:db8::1', 161)
    >>> split_host_port("10.0.0.1:١٦١")
    Traceback (most recent call last):
    ValueError: invalid port in '10.0.0.1:١٦١'
    """
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket:
            raise ValueError(f"invalid address {address!r}: missing ']'")
        port = None
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"invalid address {address!r}: want [IPv6]:port")
            port = _port(rest[1:], address)
        _ipv6(host, address)
        return host, port
    if address.count(":") > 1:  # a bare IPv6 address has no port: [v6]:port has one
        _ipv6(address, address)
        return address, None
    host, colon, raw = address.partition(":")
    port = _port(raw, address) if colon else None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # A name whose last label is a number is a mistyped IPv4 address (10.0.0.300), never a
        # host name (RFC 3696 section 2: top-level domains are not all-numeric).
        if host.rsplit(".", 1)[-1].isdigit():
            raise ValueError(f"invalid IP address {host!r}") from None
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"invalid host {host!r}") from None
    return host, port


def _ipv6(host: str, address: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError(f"invalid IPv6 address in {address!r}") from None


def _port(raw: str, address: str) -> int:
    if not _PORT.fullmatch(raw) or not 0 < int(raw) < 65536:
        raise ValueError(f"invalid port in {address!r}")
    return int(raw)
