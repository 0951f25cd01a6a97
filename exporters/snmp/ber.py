"""The BER codec of SNMP v1/v2c messages: pure functions, no I/O.

A request is a community string, one of four PDU types and a flat list of variable
bindings; decoding never trusts a length: every malformed datagram raises
:class:`DecodeError`, never a crash or a hang.

>>> encode_oid((1, 3, 6, 1, 2, 1, 1, 3, 0)).hex()
'2b06010201010300'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .client import Value
from .profile import Oid, oid_str

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
