"""Shared test helpers: golden files, promtool, free ports, processes stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite golden files from the current output (review the diff!)",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def assert_golden(path: Path, actual: str, update: bool) -> None:
    """Compare ``actual`` with the golden file byte for byte; rewrite it with --update-goldens."""
    if update or not path.exists():
        if not update:
            pytest.fail(f"golden file {path} is missing; run pytest --update-goldens and review it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        import difflib

        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=str(path),
                tofile="actual",
                n=2,
            )
        )
        pytest.fail(f"output differs from {path.name} (pytest --update-goldens rewrites it):\n{diff[:6000]}")


def require_tool(name: str) -> str:
    """Return the tool's path; a missing tool fails the test (CI installs it), never skips."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run `make deps` (scripts/install-system-deps.sh)")
    return path


def promtool_check_metrics(text: str) -> str:
    """Run ``promtool check metrics`` on exposition text; return its complaints ('' if none)."""
    promtool = require_tool("promtool")
    proc = subprocess.run(
        [promtool, "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return (proc.stdout + proc.stderr).decode().strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        # A port free for both UDP and TCP, so either kind of server can take it.
        tcp.bind(("127.0.0.1", 0))
        port = int(tcp.getsockname()[1])
        udp.bind(("127.0.0.1", port))
        return port


def wait_for_port(
    port: int, *, udp: bool = False, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something listens on 127.0.0.1:port (TCP connect, or UDP bind fails)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited early with code {proc.returncode}")
        if udp:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    return
        else:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started, by PID: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[object]:
    """Start processes for one test; each is stopped by PID afterwards. Logs go to tmp_path."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("wb") as log:  # the child keeps its own copy
            proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=tmp_path,
            )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop_process(proc)
