"""The fast v1/v2c client: codec against pysnmp's encoder, fuzzing, timeouts, matching.

pysnmp's own BER encoder and decoder are the reference for every message. Network tests
use fake agents on 127.0.0.1 (asyncio datagram endpoints) that answer what the test says,
and the real snmpsim estate for a walk-for-walk comparison with the pysnmp client.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.ber import encoder as ber_encoder
from pysnmp.proto import api

from mspwatch.common.secrets import Secret
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.snmp.ber import (
    END,
    GET,
    GETBULK,
    GETNEXT,
    DecodeError,
    decode_message,
    decode_oid,
    decode_varbinds,
    encode_oid,
    encode_request,
)
from mspwatch.exporters.snmp.client import PysnmpClient, SnmpError, _plain
from mspwatch.exporters.snmp.config import Auth, WalkOptions
from mspwatch.exporters.snmp.dispatch import DispatchingClient
from mspwatch.exporters.snmp.fastclient import FastSession, FastSnmpClient

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
V1 = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
IF_DESCR = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)


def v2(community: str = "public") -> Auth:
    return Auth(version=2, community=Secret(community))


def opts(**kw: Any) -> WalkOptions:
    return WalkOptions(**{"timeout": 0.5, "retries": 0, **kw})


# --- building messages with pysnmp (the reference encoder) ----------------------------------


def pysnmp_response(
    request_id: int,
    varbinds: list[tuple[tuple[int, ...], Any]],
    *,
    error_status: int = 0,
    error_index: int = 0,
    community: str = "public",
    proto: Any = V2C,
) -> bytes:
    pdu = proto.GetResponsePDU()
    proto.apiPDU.set_defaults(pdu)
    proto.apiPDU.set_request_id(pdu, request_id)
    proto.apiPDU.set_error_status(pdu, error_status)
    proto.apiPDU.set_error_index(pdu, error_index)
    proto.apiPDU.set_varbinds(pdu, [(proto.ObjectIdentifier(o), v) for o, v in varbinds])
    msg = proto.Message()
    proto.apiMessage.set_defaults(msg)
    proto.apiMessage.set_community(msg, community)
    proto.apiMessage.set_pdu(msg, pdu)
    return bytes(ber_encoder.encode(msg))


def pysnmp_decode(data: bytes) -> Any:
    msg, rest = ber_decoder.decode(data, asn1Spec=V2C.Message())
    assert not rest
    return msg


SAMPLE_VALUES: list[tuple[tuple[int, ...], Any]] = [
    ((1, 3, 6, 1, 2, 1, 1, 1, 0), V2C.OctetString(b"Linux box \x00\xff binary")),
    ((1, 3, 6, 1, 2, 1, 1, 2, 0), V2C.ObjectIdentifier((1, 3, 6, 1, 4, 1, 8072, 3, 2, 10))),
    ((1, 3, 6, 1, 2, 1, 1, 3, 0), V2C.TimeTicks(4294967295)),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 1), V2C.Integer(1)),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 2), V2C.Integer(-2147483648)),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 3), V2C.Integer(-1)),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1), V2C.Counter32(4294967295)),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 2), V2C.Counter32(0)),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 5, 1), V2C.Gauge32(2147483648)),
    ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), V2C.Counter64(18446744073709551615)),
    ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 2), V2C.Counter64(128)),
    ((1, 3, 6, 1, 2, 1, 4, 20, 1, 1, 10, 0, 0, 1), V2C.IpAddress("10.0.0.1")),
    ((1, 3, 6, 1, 4, 1, 2021, 10, 1, 6, 1), V2C.Opaque(b"\x9f\x78\x04\x3d\x4c\xcc\xcd")),
    ((1, 3, 6, 1, 4, 1, 4294967295, 16384, 128, 127), V2C.Unsigned32(7)),
    ((2, 999, 1), V2C.OctetString(b"")),
    ((1, 3, 6, 1, 2, 1, 1, 9, 0), V2C.NoSuchObject("")),
    ((1, 3, 6, 1, 2, 1, 1, 9, 1), V2C.NoSuchInstance("")),
    ((1, 3, 6, 1, 2, 1, 1, 9, 2), V2C.EndOfMibView("")),
    ((1, 3, 6, 1, 2, 1, 1, 9, 3), V2C.Null("")),
]


# --- codec ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pdu_type", [GET, GETNEXT, GETBULK])
def test_requests_decode_with_pysnmp(pdu_type: int) -> None:
    oids = [(1, 3, 6, 1, 2, 1, 1, 3, 0), (1, 3, 6, 1, 4, 1, 4294967295, 200, 0), (2, 999, 3)]
    data = encode_request(1, b"s3cr\xe9t", pdu_type, 0x7FFFFFFF, oids, 0, 25)
    msg = pysnmp_decode(data)
    assert int(msg["version"]) == 1
    assert bytes(msg["community"]) == b"s3cr\xe9t"
    pdu = V2C.apiMessage.get_pdu(msg)
    assert V2C.apiPDU.get_request_id(pdu) == 0x7FFFFFFF
    assert [tuple(o) for o, _ in V2C.apiPDU.get_varbinds(pdu)] == oids
    kind = {GET: "get-request", GETNEXT: "get-next-request", GETBULK: "get-bulk-request"}[pdu_type]
    assert msg["data"].getName() == kind
    if pdu_type == GETBULK:
        assert int(pdu["non-repeaters"]) == 0
        assert int(pdu["max-repetitions"]) == 25


def test_v1_request_decodes_with_pysnmp() -> None:
    data = encode_request(0, b"public", GETNEXT, 5, [IF_DESCR])
    msg, _ = ber_decoder.decode(data, asn1Spec=V1.Message())
    assert int(msg["version"]) == 0
    assert [tuple(o) for o, _ in V1.apiPDU.get_varbinds(V1.apiMessage.get_pdu(msg))] == [IF_DESCR]


def test_response_values_match_pysnmp() -> None:
    data = pysnmp_response(123456, SAMPLE_VALUES, community="public")
    header, varbinds = decode_message(data)
    assert (header.version, header.community, header.pdu_type) == (1, b"public", 0xA2)
    assert (header.request_id, header.error_status, header.error_index) == (123456, 0, 0)
    reference = V2C.apiPDU.get_varbinds(V2C.apiMessage.get_pdu(pysnmp_decode(data)))
    expected = [(tuple(o), END if type(v).__name__ == "EndOfMibView" else _plain(v)) for o, v in reference]
    assert varbinds == expected
    assert len(varbinds) == len(SAMPLE_VALUES)


def test_error_status_and_index_decoded() -> None:
    data = pysnmp_response(9, [(SYS_UPTIME, V2C.Null(""))], error_status=5, error_index=1)
    header, _ = decode_message(data)
    assert (header.error_status, header.error_index) == (5, 1)


def test_long_form_lengths() -> None:
    rows = [((*IF_DESCR, i), V2C.OctetString(b"x" * 300)) for i in range(1, 120)]
    data = pysnmp_response(1, rows)
    assert len(data) > 0xFFFF // 2
    _, varbinds = decode_message(data)
    assert varbinds == [(o, b"x" * 300) for o, _ in rows]


def test_oid_round_trips_against_pysnmp() -> None:
    rnd = random.Random(7)
    for _ in range(2000):
        first = rnd.randrange(3)
        second = rnd.randrange(40) if first < 2 else rnd.choice([0, 39, 40, 47, 999, 2**20])
        rest = [
            rnd.choice([0, 1, 127, 128, 16383, 16384, 2**31, 2**32 - 1, rnd.randrange(2**32)])
            for _ in range(rnd.randrange(12))
        ]
        oid = (first, second, *rest)
        body = encode_oid(oid)
        reference = ber_encoder.encode(V2C.ObjectIdentifier(oid))
        assert reference.endswith(body)  # the same content octets after tag and length
        assert decode_oid(body) == oid


@pytest.mark.parametrize("oid", [(1,), (3, 1), (1, 40), (1, 3, -1)])
def test_invalid_oids_refused_by_encoder(oid: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        encode_oid(oid)


# --- malformed input ------------------------------------------------------------------------


def _mutations(seed: bytes, rnd: random.Random) -> Iterator[bytes]:
    yield b""
    for cut in range(len(seed)):
        yield seed[:cut]  # every truncation
    for _ in range(3000):
        data = bytearray(seed)
        for _ in range(rnd.randrange(1, 4)):
            pos = rnd.randrange(len(data))
            op = rnd.randrange(4)
            if op == 0:
                data[pos] ^= 1 << rnd.randrange(8)
            elif op == 1:
                data[pos] = rnd.choice([0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0x85, 0xFF])
            elif op == 2:
                del data[pos]
            else:
                data.insert(pos, rnd.randrange(256))
        yield bytes(data)
    for _ in range(3000):
        yield bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 80)))
        yield b"\x30" + bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 80)))


def test_decoder_fuzz_never_crashes() -> None:
    """Truncated, bit-flipped and random datagrams raise DecodeError, nothing else."""
    rnd = random.Random(20261128)
    seed = pysnmp_response(77, SAMPLE_VALUES)
    decoded = rejected = 0
    for data in _mutations(seed, rnd):
        try:
            header, varbinds = decode_message(data)
        except DecodeError:
            rejected += 1
            continue
        decoded += 1
        assert isinstance(header.request_id, int)
        assert all(isinstance(o, tuple) for o, _ in varbinds)
    assert rejected > 3000
    assert decoded > 0  # some mutations are still valid messages (e.g. a changed value)


@pytest.mark.parametrize(
    "data",
    [
        b"\x30\x80" + b"\x00" * 10,  # indefinite length
        b"\x30\x85\x00\x00\x00\x00\x05\x02\x01\x01",  # 5 length octets
        b"\x30\x84\xff\xff\xff\xff\x02\x01\x01",  # length past the end
        b"\x30\x03\x02\x01\x01",  # no community, no PDU
        b"\x30\x0b\x02\x01\x01\x04\x00\xa2\x04\x02\x00\x02\x00",  # zero-length INTEGER
    ],
)
def test_hostile_lengths_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(data)


# --- fake agents ----------------------------------------------------------------------------

Handler = Callable[[bytes], list[bytes]]


class FakeAgent(asyncio.DatagramProtocol):
    """Answers each request with whatever ``handler`` returns (possibly nothing)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests.append(data)
        assert self.transport is not None
        for answer in self.handler(data):
            self.transport.sendto(answer, addr)


async def start_agent(handler: Handler) -> tuple[FakeAgent, int]:
    loop = asyncio.get_running_loop()
    transport, agent = await loop.create_datagram_endpoint(
        lambda: FakeAgent(handler), local_addr=("127.0.0.1", 0)
    )
    # Room for hundreds of concurrent requests (tests below send them in one burst).
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return agent, transport.get_extra_info("sockname")[1]


def request_of(data: bytes) -> tuple[int, list[tuple[int, ...]], int, int]:
    """(request-id, OIDs, pdu type, max-repetitions) of a request the client sent."""
    header, varbinds = decode_message(data)
    return header.request_id, [o for o, _ in varbinds], header.pdu_type, header.error_index


def table_agent(rows: dict[tuple[int, ...], Any]) -> Handler:
    """A correct agent serving ``rows`` for GET, GETNEXT and GETBULK."""
    ordered = sorted(rows)

    def handle(data: bytes) -> list[bytes]:
        rid, oids, kind, reps = request_of(data)
        if kind == GET:
            out = [(o, rows.get(o, V2C.NoSuchObject(""))) for o in oids]
        else:
            after = [o for o in ordered if o > oids[0]]
            count = reps if kind == GETBULK else 1
            out = [(o, rows[o]) for o in after[:count]]
            if len(out) < count:
                out.append((after[-1] if after else oids[0], V2C.EndOfMibView("")))
        return [pysnmp_response(rid, out)]

    return handle


@pytest.fixture
async def client() -> AsyncIterator[FastSnmpClient]:
    c = FastSnmpClient()
    yield c
    c.close()


IF_ROWS = {(*IF_DESCR, i): V2C.OctetString(f"port{i}".encode()) for i in range(1, 61)}
IF_ROWS[(1, 3, 6, 1, 2, 1, 2, 2, 1, 3, 1)] = V2C.Integer(6)  # the next column


async def test_walk_and_get_against_fake_agent(client: FastSnmpClient) -> None:
    agent, port = await start_agent(table_agent({**IF_ROWS, SYS_UPTIME: V2C.TimeTicks(42)}))
    session = await client.session("127.0.0.1", port, v2(), opts(max_repetitions=25))
    rows = await session.walk(IF_DESCR, Deadline.after(5))
    assert rows == [((*IF_DESCR, i), f"port{i}".encode()) for i in range(1, 61)]
    assert session.stats.pdus_sent == 3  # 25 + 25 + 10 rows and the next column's first
    got = await session.get([SYS_UPTIME, SYS_OBJECT_ID], Deadline.after(5))
    assert got == {SYS_UPTIME: 42}  # noSuchObject is left out
    assert session.stats.values == 61
    assert [request_of(r)[2] for r in agent.requests] == [GETBULK] * 3 + [GET]


def test_decoding_stops_after_leaving_the_subtree() -> None:
    rows = [((*IF_DESCR, i), V2C.OctetString(b"x")) for i in (1, 2)]
    rows += [
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 3, 1), V2C.Integer(6)),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 3, 2), V2C.Integer(6)),
    ]
    data = pysnmp_response(1, rows)
    header, _ = decode_message(data)
    subtree = encode_oid(IF_DESCR)
    got = decode_varbinds(data, header.varbinds_start, header.varbinds_end, subtree)
    assert got == [(o, _plain(v)) for o, v in rows[:3]]  # the first one outside ends it
    assert decode_varbinds(data, header.varbinds_start, header.varbinds_end) == [
        (o, _plain(v)) for o, v in rows
    ]


async def test_walk_ignores_a_broken_tail_past_its_column(client: FastSnmpClient) -> None:
    def handle(data: bytes) -> list[bytes]:
        rid, _oids, _kind, _reps = request_of(data)
        good = pysnmp_response(
            rid,
            [
                ((*IF_DESCR, 1), V2C.OctetString(b"a")),
                ((1, 3, 6, 1, 2, 1, 2, 2, 1, 3, 1), V2C.Integer(6)),
                ((1, 3, 6, 1, 2, 1, 2, 2, 1, 3, 2), V2C.OctetString(b"abcdef")),
            ],
        )
        return [good[:-8] + b"\x09\x06abcdef"]  # the next column's second row is broken

    _agent, port = await start_agent(handle)
    session = await client.session("127.0.0.1", port, v2(), opts())
    assert await session.walk(IF_DESCR, Deadline.after(5)) == [((*IF_DESCR, 1), b"a")]


async def test_unencodable_oid_is_a_bounded_error(client: FastSnmpClient) -> None:
    _agent, port = await start_agent(lambda data: [])
    session = await client.session("127.0.0.1", port, v2(), opts())
    with pytest.raises(SnmpError) as err:
        await session.walk((1, 40, 1), Deadline.after(5))
    assert err.value.reason == "protocol"


async def test_v1_walks_with_getnext_and_drops_missing_oids(client: FastSnmpClient) -> None:
    rows = {(*IF_DESCR, i): V1.OctetString(b"p") for i in (1, 2, 3)}
    rows[SYS_UPTIME] = V1.TimeTicks(5)

    def handle(data: bytes) -> list[bytes]:
        header, varbinds = decode_message(data)
        oids = [o for o, _ in varbinds]
        if header.pdu_type == GET:
            for n, o in enumerate(oids, 1):
                if o not in rows:  # v1: the whole GET fails with noSuchName
                    return [
                        pysnmp_response(
                            header.request_id,
                            [(x, V1.Null("")) for x in oids],
                            error_status=2,
                            error_index=n,
                            proto=V1,
                        )
                    ]
            return [pysnmp_response(header.request_id, [(o, rows[o]) for o in oids], proto=V1)]
        after = [o for o in sorted(rows) if o > oids[0]]
        if not after:
            return [
                pysnmp_response(
                    header.request_id, [(oids[0], V1.Null(""))], error_status=2, error_index=1, proto=V1
                )
            ]
        return [pysnmp_response(header.request_id, [(after[0], rows[after[0]])], proto=V1)]

    agent, port = await start_agent(handle)
    session = await client.session("127.0.0.1", port, Auth(version=1, community=Secret("public")), opts())
    assert [o for o, _ in await session.walk(IF_DESCR, Deadline.after(5))] == sorted(
        o for o in rows if o[:10] == IF_DESCR
    )
    assert {request_of(r)[2] for r in agent.requests} == {GETNEXT}
    got = await session.get([SYS_OBJECT_ID, SYS_UPTIME], Deadline.after(5))
    assert got == {SYS_UPTIME: 5}
    assert all(decode_message(r)[0].version == 0 for r in agent.requests)


async def test_not_increasing_walk_fails_with_partial(client: FastSnmpClient) -> None:
    def handle(data: bytes) -> list[bytes]:
        rid, _oids, _kind, _reps = request_of(data)
        return [
            pysnmp_response(
                rid,
                [
                    ((*IF_DESCR, 1), V2C.OctetString(b"a")),
                    ((*IF_DESCR, 2), V2C.OctetString(b"b")),
                    ((*IF_DESCR, 2), V2C.OctetString(b"b")),
                ],
            )
        ]

    _agent, port = await start_agent(handle)
    session = await client.session("127.0.0.1", port, v2(), opts())
    with pytest.raises(SnmpError) as err:
        await session.walk(IF_DESCR, Deadline.after(5))
    assert err.value.reason == "not_increasing"
    assert [o for o, _ in err.value.partial] == [(*IF_DESCR, 1), (*IF_DESCR, 2)]


async def test_agent_that_loops_is_bounded_by_max_rows(client: FastSnmpClient) -> None:
    counter = iter(range(1, 10**6))

    def handle(data: bytes) -> list[bytes]:
        rid, _oids, _kind, reps = request_of(data)
        return [pysnmp_response(rid, [((*IF_DESCR, next(counter)), V2C.Integer(0)) for _ in range(reps)])]

    _agent, port = await start_agent(handle)
    session = await client.session("127.0.0.1", port, v2(), opts(max_rows_per_walk=500))
    with pytest.raises(SnmpError) as err:  # a table cut short is a failure, not a silent cut
        await session.walk(IF_DESCR, Deadline.after(5))
    assert err.value.reason == "protocol"
    assert len(err.value.partial) == 500


@pytest.mark.parametrize(
    ("status", "reason"), [(5, "protocol"), (16, "auth"), (1, "protocol"), (99, "protocol")]
)
async def test_error_status(client: FastSnmpClient, status: int, reason: str) -> None:
    def handle(data: bytes) -> list[bytes]:
        rid, oids, _kind, _reps = request_of(data)
        return [pysnmp_response(rid, [(o, V2C.Null("")) for o in oids], error_status=status, error_index=1)]

    _agent, port = await start_agent(handle)
    session = await client.session("127.0.0.1", port, v2(), opts())
    with pytest.raises(SnmpError) as err:
        await session.get([SYS_UPTIME], Deadline.after(5))
    assert err.value.reason == reason
    with pytest.raises(SnmpError) as err:
        await session.walk(IF_DESCR, Deadline.after(5))
    assert err.value.reason == reason


async def test_wrong_request_id_and_stray_datagrams_are_ignored(client: FastSnmpClient) -> None:
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))

    def handle(data: bytes) -> list[bytes]:
        rid, oids, _kind, _reps = request_of(data)
        client_port = next(iter(client._endpoints.values())).sock.getsockname()[1]
        # The same request-id from another port: not the agent we asked, must be dropped.
        stranger.sendto(pysnmp_response(rid, [(oids[0], V2C.Integer(666))]), ("127.0.0.1", client_port))
        return [
            pysnmp_response(rid + 1, [(oids[0], V2C.Integer(1))]),  # someone else's answer
            pysnmp_response(rid, [(oids[0], V2C.Integer(2))], community="other"),
            b"\x30\x03garbage",
        ]

    try:
        _agent, port = await start_agent(handle)
        session = await client.session("127.0.0.1", port, v2(), opts())
        got = await session.get([SYS_UPTIME], Deadline.after(5))
    finally:
        stranger.close()
    assert got == {SYS_UPTIME: 2}


async def test_late_answer_to_first_try_completes_the_retry(client: FastSnmpClient) -> None:
    loop = asyncio.get_running_loop()
    answers: list[bytes] = []

    def handle(data: bytes) -> list[bytes]:
        if not answers:  # the first try: answer it only after the client has retried
            rid, oids, _kind, _reps = request_of(data)
            answers.append(pysnmp_response(rid, [(oids[0], V2C.Integer(9))]))
        return []

    agent, port = await start_agent(handle)
    session = await client.session("127.0.0.1", port, v2(), opts(timeout=0.2, retries=2))
    client_port = 0

    def late() -> None:
        assert agent.transport is not None
        agent.transport.sendto(answers[0], ("127.0.0.1", client_port))

    task = asyncio.ensure_future(session.get([SYS_UPTIME], Deadline.after(5)))
    await asyncio.sleep(0.05)
    client_port = next(iter(client._endpoints.values())).sock.getsockname()[1]
    loop.call_later(0.25, late)  # after the first try timed out, during the second
    assert await task == {SYS_UPTIME: 9}
    assert session.stats.retries == 1
    assert len(agent.requests) == 2


async def test_silent_agent_times_out_with_retries(client: FastSnmpClient) -> None:
    agent, port = await start_agent(lambda data: [])
    session = await client.session("127.0.0.1", port, v2(), opts(timeout=0.2, retries=2))
    start = time.monotonic()
    with pytest.raises(SnmpError) as err:
        await session.walk(IF_DESCR, Deadline.after(5))
    took = time.monotonic() - start
    assert err.value.reason == "timeout"
    assert 0.55 < took < 3.0  # three tries of 0.2 s (slack for a loaded CI machine)
    assert (session.stats.pdus_sent, session.stats.retries) == (3, 2)
    assert len({request_of(r)[0] for r in agent.requests}) == 1  # retries keep the request-id
    assert not next(iter(client._endpoints.values())).pending


async def test_deadline_cuts_a_slow_request_short(client: FastSnmpClient) -> None:
    _agent, port = await start_agent(lambda data: [])
    session = await client.session("127.0.0.1", port, v2(), opts(timeout=10, retries=3))
    start = time.monotonic()
    with pytest.raises(SnmpError) as err:
        await session.get([SYS_UPTIME], Deadline.after(0.3))
    assert err.value.reason == "deadline"
    assert time.monotonic() - start < 3  # not the 10 s request timeout


async def test_garbage_only_agent_reports_protocol(client: FastSnmpClient) -> None:
    rnd = random.Random(3)
    _agent, port = await start_agent(lambda data: [bytes(rnd.randrange(256) for _ in range(40))])
    session = await client.session("127.0.0.1", port, v2(), opts(timeout=0.2))
    with pytest.raises(SnmpError) as err:
        await session.get([SYS_UPTIME], Deadline.after(5))
    assert err.value.reason == "protocol"


async def test_malformed_varbinds_with_our_request_id_fail_fast(client: FastSnmpClient) -> None:
    def handle(data: bytes) -> list[bytes]:
        rid, oids, _kind, _reps = request_of(data)
        good = pysnmp_response(rid, [(oids[0], V2C.OctetString(b"abcdef"))])
        return [good[:-8] + b"\x09\x06abcdef"]  # a REAL, no SNMP type, where the string was

    _agent, port = await start_agent(handle)
    session = await client.session("127.0.0.1", port, v2(), opts(timeout=10))
    start = time.monotonic()
    with pytest.raises(SnmpError) as err:
        await session.get([SYS_UPTIME], Deadline.after(20))
    assert err.value.reason == "protocol"
    assert time.monotonic() - start < 5  # at once, not after the 10 s timeout


async def test_fuzzing_agent_never_hangs_or_crashes(client: FastSnmpClient) -> None:
    """Answers mutated from real ones: every request ends within its bound, with a reason."""
    rnd = random.Random(11)
    valid = table_agent(IF_ROWS)

    def handle(data: bytes) -> list[bytes]:
        answer = bytearray(valid(data)[0])
        for _ in range(rnd.randrange(1, 3)):
            answer[rnd.randrange(len(answer))] = rnd.randrange(256)
        return [bytes(answer)]

    _agent, port = await start_agent(handle)
    outcomes: set[str] = set()
    for _ in range(150):
        session = await client.session("127.0.0.1", port, v2(), opts(timeout=0.05))
        try:
            await session.walk(IF_DESCR, Deadline.after(2))
            outcomes.add("ok")
        except SnmpError as exc:
            outcomes.add(exc.reason)
    assert outcomes <= {"ok", "protocol", "timeout", "not_increasing", "deadline"}
    assert "protocol" in outcomes


async def test_port_unreachable_is_reported_at_once(client: FastSnmpClient) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    session = await client.session("127.0.0.1", port, v2(), opts(timeout=10, retries=1))
    start = time.monotonic()
    with pytest.raises(SnmpError) as err:
        await session.get([SYS_UPTIME], Deadline.after(20))
    assert err.value.reason == "unreachable"
    assert time.monotonic() - start < 5  # at once, not after the 10 s timeout


async def test_unresolvable_host(client: FastSnmpClient) -> None:
    with pytest.raises(SnmpError) as err:
        await client.session("no-such-host.invalid", 161, v2(), opts())
    assert err.value.reason == "resolve"


async def test_ipv6_loopback(client: FastSnmpClient) -> None:
    loop = asyncio.get_running_loop()
    try:
        transport, _agent = await loop.create_datagram_endpoint(
            lambda: FakeAgent(table_agent({SYS_UPTIME: V2C.TimeTicks(3)})), local_addr=("::1", 0)
        )
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = transport.get_extra_info("sockname")[1]
    session = await client.session("::1", port, v2(), opts())
    assert await session.get([SYS_UPTIME], Deadline.after(5)) == {SYS_UPTIME: 3}
    transport.close()


async def test_many_concurrent_sessions_share_one_socket(client: FastSnmpClient) -> None:
    _agent, port = await start_agent(table_agent(IF_ROWS))

    async def one() -> int:
        # Generous bounds: the test is about sharing one socket, not about speed on a busy machine.
        session = await client.session("127.0.0.1", port, v2(), opts(timeout=10))
        return len(await session.walk(IF_DESCR, Deadline.after(60)))

    results = await asyncio.gather(*(one() for _ in range(200)))
    assert results == [60] * 200
    assert len(client._endpoints) == 1


async def test_dispatching_client_picks_by_version() -> None:
    client = DispatchingClient()
    try:
        fast = await client.session("127.0.0.1", 161, v2(), opts())
        assert isinstance(fast, FastSession)
        v3 = Auth(
            version=3,
            username="u",
            security_level="authPriv",
            auth_protocol="SHA256",
            auth_password=Secret("a" * 12),
            priv_protocol="AES256",
            priv_password=Secret("p" * 12),
        )
        slow = await client.session("127.0.0.1", 161, v3, opts())
        assert not isinstance(slow, FastSession)
    finally:
        client.close()


# --- the real estate: walk for walk the same as pysnmp ---------------------------------------

ESTATE_WALKS = [
    ("switch-cisco-c3560", (1, 3, 6, 1, 2, 1, 2, 2)),
    ("switch-cisco-c3560", (1, 3, 6, 1, 2, 1, 31, 1, 1)),
    ("router-juniper-mx960", (1, 3, 6, 1, 2, 1, 1)),
    ("router-juniper-mx960", (1, 3, 6, 1, 2, 1, 31, 1, 1)),
    ("ups-eaton-93e", (1, 3, 6, 1, 2, 1, 33)),
    ("server-linux", (1, 3, 6, 1, 2, 1, 25)),
    ("firewall-fortinet", (1, 3, 6, 1, 4, 1, 12356, 101, 4)),
    ("storage-isilon", (1, 3, 6, 1, 4, 1, 12124, 1, 13)),
]


async def test_estate_walks_equal_pysnmp(snmpsim: Any) -> None:
    fast = FastSnmpClient()
    slow = PysnmpClient()
    try:
        for community, root in ESTATE_WALKS:
            # v1 walks with GETNEXT, one value a request: only on the small subtrees.
            for version in (2, 1) if root[:7] in ((1, 3, 6, 1, 2, 1, 1), (1, 3, 6, 1, 2, 1, 33)) else (2,):
                auth = Auth(version=version, community=Secret(community))
                options = WalkOptions(timeout=10, retries=1)
                results = []
                for c in (fast, slow):
                    session = await c.session("127.0.0.1", snmpsim.port, auth, options)
                    try:
                        results.append(await session.walk(root, Deadline.after(60)))
                    except SnmpError as exc:
                        results.append([("error", exc.reason)])  # type: ignore[list-item]
                assert results[0] == results[1], (community, root, version)
                assert results[0], (community, root)
            scalars = [SYS_OBJECT_ID, SYS_UPTIME, (1, 3, 6, 1, 2, 1, 1, 5, 0), (1, 3, 6, 1, 2, 1, 99, 0)]
            got = []
            for c in (fast, slow):
                session = await c.session("127.0.0.1", snmpsim.port, v2(community), WalkOptions(timeout=10))
                got.append(await session.get(scalars, Deadline.after(30)))
            assert got[0] == got[1]
    finally:
        fast.close()


async def test_null_cells_are_skipped_not_the_end_of_the_walk(client: FastSnmpClient) -> None:
    # An agent that answers one cell with NULL mid-table: the rest of the column still counts.
    def handle(data: bytes) -> list[bytes]:
        rid, _oids, _kind, _reps = request_of(data)
        binds = [
            ((*IF_DESCR, 1), V2C.Null("")),
            ((*IF_DESCR, 2), V2C.OctetString(b"eth1")),
            ((*IF_DESCR, 3), V2C.EndOfMibView("")),
        ]
        return [pysnmp_response(rid, binds)]

    _agent, port = await start_agent(handle)
    session = await client.session("127.0.0.1", port, v2(), opts())
    rows = await session.walk(IF_DESCR, Deadline.after(5))
    assert rows == [((*IF_DESCR, 2), b"eth1")]
