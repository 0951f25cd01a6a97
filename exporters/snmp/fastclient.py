"""A fast SNMP v1/v2c client: a small BER codec over shared, non-blocking UDP sockets.

pysnmp builds a pyasn1 object tree for every PDU and spends most of an exporter's CPU there
(about 8x snmp_exporter per value). v1 and v2c messages are simple enough to encode and
decode by hand: a community string, one of four PDU types and a flat list of variable
bindings. This module does exactly that and nothing more; SNMPv3 (USM, engine discovery,
encryption) stays with :class:`~exporters.snmp.client.PysnmpClient`, and
:class:`DispatchingClient` picks the right one per auth.

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
import errno
import ipaddress
import logging
import os
import secrets
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from mspwatch.exporters.core.deadline import Deadline

from .client import PysnmpClient, Reason, SessionStats, SnmpClient, SnmpError, SnmpSession, Value
from .config import Auth, WalkOptions
from .profile import Oid, oid_str

log = logging.getLogger("mspwatch.snmp.fastclient")

# PDU tags (RFC 3416, context-specific constructed).
GET = 0xA0
GETNEXT = 0xA1
RESPONSE = 0xA2
GETBULK = 0xA5
_PDU_TAGS = frozenset(range(0xA0, 0xA9))

# Error-status names (RFC 3416), index = status.
ERROR_STATUS = (
    "noError",
    "tooBig",
    "noSuchName",
    "badValue",
    "readOnly",
    "genErr",
    "noAccess",
    "wrongType",
    "wrongLength",
    "wrongEncoding",
    "wrongValue",
    "noCreation",
    "inconsistentValue",
    "resourceUnavailable",
    "commitFailed",
    "undoFailed",
    "authorizationError",
    "notWritable",
    "inconsistentName",
)
NO_SUCH_NAME = 2
AUTHORIZATION_ERROR = 16

# Value tags: Counter32, Gauge32/Unsigned32, TimeTicks, Counter64, UInteger32 are unsigned.
_UNSIGNED = frozenset((0x41, 0x42, 0x43, 0x46, 0x47))
_STRINGS = frozenset((0x04, 0x44, 0x45))  # OCTET STRING, Opaque, NsapAddress
_EMPTY = frozenset((0x05, 0x80, 0x81))  # NULL, noSuchObject, noSuchInstance
END_OF_MIB_VIEW = 0x82


class _End:
    """endOfMibView: the agent has nothing after this OID (a walk ends here)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "endOfMibView"


END = _End()
# A decoded cell: a value, None for NULL/noSuchObject/noSuchInstance (skipped), or END.
Cell = Value | None | _End

_IP_RECVERR = 11  # <linux/in.h>; not exported by the socket module
_IPV6_RECVERR = 25  # <linux/in6.h>
_SO_EE_ORIGIN_ICMP = 2
_SO_EE_ORIGIN_ICMP6 = 3
_MAX_DATAGRAM = 65535
_RECV_BUFFER = 4 << 20  # the kernel caps this at net.core.rmem_max


class DecodeError(ValueError):
    """A datagram that is not a well-formed SNMP v1/v2c message."""


# --- encoding -------------------------------------------------------------------------------


def _len_bytes(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _len_bytes(len(content)) + content


def encode_integer(value: int) -> bytes:
    """A BER INTEGER TLV, minimal two's complement."""
    bits = value.bit_length() if value >= 0 else (-value - 1).bit_length()
    return _tlv(0x02, value.to_bytes(bits // 8 + 1, "big", signed=True))


def encode_oid(oid: Oid) -> bytes:
    """The content octets of an OBJECT IDENTIFIER (no tag or length)."""
    if len(oid) < 2 or not 0 <= oid[0] <= 2 or oid[1] < 0 or (oid[0] < 2 and oid[1] >= 40):
        raise ValueError(f"cannot encode OID {oid_str(oid)}")
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if 0 <= arc < 0x80:
            out.append(arc)
            continue
        if arc < 0:
            raise ValueError(f"cannot encode OID {oid_str(oid)}")
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def encode_request(
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    oids: Sequence[Oid],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """A GET / GETNEXT / GETBULK message; ``version`` is the wire value (0 = v1, 1 = v2c)."""
    return _encode(
        message_head(version, community), pdu_type, request_id, oids, non_repeaters, max_repetitions
    )


def message_head(version: int, community: bytes) -> bytes:
    """The octets every message of a session starts its SEQUENCE with."""
    return encode_integer(version) + _tlv(0x04, community)


_SMALL_INTS = tuple(encode_integer(i) for i in range(256))  # non-repeaters, max-repetitions


def _encode(
    head: bytes, pdu_type: int, request_id: int, oids: Sequence[Oid], non_repeaters: int, max_repetitions: int
) -> bytes:
    varbinds = b"".join(_tlv(0x30, _tlv(0x06, encode_oid(o)) + b"\x05\x00") for o in oids)
    small = _SMALL_INTS
    pdu = (
        encode_integer(request_id)
        + (small[non_repeaters] if 0 <= non_repeaters < 256 else encode_integer(non_repeaters))
        + (small[max_repetitions] if 0 <= max_repetitions < 256 else encode_integer(max_repetitions))
        + _tlv(0x30, varbinds)
    )
    return _tlv(0x30, head + _tlv(pdu_type, pdu))


# --- decoding -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """Everything of a message but its variable bindings."""

    version: int
    community: bytes
    pdu_type: int
    request_id: int
    error_status: int
    error_index: int
    varbinds_start: int
    varbinds_end: int


def _length(data: bytes, i: int, end: int) -> tuple[int, int]:
    """Decode the length octets at ``i``; return (length, offset of the content)."""
    if i >= end:
        raise DecodeError("truncated length")
    first = data[i]
    i += 1
    if first < 0x80:
        n = first
    elif first == 0x80 or first > 0x84:
        raise DecodeError("indefinite or oversized length")
    else:
        k = first & 0x7F
        if i + k > end:
            raise DecodeError("truncated length")
        n = int.from_bytes(data[i : i + k], "big")
        i += k
    if i + n > end:
        raise DecodeError("length runs past the end")
    return n, i


def _int_at(data: bytes, i: int, end: int) -> tuple[int, int]:
    """Decode an INTEGER TLV at ``i``; return (value, offset after it)."""
    if i >= end or data[i] != 0x02:
        raise DecodeError("INTEGER expected")
    n, j = _length(data, i + 1, end)
    if n == 0 or n > 9:
        raise DecodeError("bad INTEGER length")
    return int.from_bytes(data[j : j + n], "big", signed=True), j + n


# The first two arcs of an OID, by its first content octet (below 0x80).
_HEADS = tuple((f // 40, f % 40) if f < 80 else (2, f - 80) for f in range(0x80))


def decode_oid(body: bytes) -> Oid:
    """Decode OBJECT IDENTIFIER content octets."""
    if not body:
        raise DecodeError("empty OID")
    if body.isascii():  # every arc fits in one octet
        return _HEADS[body[0]] + tuple(body[1:])
    arcs: list[int] = []
    arc = 0
    fresh = True
    for b in body:
        if fresh and b == 0x80:
            raise DecodeError("non-minimal OID arc")
        arc = (arc << 7) | (b & 0x7F)
        fresh = not b & 0x80
        if fresh:
            arcs.append(arc)
            arc = 0
    if not fresh:
        raise DecodeError("truncated OID arc")
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return head + tuple(arcs[1:])


# Decoded OIDs by their content octets. The same OIDs come back on every scrape (and from
# every device of a kind), so most lookups hit; cleared when full, which bounds memory.
_OID_CACHE: dict[bytes, Oid] = {}
_OID_CACHE_MAX = 1 << 17


def decode_header(data: bytes) -> Header:
    """Decode a message up to its variable-binding list."""
    end = len(data)
    if end < 2 or data[0] != 0x30:
        raise DecodeError("not a SEQUENCE")
    n, i = _length(data, 1, end)
    if i + n != end:
        raise DecodeError("trailing octets after the message")
    version, i = _int_at(data, i, end)
    if i >= end or data[i] != 0x04:
        raise DecodeError("community expected")
    n, j = _length(data, i + 1, end)
    community = data[j : j + n]
    i = j + n
    if i >= end or data[i] not in _PDU_TAGS:
        raise DecodeError("unknown PDU type")
    pdu_type = data[i]
    n, i = _length(data, i + 1, end)
    if i + n != end:
        raise DecodeError("trailing octets after the PDU")
    request_id, i = _int_at(data, i, end)
    error_status, i = _int_at(data, i, end)
    error_index, i = _int_at(data, i, end)
    if i >= end or data[i] != 0x30:
        raise DecodeError("variable-binding list expected")
    n, i = _length(data, i + 1, end)
    if i + n != end:
        raise DecodeError("trailing octets after the variable bindings")
    return Header(version, community, pdu_type, request_id, error_status, error_index, i, end)


def decode_varbinds(
    data: bytes, start: int, end: int, subtree: bytes | None = None
) -> list[tuple[Oid, Cell]]:
    """Decode a variable-binding list; NULL and noSuch* become ``None``, endOfMibView ``END``.

    With ``subtree`` (the content octets of a walk's root OID), decoding stops after the
    first binding outside it: a GETBULK answer at the end of a column is mostly the next
    column's rows, which the walk would throw away anyway.
    """
    try:
        return _decode_varbinds(data, start, end, subtree)
    except IndexError:
        raise DecodeError("truncated variable binding") from None


def _decode_varbinds(data: bytes, start: int, end: int, subtree: bytes | None) -> list[tuple[Oid, Cell]]:
    # The hot loop of the client: short-form lengths are decoded inline, the long form
    # through _length; every length is checked against its enclosing end before use.
    out: list[tuple[Oid, Cell]] = []
    append = out.append
    heads = _HEADS
    cache = _OID_CACHE
    i = start
    while i < end:
        if data[i] != 0x30:
            raise DecodeError("variable binding expected")
        n = data[i + 1]
        if n < 0x80:
            j = i + 2
            vb_end = j + n
            if vb_end > end:
                raise DecodeError("variable binding runs past the end")
        else:
            n, j = _length(data, i + 1, end)
            vb_end = j + n
        if j + 2 > vb_end or data[j] != 0x06:
            raise DecodeError("OID expected")
        n = data[j + 1]
        if n < 0x80:
            j += 2
        else:
            n, j = _length(data, j + 1, vb_end)
        k = j + n
        if n == 0 or k + 2 > vb_end:
            raise DecodeError("bad OID or value missing")
        body = data[j:k]
        oid = cache.get(body)
        if oid is None:
            oid = heads[body[0]] + tuple(body[1:]) if body.isascii() else decode_oid(body)
            if len(cache) >= _OID_CACHE_MAX:
                cache.clear()
            cache[body] = oid
        tag = data[k]
        n = data[k + 1]
        if n < 0x80:
            j = k + 2
        else:
            n, j = _length(data, k + 1, vb_end)
        if j + n != vb_end:
            raise DecodeError("trailing octets in a variable binding")
        value: Cell
        if tag in _UNSIGNED:
            if n == 0 or n > 9:
                raise DecodeError("bad unsigned length")
            value = int.from_bytes(data[j:vb_end], "big")
        elif tag in _STRINGS:
            value = data[j:vb_end]
        elif tag == 0x02:
            if n == 0 or n > 9:
                raise DecodeError("bad INTEGER length")
            value = int.from_bytes(data[j:vb_end], "big", signed=True)
        elif tag in _EMPTY:
            value = None
        elif tag == END_OF_MIB_VIEW:
            value = END
        elif tag == 0x06:
            value = decode_oid(data[j:vb_end])
        elif tag == 0x40:
            if n != 4:
                raise DecodeError("IpAddress is not 4 octets")
            value = "%d.%d.%d.%d" % tuple(data[j:vb_end])  # noqa: UP031
        else:
            raise DecodeError(f"unknown value type 0x{tag:02x}")
        append((oid, value))
        if subtree is not None and not body.startswith(subtree):
            break  # left the walk's subtree: the rest is not wanted
        i = vb_end
    return out


def decode_message(data: bytes) -> tuple[Header, list[tuple[Oid, Cell]]]:
    """Decode a whole message; raises :class:`DecodeError` and nothing else."""
    try:
        header = decode_header(data)
        return header, decode_varbinds(data, header.varbinds_start, header.varbinds_end)
    except DecodeError:
        raise
    except (IndexError, ValueError, TypeError) as exc:  # belt and braces: never crash
        raise DecodeError(f"malformed message: {type(exc).__name__}") from None


# --- transport ------------------------------------------------------------------------------

Answer = tuple[Header, list[tuple[Oid, Cell]]]


class _Request:
    """One outstanding request: where it went and the future of the current attempt."""

    __slots__ = ("addr", "future", "malformed", "subtree")

    def __init__(
        self,
        addr: tuple[str, int],
        future: asyncio.Future[Answer | SnmpError | None],
        subtree: bytes | None = None,
    ):
        self.addr = addr
        self.future = future
        self.malformed = False
        self.subtree = subtree


def _finish(fut: asyncio.Future[Answer | SnmpError | None], value: Answer | SnmpError | None) -> None:
    if not fut.done():
        fut.set_result(value)


class _Endpoint:
    """One non-blocking UDP socket shared by all sessions of one address family."""

    def __init__(self, loop: asyncio.AbstractEventLoop, family: socket.AddressFamily) -> None:
        self.loop = loop
        self.family = family
        self.pending: dict[int, _Request] = {}
        self._next_id = 1 + secrets.randbelow(0x7FFFFFFE)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if sys.platform.startswith("linux"):
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
                else:
                    sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
            # One socket takes every device's answers: give it room for bursts. The kernel
            # caps SO_RCVBUF at net.core.rmem_max; SO_RCVBUFFORCE may exceed it (as root).
            try:
                sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), _RECV_BUFFER)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECV_BUFFER)
            sock.bind(("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0))
            loop.add_reader(sock.fileno(), self._readable)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.loop.is_closed():
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for req in self.pending.values():
            _finish(req.future, SnmpError(Reason.UNREACHABLE, "client closed"))
        self.pending.clear()

    def new_id(self) -> int:
        rid = self._next_id
        while rid in self.pending:
            rid = rid % 0x7FFFFFFF + 1
        self._next_id = rid % 0x7FFFFFFF + 1
        return rid

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            pass  # the send buffer is full: as good as a lost datagram, a retry follows
        except OSError as exc:
            raise SnmpError(Reason.UNREACHABLE, exc.strerror or type(exc).__name__) from None

    def _readable(self) -> None:
        received = 0
        for _ in range(256):  # bounded, so one busy socket cannot starve the loop
            try:
                data, addr = self.sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._drain_errors()  # an ICMP error: find the request it belongs to
                continue
            received += 1
            self._datagram(data, addr)
        if not received:
            # Woken with nothing to read: an error queue entry (EPOLLERR) must be drained,
            # or the loop would wake us again at once.
            self._drain_errors()

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            header = decode_header(data)
        except (DecodeError, IndexError, ValueError):
            # Cannot tell which request it answers; mark every request to that address so
            # a timeout is reported as the agent's broken answer.
            for other in self.pending.values():
                if other.addr[:2] == addr[:2]:
                    other.malformed = True
            return
        req = self.pending.get(header.request_id)
        if req is None or req.addr[:2] != addr[:2]:
            return  # late (already timed out for good) or not from the agent we asked
        if header.pdu_type != RESPONSE:
            _finish(req.future, SnmpError(Reason.PROTOCOL, f"unexpected PDU type 0x{header.pdu_type:02x}"))
            return
        try:
            varbinds = decode_varbinds(data, header.varbinds_start, header.varbinds_end, req.subtree)
        except (DecodeError, IndexError, ValueError) as exc:
            _finish(req.future, SnmpError(Reason.PROTOCOL, f"malformed answer: {exc}"))
            return
        _finish(req.future, (header, varbinds))

    def _drain_errors(self) -> None:
        if not sys.platform.startswith("linux"):
            return
        for _ in range(256):
            try:
                data, ancdata, _flags, dest = self.sock.recvmsg(_MAX_DATAGRAM, 512, socket.MSG_ERRQUEUE)
            except OSError:
                return
            code = errno.EHOSTUNREACH
            for _level, _type, cdata in ancdata:
                if len(cdata) >= 8:
                    ee_errno, origin = struct.unpack_from("=IB", cdata)
                    if origin in (_SO_EE_ORIGIN_ICMP, _SO_EE_ORIGIN_ICMP6) and ee_errno:
                        code = ee_errno
            try:
                rid = decode_header(data).request_id  # the datagram we sent
            except (DecodeError, IndexError, ValueError):
                continue
            failed = self.pending.get(rid)
            if failed is not None and (not dest or failed.addr[:2] == tuple(dest)[:2]):
                _finish(failed.future, SnmpError(Reason.UNREACHABLE, os.strerror(code)))


# --- sessions -------------------------------------------------------------------------------


class FastSession:
    """One v1/v2c device for one scrape, on a shared :class:`_Endpoint`."""

    def __init__(
        self,
        endpoint: _Endpoint,
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
        req = _Request(self._addr, loop.create_future(), subtree)
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
                timer = loop.call_later(min(self._options.timeout, remaining), _finish, fut, None)
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
        self._endpoints: dict[tuple[int, socket.AddressFamily], _Endpoint] = {}

    def _endpoint(self, family: socket.AddressFamily) -> _Endpoint:
        loop = asyncio.get_running_loop()
        key = (id(loop), family)
        ep = self._endpoints.get(key)
        if ep is None or ep.closed or ep.loop is not loop:
            for stale in [k for k, e in self._endpoints.items() if e.loop.is_closed()]:
                self._endpoints.pop(stale).close()
            ep = _Endpoint(loop, family)
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


class DispatchingClient:
    """The exporter's default client: the fast codec for v1/v2c, pysnmp for v3.

    pysnmp's engine is only built when the first v3 device is scraped.
    """

    def __init__(self) -> None:
        self.fast = FastSnmpClient()
        self._v3: SnmpClient | None = None

    async def session(self, host: str, port: int, auth: Auth, options: WalkOptions) -> SnmpSession:
        if auth.version in (1, 2):
            return await self.fast.session(host, port, auth, options)
        if self._v3 is None:
            self._v3 = PysnmpClient()
        return await self._v3.session(host, port, auth, options)

    def close(self) -> None:
        self.fast.close()
