"""Connections that never send a request, or half of one, are closed; connections are capped.

The shared server runs in-process here (the same ``serve()`` every exporter runs) so the
test can set a short read-header timeout and a small connection cap.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress

from prometheus_client import CollectorRegistry, Gauge

from mspwatch.common.procs import free_port
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.server import ExporterMetrics, ExporterServer, ServerOptions, serve
from mspwatch.exporters.core.webconfig import WebConfig

EOF_BOUND = 30.0  # far above the 0.5 s timeout: the test waits for a close, it does not time it


class _App:
    namespace = "fake"
    probe_path = "/fake"

    async def probe(self, params: Mapping[str, str], deadline: Deadline) -> CollectorRegistry:
        registry = CollectorRegistry()
        Gauge("fake_up", "Whether the fake target answered.", registry=registry).set(1)
        return registry

    def reload(self) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


@asynccontextmanager
async def _serving(options: ServerOptions) -> AsyncIterator[int]:
    port = free_port()
    server = ExporterServer(_App(), web=WebConfig(), metrics=ExporterMetrics("fake", "test"), options=options)
    task = asyncio.create_task(serve(server, listen_address=f"127.0.0.1:{port}", web=WebConfig()))
    for _ in range(300):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        w.close()
        await w.wait_closed()
        break
    try:
        yield port
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent before it closed the connection."""
    return await asyncio.wait_for(reader.read(), EOF_BOUND)


HALF_REQUESTS = [
    b"",  # connects and never sends a byte
    b"GET /metrics HTTP/1.1\r\nHost: x\r\n",  # headers never finished
    b"GET /met",  # request line never finished
    # A complete head announcing a body that never comes: answered, then closed.
    b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
]


def test_idle_and_half_sent_connections_are_closed() -> None:
    async def run() -> None:
        async with _serving(ServerOptions(read_header_timeout=0.5)) as port:
            baseline = _fds()
            conns = []
            for i in range(40):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(HALF_REQUESTS[i % len(HALF_REQUESTS)])
                await writer.drain()
                conns.append((reader, writer))
            answers = await asyncio.gather(*(_closed_by_server(r) for r, _ in conns))
            # Only the complete head was answered; every connection was closed by the server.
            for i, answer in enumerate(answers):
                assert answer.startswith(b"HTTP/1.1 200") == (i % len(HALF_REQUESTS) == 3), answer[:80]
            # Server-side sockets are gone while the client still holds its 40.
            assert _fds() - baseline <= 40
            for _, writer in conns:
                writer.close()
            # A keep-alive client that answers in time is served on the same connection.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(2):
                writer.write(b"GET /fake HTTP/1.1\r\nHost: x\r\n\r\n")
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), EOF_BOUND)
                assert head.startswith(b"HTTP/1.1 200")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                assert b"fake_up 1.0" in await reader.readexactly(length)
            writer.close()

    asyncio.run(run())


def test_connections_beyond_the_cap_are_closed_at_once() -> None:
    async def run() -> None:
        # A read timeout far beyond the test's bound: any close seen here is the cap's.
        async with _serving(ServerOptions(read_header_timeout=3600, max_connections=5)) as port:
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /fake HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await _closed_by_server(reader) == b""
            writer.close()
            for _, w in held:
                w.close()
                await w.wait_closed()
            await asyncio.sleep(0.1)  # let the server see the closes before the next connect
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /fake HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert (await _closed_by_server(reader)).startswith(b"HTTP/1.1 200")
            writer.close()

    asyncio.run(run())
