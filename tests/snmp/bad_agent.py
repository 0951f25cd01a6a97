"""A misbehaving SNMP v2c agent for fault tests, speaking real SNMP on a UDP socket.

Modes (chosen per community, so one agent serves every case):

- ``loop``: GETBULK/GETNEXT answers return OIDs that go backwards (a broken agent that would
  make a naive walker loop forever); GET answers normally.
- ``slow``: every answer is sent 1.5 seconds late.
- anything else: no answer at all.

Run: ``python -m tests.snmp.bad_agent PORT``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)


def _answer(request: bytes) -> tuple[bytes | None, float]:
    msg, _ = decoder.decode(request, asn1Spec=V2C.Message())
    community = str(V2C.apiMessage.get_community(msg))
    pdu = V2C.apiMessage.get_pdu(msg)
    response = V2C.apiMessage.get_response(msg)
    rsp_pdu = V2C.apiMessage.get_pdu(response)
    asked = [tuple(oid) for oid, _ in V2C.apiPDU.get_varbinds(pdu)]
    binds: list[tuple[Any, Any]] = []
    if pdu.isSameTypeWith(V2C.GetRequestPDU()):
        for oid in asked:
            if oid == SYS_UPTIME:
                binds.append((oid, V2C.TimeTicks(4242)))
            elif oid == SYS_OBJECT_ID:
                binds.append((oid, V2C.ObjectIdentifier((1, 3, 6, 1, 4, 1, 8072, 3, 2, 10))))
            else:
                binds.append((oid, V2C.NoSuchObject("")))
    else:
        for oid in asked:
            if community == "loop":
                # The first answer goes one step forward, then the agent falls back.
                binds += [((*oid, 1), V2C.Counter32(1)), ((*oid, 0), V2C.Counter32(2))]
            else:
                binds.append((oid, V2C.EndOfMibView("")))
    V2C.apiPDU.set_varbinds(rsp_pdu, binds)
    delay = 1.5 if community == "slow" else 0.0
    if community not in ("loop", "slow"):
        return None, 0.0
    return encoder.encode(response), delay


class _Agent(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            answer, delay = _answer(data)
        except Exception:  # a fault-test agent must never die on odd input
            return
        if answer is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self.transport.sendto, answer, addr)  # type: ignore[attr-defined]


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(_Agent, local_addr=("127.0.0.1", port))
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
