"""SNMP client: GET and GETBULK walks with plain Python values, bounded by a deadline.

The collector talks only to the :class:`SnmpClient` / :class:`SnmpSession` protocols, so
the transport can change (for speed) without touching mapping or tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from mspwatch.exporters.core.deadline import Deadline

from .config import Auth, WalkOptions
from .profile import Oid, oid_str

log = logging.getLogger("mspwatch.snmp.client")

# Plain values: int for every integer type (Counter64 included), bytes for OCTET STRING and
# Opaque, a tuple for OBJECT IDENTIFIER, a dotted str for IpAddress.
Value = int | bytes | str | Oid


class Reason(StrEnum):
    """Why a device could not be scraped: the ``reason`` of ``snmp_scrape_error``."""

    TIMEOUT = "timeout"  # no answer within the request timeout (v1/v2c: also a wrong community)
    AUTH = "auth"  # v3 authentication or privacy failed, unknown user, not in time window
    UNREACHABLE = "unreachable"  # the network refused: no route, ICMP unreachable
    RESOLVE = "resolve"  # the target's host name does not resolve
    PROTOCOL = "protocol"  # the agent answered with an error or broken data
    NOT_INCREASING = "not_increasing"  # a walk's OIDs stopped increasing
    DEADLINE = "deadline"  # the scrape deadline was reached
    INTERNAL = "internal"  # the scrape crashed (a bug): see the exporter's log


class SnmpError(Exception):
    """A failed request with a bounded reason; ``detail`` is for logs, never credentials."""

    def __init__(self, reason: Reason, detail: str, partial: list[tuple[Oid, Value]] | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail
        self.partial = partial or []


@dataclass
class SessionStats:
    pdus_sent: int = 0
    retries: int = 0
    values: int = 0


class SnmpSession(Protocol):
    """One device, one scrape."""

    stats: SessionStats

    async def get(self, oids: Sequence[Oid], deadline: Deadline) -> dict[Oid, Value]:
        """GET scalars; OIDs the agent does not have are left out of the result."""
        ...

    async def walk(self, root: Oid, deadline: Deadline) -> list[tuple[Oid, Value]]:
        """Walk the subtree under ``root`` with GETBULK (GETNEXT for v1)."""
        ...


class SnmpClient(Protocol):
    async def session(self, host: str, port: int, auth: Auth, options: WalkOptions) -> SnmpSession: ...


# --- pysnmp implementation ------------------------------------------------------------------

_AUTH_ERRORS = {
    "UnknownUserName",
    "WrongDigest",
    "UnsupportedSecurityLevel",
    "NotInTimeWindow",
    "DecryptionError",
    "AuthenticationError",
    "AuthenticationFailure",
    "UnknownSecurityName",
    "UnknownCommunityName",
    "NoAuthentication",
    "NoEncryption",
    "UnknownEngineID",
}


class PysnmpClient:
    """The reference implementation on pysnmp 7's asyncio API.

    pysnmp keeps SNMPv3 users in its engine by user name: two auths with one user name and
    different keys (the usual MSP setup: the same user at every customer) would overwrite
    each other mid-scrape. So each distinct set of credentials gets an engine of its own.
    """

    MAX_ENGINES = 1024

    def __init__(self) -> None:
        self._engines: OrderedDict[Auth, Any] = OrderedDict()

    def _engine(self, auth: Auth) -> Any:
        from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

        engine = self._engines.pop(auth, None) or SnmpEngine()
        self._engines[auth] = engine
        while len(self._engines) > self.MAX_ENGINES:
            self._engines.popitem(last=False)
        return engine

    async def session(self, host: str, port: int, auth: Auth, options: WalkOptions) -> SnmpSession:
        from pysnmp.error import PySnmpError
        from pysnmp.hlapi.v3arch.asyncio import ContextData, Udp6TransportTarget, UdpTransportTarget

        cls = Udp6TransportTarget if ":" in host else UdpTransportTarget
        try:
            target = await cls.create((host, port), timeout=options.timeout, retries=0)
        except PySnmpError as exc:
            raise SnmpError(Reason.RESOLVE, f"cannot resolve {host}: {type(exc).__name__}") from None
        return _PysnmpSession(
            self._engine(auth),
            _auth_data(auth),
            target,
            ContextData(contextName=auth.context_name),
            options,
            auth.version,
        )


def _auth_data(auth: Auth) -> Any:
    from pysnmp.entity import config as c
    from pysnmp.hlapi.v3arch.asyncio import CommunityData, UsmUserData

    if auth.version in (1, 2):
        assert auth.community is not None
        return CommunityData(auth.community.reveal(), mpModel=0 if auth.version == 1 else 1)
    auth_protos = {
        "MD5": c.USM_AUTH_HMAC96_MD5,
        "SHA": c.USM_AUTH_HMAC96_SHA,
        "SHA224": c.USM_AUTH_HMAC128_SHA224,
        "SHA256": c.USM_AUTH_HMAC192_SHA256,
        "SHA384": c.USM_AUTH_HMAC256_SHA384,
        "SHA512": c.USM_AUTH_HMAC384_SHA512,
    }
    priv_protos = {
        "DES": c.USM_PRIV_CBC56_DES,
        "AES": c.USM_PRIV_CFB128_AES,
        "AES128": c.USM_PRIV_CFB128_AES,
        # AES192/256 as net-snmp and most agents do it (Blumenthal key extension); the "C"
        # variants are the Cisco (Reeder) key extension, named as snmp_exporter names them.
        "AES192": c.USM_PRIV_CFB192_AES_BLUMENTHAL,
        "AES256": c.USM_PRIV_CFB256_AES_BLUMENTHAL,
        "AES192C": c.USM_PRIV_CFB192_AES,
        "AES256C": c.USM_PRIV_CFB256_AES,
    }
    kwargs: dict[str, Any] = {}
    if auth.auth_protocol and auth.auth_password:
        kwargs["authKey"] = auth.auth_password.reveal()
        kwargs["authProtocol"] = auth_protos[auth.auth_protocol]
    if auth.priv_protocol and auth.priv_password:
        kwargs["privKey"] = auth.priv_password.reveal()
        kwargs["privProtocol"] = priv_protos[auth.priv_protocol]
    # The security level is the operator's explicit choice, validated in config.
    return UsmUserData(auth.username, **kwargs)  # noqa: S509


def _plain(val: Any) -> Value | None:
    """Convert a pyasn1 value to a plain one; ``None`` for the SNMP exception values."""
    from pyasn1.type import univ
    from pysnmp.proto import rfc1902

    if isinstance(val, univ.Null):  # noSuchObject, noSuchInstance, endOfMibView
        return None
    if isinstance(val, univ.ObjectIdentifier):
        return tuple(val)
    if isinstance(val, rfc1902.IpAddress):
        return ".".join(str(b) for b in val.asOctets())
    if isinstance(val, univ.OctetString):
        return bytes(val.asOctets())
    if isinstance(val, univ.Integer):
        return int(val)
    return None  # a type no SNMP agent should send; the row is skipped


class _PysnmpSession:
    def __init__(
        self,
        engine: Any,
        auth_data: Any,
        target: Any,
        context: Any,
        options: WalkOptions,
        version: int,
    ) -> None:
        self._engine = engine
        self._auth = auth_data
        self._target = target
        self._context = context
        self._options = options
        self._v1 = version == 1
        self.stats = SessionStats()

    async def _request(self, send: Any, deadline: Deadline) -> list[tuple[Oid, Any]]:
        """Send with retries; each attempt bounded by the request timeout and the deadline."""
        last = "no answer"
        for attempt in range(self._options.retries + 1):
            remaining = deadline.remaining()
            if remaining <= 0.005:
                raise SnmpError(Reason.DEADLINE, "scrape deadline reached")
            if attempt:
                self.stats.retries += 1
            self.stats.pdus_sent += 1
            try:
                async with asyncio.timeout(min(self._options.timeout, remaining)):
                    err_ind, err_status, err_index, var_binds = await send()
            except TimeoutError:
                last = "request timed out"
                continue
            except OSError as exc:
                raise SnmpError(Reason.UNREACHABLE, exc.strerror or type(exc).__name__) from None
            if err_ind is not None:
                name = type(err_ind).__name__
                if name == "RequestTimedOut":
                    last = "request timed out"
                    continue
                reason = Reason.AUTH if name in _AUTH_ERRORS else Reason.PROTOCOL
                raise SnmpError(reason, str(err_ind))
            if err_status and int(err_status) != 0:
                status = err_status.prettyPrint() if hasattr(err_status, "prettyPrint") else err_status
                if str(status) == "noSuchName":  # v1 end of view / missing OID
                    return []
                raise SnmpError(
                    Reason.AUTH if str(status) == "authorizationError" else Reason.PROTOCOL,
                    f"agent error-status {status} at index {err_index}",
                )
            return [(tuple(vb[0]), vb[1]) for vb in var_binds]
        if deadline.expired():
            raise SnmpError(Reason.DEADLINE, "scrape deadline reached")
        raise SnmpError(Reason.TIMEOUT, last)

    async def get(self, oids: Sequence[Oid], deadline: Deadline) -> dict[Oid, Value]:
        from pysnmp.hlapi.v3arch.asyncio import ObjectIdentity, ObjectType, get_cmd

        out: dict[Oid, Value] = {}
        if not oids:
            return out
        objs = [ObjectType(ObjectIdentity(o)) for o in oids]
        rows = await self._request(
            lambda: get_cmd(self._engine, self._auth, self._target, self._context, *objs, lookupMib=False),
            deadline,
        )
        for oid, raw in rows:
            val = _plain(raw)
            if val is not None:
                out[oid] = val
        self.stats.values += len(out)
        return out

    async def walk(self, root: Oid, deadline: Deadline) -> list[tuple[Oid, Value]]:
        from pysnmp.hlapi.v3arch.asyncio import ObjectIdentity, ObjectType, bulk_cmd, next_cmd

        out: list[tuple[Oid, Value]] = []
        last = root
        n = len(root)
        reps = self._options.max_repetitions
        while True:
            obj = ObjectType(ObjectIdentity(last))
            if self._v1:
                send = lambda o=obj: next_cmd(  # noqa: E731
                    self._engine, self._auth, self._target, self._context, o, lookupMib=False
                )
            else:
                send = lambda o=obj: bulk_cmd(  # noqa: E731
                    self._engine,
                    self._auth,
                    self._target,
                    self._context,
                    0,
                    reps,
                    o,
                    lookupMib=False,
                )
            try:
                rows = await self._request(send, deadline)
            except SnmpError as exc:
                exc.partial = out
                raise
            if not rows:
                return out
            for oid, raw in rows:
                if oid[:n] != root or type(raw).__name__ == "EndOfMibView":
                    return out
                val = _plain(raw)
                if oid <= last:
                    raise SnmpError(Reason.NOT_INCREASING, f"{oid_str(oid)} after {oid_str(last)}", out)
                last = oid
                self.stats.values += 1
                if val is None:  # a NULL or noSuch* inside the table: skip the cell, go on
                    continue
                out.append((oid, val))
                if len(out) >= self._options.max_rows_per_walk:
                    limit = self._options.max_rows_per_walk
                    raise SnmpError(Reason.PROTOCOL, f"more than max_rows_per_walk ({limit}) rows", out)
