"""The process harness (mspwatch.common.procs) against real child processes and sockets."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mspwatch.common.procs import (
    Processes,
    cpu_seconds,
    free_port,
    peak_rss_bytes,
    rss_bytes,
    spawn,
    stop_process,
    wait_for_port,
    wait_for_url,
    wait_until,
)

PY = sys.executable


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running.
    return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never answers a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


def test_spawn_logs_output_and_leads_its_own_group(tmp_path: Path) -> None:
    log = tmp_path / "sub" / "child.log"
    proc = spawn(
        [PY, "-c", "import os, sys; print(os.environ['PROCS_TEST']); print('err', file=sys.stderr)"],
        log,
        env={"PROCS_TEST": "from-env"},
        cwd=tmp_path,
    )
    assert proc.wait(timeout=60) == 0
    assert log.read_text().splitlines() == ["from-env", "err"]
    proc = spawn([PY, "-c", "import time; time.sleep(60)"], tmp_path / "sleeper.log")
    try:
        assert os.getpgid(proc.pid) == proc.pid
    finally:
        assert stop_process(proc) == -signal.SIGTERM


def test_stop_reaches_the_grandchildren(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time; "
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
        f"open({str(pidfile)!r}, 'w').write(str(g.pid)); time.sleep(600)"
    )
    proc = spawn([PY, "-c", code], tmp_path / "parent.log")
    grandchild = wait_until("the grandchild's pid", lambda: int(pidfile.read_text() or 0), 60)
    assert _alive(grandchild)
    stop_process(proc)
    assert not _alive(grandchild)  # stop_process returns once the whole group is gone


def test_stop_waits_for_a_grandchild_that_outlives_the_leader(tmp_path: Path) -> None:
    """The leader exits on SIGTERM at once; its child ignores SIGTERM: SIGKILL after the grace."""
    pidfile = tmp_path / "grandchild.pid"
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    code = (
        "import subprocess, sys, time; "
        f"g = subprocess.Popen([sys.executable, '-c', {stubborn!r}]); "
        f"time.sleep(1); open({str(pidfile)!r}, 'w').write(str(g.pid)); time.sleep(600)"
    )
    proc = spawn([PY, "-c", code], tmp_path / "parent.log")
    grandchild = wait_until("the grandchild's pid", lambda: int(pidfile.read_text() or 0), 60)
    assert stop_process(proc, grace=0.5) == -signal.SIGTERM  # the leader went at once
    assert not _alive(grandchild)  # the grandchild only to SIGKILL, before stop_process returned


def test_stop_sends_sigkill_after_the_grace(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(ready)!r}, 'w').close(); time.sleep(600)"
    )
    proc = spawn([PY, "-c", code], tmp_path / "stubborn.log")
    wait_until("SIGTERM ignored", ready.exists, 60)
    assert stop_process(proc, grace=0.5) == -signal.SIGKILL


def test_stop_of_an_exited_process_returns_its_code(tmp_path: Path) -> None:
    proc = spawn([PY, "-c", "raise SystemExit(3)"], tmp_path / "three.log")
    proc.wait(timeout=60)
    assert stop_process(proc) == 3


def test_wait_for_port_sees_tcp_and_udp_listeners() -> None:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(1)
        udp.bind(("127.0.0.1", 0))
        wait_for_port(tcp.getsockname()[1], timeout=5)
        wait_for_port(udp.getsockname()[1], udp=True, timeout=5)


def test_wait_for_port_times_out_on_a_closed_port() -> None:
    port = free_port()
    with pytest.raises(TimeoutError, match=rf"^a listener on 127.0.0.1:{port} not seen after 0.3s"):
        wait_for_port(port, timeout=0.3)


def test_a_child_that_dies_fails_the_wait_at_once_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "dies.log"
    proc = spawn([PY, "-c", "print('bad config: field x'); raise SystemExit(2)"], log)
    proc.wait(timeout=60)
    # The deadline is an hour: only the exit can end this wait.
    with pytest.raises(RuntimeError, match=r"exited early with code 2:\nbad config: field x$"):
        wait_for_port(free_port(), timeout=3600, proc=proc, log=log)


def test_wait_for_url_is_bounded_against_an_endpoint_that_never_answers(silent_listener: int) -> None:
    url = f"http://127.0.0.1:{silent_listener}/-/ready"
    with pytest.raises(TimeoutError, match=rf"^200 from {url} not seen after 1s \(last: TimeoutError"):
        wait_for_url(url, timeout=1)


def test_wait_for_url_returns_the_body_of_a_200(tmp_path: Path) -> None:
    (tmp_path / "ready").write_text("Prometheus Server is Ready.\n")
    port = free_port()
    with Processes(tmp_path, cwd=tmp_path) as procs:
        server = procs.start("http", [PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)])
        assert wait_for_url(f"http://127.0.0.1:{port}/ready", timeout=60, proc=server) == (
            b"Prometheus Server is Ready.\n"
        )
        # Not found is "not yet": the wait ends at its deadline.
        with pytest.raises(TimeoutError, match=r"\(last: None\)$"):
            wait_for_url(f"http://127.0.0.1:{port}/missing", timeout=0.5)
    assert server.poll() is not None  # the with block stopped it


def test_wait_until_returns_the_first_truthy_value_and_passes_its_sleep() -> None:
    answers = iter([None, 0, OSError("refused"), [], ["up"]])
    slept: list[float] = []

    def check() -> list[str] | None:
        got = next(answers)
        if isinstance(got, Exception):
            raise got
        return got  # type: ignore[return-value]

    assert wait_until("up", check, 60, interval=0.25, sleep=slept.append) == ["up"]
    assert slept == [0.25] * 4


def test_wait_until_stops_when_alive_raises() -> None:
    def gone() -> None:
        raise RuntimeError("the simulator died")

    with pytest.raises(RuntimeError, match="the simulator died"):
        wait_until("never", lambda: None, 3600, alive=gone)


def test_processes_restart_a_name_and_stop_all(tmp_path: Path) -> None:
    procs = Processes(tmp_path)
    first = procs.start("sleeper", [PY, "-c", "import time; time.sleep(600)"])
    second = procs.start("sleeper", [PY, "-c", "import time; time.sleep(600)"])
    assert first.poll() == -signal.SIGTERM  # the old one was stopped before the new one started
    procs.stop_all()
    assert second.poll() == -signal.SIGTERM
    assert procs.procs == {}
    assert procs.log("sleeper") == tmp_path / "sleeper.log"


def test_cpu_and_memory_from_proc() -> None:
    pid = os.getpid()
    before = cpu_seconds(pid)
    sum(i * i for i in range(3_000_000))  # CPU the kernel will count in clock ticks
    assert cpu_seconds(pid) > before
    rss, peak = rss_bytes(pid), peak_rss_bytes(pid)
    assert 10 * 2**20 < rss <= peak
    with pytest.raises(FileNotFoundError):
        rss_bytes(2**22 + 1)  # above pid_max's default: no such process
