"""The UDP transport: one non-blocking socket per address family shared by every device.

Answers are matched by request-id *and* source address and late answers are dropped; ICMP
errors reach the unconnected socket only through Linux's ``IP_RECVERR`` error queue, which
hands back the datagram we sent, so its request-id says which request failed.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
import socket
import struct
import sys

from .ber import (
    RESPONSE,
    Cell,
    DecodeError,
    Header,
    decode_header,
    decode_varbinds,
)
from .client import Reason, SnmpError
from .profile import Oid

log = logging.getLogger("mspwatch.snmp.fastclient")

_IP_RECVERR = 11  # <linux/in.h>; not exported by the socket module
_SO_EE_ORIGIN_ICMP = 2
_MAX_DATAGRAM = 65535
_RECV_BUFFER = 4 << 20  # the kernel caps this at net.core.rmem_max
_IPV6_RECVERR = 25  # <linux/in6.h>
_SO_EE_ORIGIN_ICMP6 = 3


Answer = tuple[Header, list[tuple[Oid, Cell]]]


class PendingRequest:
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


def settle(fut: asyncio.Future[Answer | SnmpError | None], value: Answer | SnmpError | None) -> None:
    if not fut.done():
        fut.set_result(value)


class Endpoint:
    """One non-blocking UDP socket shared by all sessions of one address family."""

    def __init__(self, loop: asyncio.AbstractEventLoop, family: socket.AddressFamily) -> None:
        self.loop = loop
        self.family = family
        self.pending: dict[int, PendingRequest] = {}
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
            settle(req.future, SnmpError(Reason.UNREACHABLE, "client closed"))
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
            settle(req.future, SnmpError(Reason.PROTOCOL, f"unexpected PDU type 0x{header.pdu_type:02x}"))
            return
        try:
            varbinds = decode_varbinds(data, header.varbinds_start, header.varbinds_end, req.subtree)
        except (DecodeError, IndexError, ValueError) as exc:
            settle(req.future, SnmpError(Reason.PROTOCOL, f"malformed answer: {exc}"))
            return
        settle(req.future, (header, varbinds))

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
                settle(failed.future, SnmpError(Reason.UNREACHABLE, os.strerror(code)))
