"""Core test fixtures: a scripted JSON API on loopback (an ASGI app under uvicorn)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from mspwatch.simulators.asgi import Receive, Scope, Send, read_request, respond
from tests.conftest import free_port


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})  # JSON, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it; ``at`` is its arrival on the monotonic clock."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float


class ScriptedApi:
    """Answers each path from its script, in order (then 200 ``{"ok": true}``); logs requests."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Answer]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def script(self, path: str, *answers: Answer) -> None:
        with self._lock:
            self.scripts[path] = list(answers)

    def reset(self) -> None:
        with self._lock:
            self.scripts.clear()
            self.seen.clear()

    def requests(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_request(scope, receive, send)
        if raw is None:
            return
        with self._lock:
            self.seen.append(Seen(raw.method, raw.path, raw.query, raw.headers, raw.body, time.monotonic()))
            queue = self.scripts.get(raw.path, [])
            answer = queue.pop(0) if queue else Answer()
        body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        await respond(send, answer.status, body, "application/json", answer.headers)


@dataclass
class Served:
    api: ScriptedApi
    url: str


@pytest.fixture(scope="session")
def _served() -> Iterator[Served]:
    """One uvicorn server for the session, in a thread of this process, stopped at the end."""
    api = ScriptedApi()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="scripted-api", daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "the scripted API did not start"
    try:
        yield Served(api, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(_served: Served) -> Served:
    _served.api.reset()
    return _served


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
