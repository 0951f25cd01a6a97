"""Child processes on loopback: start one with its log file, wait for its port or URL with a
bounded deadline, stop it by PID, read its CPU and memory from /proc.

One harness for the tests, the benchmarks, the SNMP simulator's launcher and the demo's waits.
It sits in ``mspwatch.common``, the lowest layer, because its callers span the layers: the
benchmarks are scripts outside the test package, ``mspwatch.simulators`` starts snmpsim, and
the demo (shipped in the wheel) polls its processes' URLs, so a module under ``tests/`` could
serve only the first. The demo's own processes stay under honcho (mspwatch.demo.runner), whose
loop owns the main thread and the signals; the demo borrows :func:`wait_until` only, with
honcho's liveness check and sleep passed in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
CLK_TCK = os.sysconf("SC_CLK_TCK")
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL


def free_port() -> int:
    """A loopback port free for both TCP and UDP now, so either kind of server can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        tcp.bind(("127.0.0.1", 0))
        port = int(tcp.getsockname()[1])
        udp.bind(("127.0.0.1", port))
        return port


def spawn(
    args: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``args`` with stdout and stderr appended to ``log`` and ``env`` over ours.

    The child leads a process group of its own (a new session), so :func:`stop_process`
    reaches whatever it starts in turn, and a Ctrl-C aimed at the caller's terminal does not
    race the caller's own orderly stop.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            list(args),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )


def _leads_group(proc: subprocess.Popen[Any]) -> bool:
    # Spawned here (a new session), the child's PID is its process group's id.
    try:
        return os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        return False


def _signal(proc: subprocess.Popen[Any], sig: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)


def _gone(proc: subprocess.Popen[Any], group: bool) -> bool:
    if proc.poll() is None:  # reaps the leader once it exits
        return False
    if not group:
        return True
    try:
        os.killpg(proc.pid, 0)  # what the leader started may outlive it
    except ProcessLookupError:
        return True
    return False


def stop_process(proc: subprocess.Popen[Any], grace: float = STOP_GRACE, sig: int = signal.SIGTERM) -> int:
    """Stop a process we started, by PID: ``sig``, SIGKILL after ``grace`` s; its exit code.

    A child that leads its own group (see :func:`spawn`) is stopped with its whole group:
    this returns once no process of the group is left. One that has already exited is only
    reaped.
    """
    if proc.poll() is not None:
        return proc.returncode
    group = _leads_group(proc)
    for signum in (sig, signal.SIGKILL):
        _signal(proc, signum, group)
        end = time.monotonic() + grace
        while not _gone(proc, group) and time.monotonic() < end:
            time.sleep(0.05)
        if _gone(proc, group):
            break
    return proc.wait(timeout=grace)


def log_tail(log: Path, lines: int = 5) -> str:
    """The last ``lines`` lines of a child's log, for an error message ('' if none)."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    what: str,
    check: Callable[[], T | None],
    timeout: float,
    *,
    interval: float = 0.1,
    alive: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Poll ``check()`` until it returns a truthy value and return it; bounded by ``timeout``.

    An OSError, ValueError or LookupError from ``check`` counts as "not yet" (a port not open,
    a half-written answer). ``alive`` raises when what is awaited has died, so a crashed child
    fails at once rather than at the deadline; ``sleep`` lets a caller whose signals must
    interrupt the wait sleep its own way.

    >>> wait_until("a token", lambda: None, 0.3)
    Traceback (most recent call last):
    TimeoutError: a token not seen after 0.3s (last: None)
    """
    end = time.monotonic() + timeout
    last: object = None
    while True:
        if alive is not None:
            alive()
        try:
            got = check()
            if got:
                return got
            last = got
        except (OSError, ValueError, LookupError) as exc:
            last = exc
        if time.monotonic() >= end:
            raise TimeoutError(f"{what} not seen after {timeout:g}s (last: {last!r})")
        sleep(interval)


def exited(proc: subprocess.Popen[Any], log: Path | None = None) -> Callable[[], None]:
    """An ``alive`` check for :func:`wait_until`: raise if ``proc`` has exited, with its log's tail."""

    def check() -> None:
        if proc.poll() is not None:
            tail = log_tail(log) if log is not None else ""
            raise RuntimeError(
                f"process exited early with code {proc.returncode}" + (f":\n{tail}" if tail else "")
            )

    return check


def _listening(port: int, udp: bool, host: str) -> bool:
    if udp:  # a UDP server is there when we can no longer bind its port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                return True
            return False
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def wait_for_port(
    port: int,
    *,
    udp: bool = False,
    timeout: float = 30.0,
    proc: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
    host: str = "127.0.0.1",
) -> None:
    """Wait until something listens on ``host:port`` (TCP connect, or the UDP port is taken)."""
    wait_until(
        f"a listener on {host}:{port}",
        lambda: _listening(port, udp, host),
        timeout,
        alive=exited(proc, log) if proc is not None else None,
    )


def wait_for_url(
    url: str,
    *,
    timeout: float = 30.0,
    proc: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
) -> bytes:
    """Wait until ``url`` (loopback http) answers 200; return the body.

    Each attempt is bounded by what is left of ``timeout``, so an endpoint that accepts and
    never answers costs no more than the deadline.
    """
    end = time.monotonic() + timeout

    def get() -> bytes | None:
        left = max(0.05, min(5.0, end - time.monotonic()))
        try:
            with urllib.request.urlopen(url, timeout=left) as resp:  # noqa: S310 - our loopback URL
                body: bytes = resp.read()
                return body or b" "  # an empty 200 is an answer too
        except urllib.error.HTTPError as exc:  # not ready yet (503 while a TSDB opens)
            exc.close()
            return None

    return wait_until(f"200 from {url}", get, timeout, alive=exited(proc, log) if proc is not None else None)


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # kB
    raise LookupError(f"no {field} for pid {pid}")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process now (VmRSS), from /proc."""
    return _status(pid, "VmRSS")


def peak_rss_bytes(pid: int) -> int:
    """Peak resident memory of a process so far (VmHWM), from /proc."""
    return _status(pid, "VmHWM")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads, from /proc/<pid>/stat."""
    # The command name may hold spaces or parentheses: the fields start after the last ")".
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Processes:
    """The processes one run started, each logging to ``<logdir>/<name>.log``; all are
    stopped by PID on :meth:`stop_all` or when the ``with`` block ends."""

    def __init__(self, logdir: Path, *, cwd: Path | None = None) -> None:
        self.logdir = logdir
        self.cwd = cwd
        self.procs: dict[str, subprocess.Popen[Any]] = {}

    def start(
        self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[Any]:
        """Start ``args`` as ``name`` (a name already running is stopped first)."""
        self.stop(name)
        proc = spawn(args, self.log(name), env=env, cwd=self.cwd)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> Path:
        return self.logdir / f"{name}.log"

    def stop(self, name: str, sig: int = signal.SIGTERM, grace: float = STOP_GRACE) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            stop_process(proc, grace, sig)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()
