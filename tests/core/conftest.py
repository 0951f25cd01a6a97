"""Core test fixtures: a scripted JSON API on loopback (an ASGI app under uvicorn), and the
three exporters as users run them (started once per session) with a raw HTTP client.

Raw sockets, not httpx, for the exporters: the requests under test are the malformed ones a
client library refuses to send (a ``\\xff`` byte in a header, half a request).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from mspwatch.common.procs import free_port, spawn, stop_process, wait_for_port
from mspwatch.simulators.asgi import Receive, Scope, Send, read_request, respond


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


@dataclass(frozen=True)
class Exporter:
    name: str  # the subcommand: snmp-exporter
    namespace: str  # snmp
    port: int
    probe: str  # a probe path with the query of a configured target, answered with 200
    config: Path
    log: Path
    proc: subprocess.Popen[bytes]


def write_configs(d: Path) -> dict[str, tuple[Path, str]]:
    """One small valid config per exporter and a probe URL that answers 200 with ``up 0``."""
    d.mkdir(parents=True, exist_ok=True)
    dead_udp = free_port()  # nothing answers SNMP there: the probe is quick and says up 0
    snmp = d / "snmp.yml"
    snmp.write_text(
        yaml.safe_dump(
            {
                "auths": {"public_v2": {"version": 2, "community": "public"}},
                "walk": {"timeout": "200ms", "retries": 0},
            }
        )
    )
    (d / "drop").mkdir(exist_ok=True)
    (d / "inventory.yml").write_text(
        yaml.safe_dump(
            {
                "customers": [
                    {
                        "name": "acme",
                        "backup_sources": [{"name": "acme-drop", "kind": "folder", "path": "drop"}],
                    }
                ]
            }
        )
    )
    backup = d / "backup.yml"
    backup.write_text(yaml.safe_dump({"inventory": "inventory.yml"}))
    m365 = d / "m365.yml"
    m365.write_text(
        yaml.safe_dump(
            {
                "apps": {
                    "msp": {
                        "client_id": "4f1c2d9e-0000-4000-8000-000000000001",
                        "client_secret": "not-a-real-secret-7d1e",
                    }
                },
                # A closed loopback port: every token request fails at once, m365_up 0.
                "graph": {
                    "url": f"https://127.0.0.1:{free_port()}",
                    "authority_host": f"https://127.0.0.1:{free_port()}",
                    "request_timeout": "1s",
                },
                "tenants": [{"name": "lab", "tenant_id": "lab.onmicrosoft.com", "app": "msp"}],
            }
        )
    )
    return {
        "snmp-exporter": (snmp, f"/snmp?target=127.0.0.1:{dead_udp}&auth=public_v2&module=system"),
        "backup-exporter": (backup, "/backup?target=acme-drop"),
        "m365-exporter": (m365, "/m365?target=lab"),
    }


@pytest.fixture(scope="session")
def exporters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Exporter]]:
    """snmp, backup and m365 exporters, each a real process on a loopback port."""
    d = tmp_path_factory.mktemp("exporters")
    started: dict[str, Exporter] = {}
    try:
        for name, (config, probe) in write_configs(d).items():
            port = free_port()
            log = d / f"{name}.log"
            proc = spawn(
                [
                    sys.executable,
                    "-m",
                    "mspwatch.cli",
                    name,
                    f"--config.file={config}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                log,
                cwd=d,
            )
            started[name] = Exporter(name, name.split("-")[0], port, probe, config, log, proc)
        for exp in started.values():
            wait_for_port(exp.port, proc=exp.proc)
        yield started
    finally:
        for exp in started.values():
            stop_process(exp.proc)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(port: int, request: bytes, *, timeout: float = 30.0) -> Response:
    """Send raw bytes, read the answer until the server closes (send ``Connection: close``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        raise AssertionError(f"not an HTTP answer: {data[:200]!r}")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return Response(int(lines[0].split()[1]), headers, body)


def _dechunk(body: bytes) -> bytes:
    out = []
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        body = rest[size + 2 :]
    return b"".join(out)


def get(port: int, target: str, headers: list[bytes] | None = None) -> Response:
    """A GET with extra raw header lines, e.g. ``[b"Accept: text/plain; version=x.y"]``."""
    lines = [
        f"GET {target} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        b"Connection: close",
        b"X-Prometheus-Scrape-Timeout-Seconds: 5",
        *(headers or []),
    ]
    return raw_request(port, b"\r\n".join(lines) + b"\r\n\r\n")


def probe_outcomes(exp: Exporter) -> dict[str, float]:
    """``<ns>_exporter_probes_total`` by outcome, read from the exporter's own /metrics."""
    text = get(exp.port, "/metrics").body.decode()
    prefix = f'{exp.namespace}_exporter_probes_total{{outcome="'
    out = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            labels, _, value = line.partition("} ")
            out[labels.removeprefix(prefix).rstrip('"')] = float(value)
    return out
