"""Network faults for tests: a server that accepts connections and never answers."""

from __future__ import annotations

import asyncio


class Silent:
    """A TCP server that accepts connections and never answers (nor reads): a hung API."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.accepted = 0
        self.closed_by_peer = 0
        self.peer_closed = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
        # Drain what the client sends until it hangs up; never answer.
        while await reader.read(65536):
            pass
        self.closed_by_peer += 1
        self.peer_closed.set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for w in self._writers:
            w.close()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
