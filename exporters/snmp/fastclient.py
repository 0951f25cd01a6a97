"""A fast SNMP v1/v2c client: a small BER codec over shared, non-blocking UDP sockets.

pysnmp builds a pyasn1 object tree for every PDU and spends most of an exporter's CPU there
(about 8x snmp_exporter per value). v1 and v2c messages are simple enough to encode and
decode by hand: a community string, one of four PDU types and a flat list of variable
bindings. SNMPv3 (USM, engine discovery, encryption) stays with
:class:`~mspwatch.exporters.snmp.client.PysnmpClient`, and
:class:`~mspwatch.exporters.snmp.dispatch.DispatchingClient` picks the right one per auth.

The client is four modules: ``ber`` (the pure codec), ``udp`` (the shared sockets),
``fastclient`` (sessions: GET, walks, retries within the deadline) and ``dispatch``.

Design:

* one unconnected UDP socket per address family and event loop, shared by every device;
  answers are matched by request-id *and* source address, late answers are dropped;
* retries re-send the same datagram with the same request-id, so a late answer to the first
  try still completes the request;
* ICMP errors (port or host unreachable) reach an unconnected socket only through Linux's
  ``IP_RECVERR`` error queue, which hands back the datagram we sent: its request-id says
  which request failed;
* decoding never trusts a length: every malformed datagram raises :class:`DecodeError`,
  which the transport turns into ``protocol`` or drops, never into a crash or a hang.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence

from mspwatch.exporters.core.deadline import Deadline

from .ber import (
    AUTHORIZATION_ERROR,
    ERROR_STATUS,
    GET,
    GETBULK,
    GETNEXT,
    NO_SUCH_NAME,
    Header,
    _encode,
    _End,
    encode_oid,
    message_head,
)
from .client import Reason, SessionStats, SnmpError, SnmpSession, Value
from .config import Auth, WalkOptions
from .profile import Oid, oid_str
from .udp import Answer, Endpoint, PendingRequest, settle

log = logging.getLogger("mspwatch.snmp.fastclient")


class FastSession:
    """One v1/v2c device for one scrape, on a shared :class:`Endpoint`."""

    def __init__(
        self,
        endpoint: Endpoint,
        addr: tuple[str, int],
        version: int,
        community: bytes,
        options: WalkOptions,
    ) -> None:
        self._ep = endpoint
        self._addr = addr
        self._version = 0 if version == 1 else 1
        self._head = message_head(self._version, community)
        self._options = options
        self.stats = SessionStats()

    async def _request(
        self,
        pdu_type: int,
        oids: Sequence[Oid],
        deadline: Deadline,
        max_repetitions: int = 0,
        subtree: bytes | None = None,
    ) -> Answer:
        """Send with retries, each try bounded by the request timeout and the deadline."""
        ep = self._ep
        if ep.closed:
            raise SnmpError(Reason.UNREACHABLE, "client closed")
        loop = ep.loop
        rid = ep.new_id()
        try:
            data = _encode(self._head, pdu_type, rid, oids, 0, max_repetitions)
        except ValueError as exc:  # an OID BER cannot express, e.g. 1.40 or 3.1
            raise SnmpError(Reason.PROTOCOL, str(exc)) from None
        req = PendingRequest(self._addr, loop.create_future(), subtree)
        ep.pending[rid] = req
        try:
            for attempt in range(self._options.retries + 1):
                remaining = deadline.remaining()
                if remaining <= 0.005:
                    raise SnmpError(Reason.DEADLINE, "scrape deadline reached")
                if attempt:
                    self.stats.retries += 1
                    req.future = loop.create_future()
                fut = req.future
                self.stats.pdus_sent += 1
                ep.send(data, self._addr)
                timer = loop.call_later(min(self._options.timeout, remaining), settle, fut, None)
                try:
                    answer = await fut
                finally:
                    timer.cancel()
                if answer is None:
                    continue
                if isinstance(answer, SnmpError):
                    raise answer
                return answer
        finally:
            ep.pending.pop(rid, None)
        if deadline.expired():
            raise SnmpError(Reason.DEADLINE, "scrape deadline reached")
        if req.malformed:
            raise SnmpError(Reason.PROTOCOL, "malformed answers only")
        raise SnmpError(Reason.TIMEOUT, "request timed out")

    @staticmethod
    def _status_error(header: Header) -> SnmpError:
        status = header.error_status
        name = ERROR_STATUS[status] if 0 <= status < len(ERROR_STATUS) else str(status)
        return SnmpError(
            Reason.AUTH if status == AUTHORIZATION_ERROR else Reason.PROTOCOL,
            f"agent error-status {name} at index {header.error_index}",
        )

    async def get(self, oids: Sequence[Oid], deadline: Deadline) -> dict[Oid, Value]:
        out: dict[Oid, Value] = {}
        wanted = list(oids)
        # v1 answers a GET with one missing OID by noSuchName for all: drop that one and
        # ask again, at most once per OID.
        for _ in range(len(wanted)):
            header, varbinds = await self._request(GET, wanted, deadline)
            if header.error_status == NO_SUCH_NAME:
                bad = header.error_index - 1
                if not 0 <= bad < len(wanted):
                    break
                del wanted[bad]
                if not wanted:
                    break
                continue
            if header.error_status:
                raise self._status_error(header)
            for oid, value in varbinds:
                if value is not None and not isinstance(value, _End):
                    out[oid] = value
            break
        self.stats.values += len(out)
        return out

    async def walk(self, root: Oid, deadline: Deadline) -> list[tuple[Oid, Value]]:
        out: list[tuple[Oid, Value]] = []
        last = root
        n = len(root)
        bulk = self._version != 0
        reps = self._options.max_repetitions
        limit = self._options.max_rows_per_walk
        stats = self.stats
        try:
            subtree: bytes | None = encode_oid(root)
        except ValueError:
            subtree = None  # the request below fails with the reason
        while True:
            try:
                header, varbinds = await self._request(
                    GETBULK if bulk else GETNEXT, (last,), deadline, reps if bulk else 0, subtree
                )
            except SnmpError as exc:
                exc.partial = out
                raise
            if header.error_status:
                if header.error_status == NO_SUCH_NAME:  # v1 end of view
                    return out
                error = self._status_error(header)
                error.partial = out
                raise error
            if not varbinds:
                return out
            for oid, value in varbinds:
                if isinstance(value, _End) or oid[:n] != root:  # endOfMibView or past the subtree
                    return out
                if oid <= last:
                    raise SnmpError(Reason.NOT_INCREASING, f"{oid_str(oid)} after {oid_str(last)}", out)
                last = oid
                stats.values += 1
                if value is None:  # a NULL or noSuch* cell inside the table: skip it, go on
                    continue
                out.append((oid, value))
                if len(out) >= limit:
                    raise SnmpError(Reason.PROTOCOL, f"more than max_rows_per_walk ({limit}) rows", out)


def _community_bytes(text: str) -> bytes:
    try:
        return text.encode("latin-1")  # what pysnmp sends for a str community
    except UnicodeEncodeError:
        return text.encode("utf-8")


class FastSnmpClient:
    """SNMP v1/v2c on the hand-written codec; one socket per address family and loop."""

    def __init__(self) -> None:
        self._endpoints: dict[tuple[int, socket.AddressFamily], Endpoint] = {}

    def _endpoint(self, family: socket.AddressFamily) -> Endpoint:
        loop = asyncio.get_running_loop()
        key = (id(loop), family)
        ep = self._endpoints.get(key)
        if ep is None or ep.closed or ep.loop is not loop:
            for stale in [k for k, e in self._endpoints.items() if e.loop.is_closed()]:
                self._endpoints.pop(stale).close()
            ep = Endpoint(loop, family)
            self._endpoints[key] = ep
        return ep

    async def session(self, host: str, port: int, auth: Auth, options: WalkOptions) -> SnmpSession:
        if auth.version not in (1, 2) or auth.community is None:
            raise ValueError("FastSnmpClient speaks SNMP v1 and v2c only")
        addr, family = await _resolve(host, port)
        return FastSession(
            self._endpoint(family),
            addr,
            auth.version,
            _community_bytes(auth.community.reveal()),
            options,
        )

    def close(self) -> None:
        for ep in self._endpoints.values():
            ep.close()
        self._endpoints.clear()


async def _resolve(host: str, port: int) -> tuple[tuple[str, int], socket.AddressFamily]:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        return (str(ip), port), family
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise SnmpError(Reason.RESOLVE, f"cannot resolve {host}: {type(exc).__name__}") from None
    if not infos:
        raise SnmpError(Reason.RESOLVE, f"cannot resolve {host}")
    family, _type, _proto, _name, sockaddr = infos[0]
    return (str(sockaddr[0]), int(sockaddr[1])), socket.AddressFamily(family)
