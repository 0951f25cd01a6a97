"""``host[:port]`` parsing, and the SNMP exporter's target parameter built on it."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from mspwatch.common.net import split_host_port

from .conftest import Exporter, get


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.1", ("10.0.0.1", None)),
        ("10.0.0.1:1161", ("10.0.0.1", 1161)),
        ("tcpsw1.example:161", ("tcpsw1.example", 161)),
        ("2001:db8::1", ("2001:db8::1", None)),
        ("[2001:db8::1]", ("2001:db8::1", None)),
        ("[::1]:1161", ("::1", 1161)),
    ],
)
def test_valid_addresses(address: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(address) == expected


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:\u00b9", "invalid port in '127.0.0.1:\u00b9'"),  # superscript one: int() raised
        ("127.0.0.1:\u0661\u0666\u0661", "invalid port in '127.0.0.1:\u0661\u0666\u0661'"),  # was 161
        ("127.0.0.1:", "invalid port in '127.0.0.1:'"),
        ("127.0.0.1:0", "invalid port in '127.0.0.1:0'"),
        ("127.0.0.1:65536", "invalid port in '127.0.0.1:65536'"),
        ("[::1", "invalid address '[::1': missing ']'"),  # was read as ::1
        ("[::1]161", "invalid address '[::1]161': want [IPv6]:port"),
        ("[not-v6]:161", "invalid IPv6 address in '[not-v6]:161'"),
        ("a:b:c", "invalid IPv6 address in 'a:b:c'"),
        ("sw1.example\n", "invalid host 'sw1.example\\n'"),
        ("no such host", "invalid host 'no such host'"),
    ],
)
def test_invalid_addresses(address: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        split_host_port(address)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tcp://10.0.0.1", "invalid target: only UDP transport is supported"),
        ("tcp6://[::1]:161", "invalid target: only UDP transport is supported"),
        ("http://10.0.0.1", "invalid target: unknown scheme 'http'"),
        ("127.0.0.1:\u00b9", "invalid target: invalid port in '127.0.0.1:\u00b9'"),
        ("127.0.0.1:\u0661\u0666\u0661", "invalid target: invalid port in '127.0.0.1:\u0661\u0666\u0661'"),
        ("[::1", "invalid target: invalid address '[::1': missing ']'"),
    ],
)
def test_snmp_target_refused_with_a_clear_message(
    exporters: dict[str, Exporter], target: str, message: str
) -> None:
    resp = get(exporters["snmp-exporter"].port, f"/snmp?target={quote(target)}&auth=public_v2")
    assert (resp.status, resp.body.decode()) == (400, message + "\n")


def test_snmp_host_named_tcp_is_scraped(exporters: dict[str, Exporter]) -> None:
    """``tcpsw1`` is a host name, not a transport: scraped (here: down), not refused."""
    resp = get(exporters["snmp-exporter"].port, "/snmp?target=tcpsw1.invalid:161&auth=public_v2")
    assert resp.status == 200, resp.body
    assert b"\nsnmp_up 0.0\n" in resp.body
