"""The demo's processes under honcho (``honcho.manager.Manager``), a well-kept process runner.

honcho starts every long-running process at once, each in its own session under
``/bin/sh -c 'exec ...'`` (so the PID it reports is the program's own), and when one of them
exits, or on SIGINT/SIGTERM, sends SIGTERM to every process group and SIGKILL after 5 s.
``Manager.loop()`` needs the main thread, so the demo's own steps (readiness, ``--check``,
the periodic refresh) run in a worker thread; when they return, the runner stops everything.

Each process's output goes to ``<log dir>/<name>.log``; the runner keeps its last lines, so a
process that dies at start-up (a port taken) is reported with them::

    started prometheus (pid 4242), log: demo-data/logs/prometheus.log
    error: prometheus exited with code 1; the last lines of demo-data/logs/prometheus.log:
      ... msg="Error listening" err="listen tcp 127.0.0.1:9090: bind: address already in use"
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from honcho.manager import Manager

TAIL_LINES = 12

# honcho reports what happens to its processes as lines from its "system" process; its
# format has been the same since honcho 0.5 (pinned below 3 in pyproject.toml).
_STARTED = re.compile(r"^(\S+) started \(pid=(\d+)\)$")
_STOPPED = re.compile(r"^(\S+) stopped \(rc=(-?\d+)\)$")
_SIGNALLED = re.compile(r"^(SIGINT|SIGTERM) received$")
_KILLING = re.compile(r"^sending SIGKILL to (\S+) \(pid (\d+)\)$")


class DemoError(Exception):
    """An expected failure (a timeout, a process that died): reported in one line, no traceback."""


class Stopped(DemoError):
    """The runner is stopping (a signal, or one of its processes exited): steps give up."""


class Runner:
    """Processes added with :meth:`add` run under honcho from :meth:`run` until the steps end."""

    def __init__(self, log_dir: Path, out: IO[str] | None = None) -> None:
        self.log_dir = log_dir
        self.out = out if out is not None else sys.stdout
        self.pids: dict[str, int] = {}
        self.exited: dict[str, int] = {}  # name -> return code, in the order they stopped
        self.failed: tuple[str, int] | None = None  # the first process that exited unasked
        self.signal: str | None = None
        self.width = 0  # honcho's Printer interface; names are not padded in log files
        self._manager = Manager(printer=self)
        self._names: list[str] = []
        self._logs: dict[str, IO[bytes]] = {}
        self._tails: dict[str, deque[str]] = {}
        # Reentrant: honcho's signal handler prints through write() on the main thread, which
        # may be inside write() already when the signal lands (a plain Lock deadlocks there).
        self._lock = threading.RLock()
        self._all_started = threading.Event()
        self._stopping = threading.Event()

    # --- setting up ------------------------------------------------------------------------

    def add(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        """Add a process; it starts with the others in :meth:`run`. Python children are unbuffered."""
        env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self._logs[name] = self.log(name).open("wb")
        self._tails[name] = deque(maxlen=TAIL_LINES)
        self._names.append(name)
        self._manager.add_process(name, "exec " + shlex.join(args), env=env)

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    # --- honcho's Printer interface ----------------------------------------------------------

    def write(self, message: Any) -> None:
        """Take one line from honcho: a process's output (to its log) or honcho's own news."""
        data = message.data.decode("utf-8", "replace") if isinstance(message.data, bytes) else message.data
        with self._lock:
            if message.name in self._logs:
                self._logs[message.name].write(data.encode("utf-8", "replace"))
                self._logs[message.name].flush()
                self._tails[message.name].extend(data.splitlines())
                return
            for line in data.splitlines():
                self._system(line)

    def _system(self, line: str) -> None:
        if m := _STARTED.match(line):
            name, pid = m.group(1), int(m.group(2))
            self.pids[name] = pid
            self._print(f"started {name} (pid {pid}), log: {self.log(name)}")
            if len(self.pids) == len(self._names):
                self._all_started.set()
        elif m := _STOPPED.match(line):
            name, rc = m.group(1), int(m.group(2))
            self.exited[name] = rc
            self._logs[name].close()
            if self._stopping.is_set():
                self._print(f"stopped {name} (pid {self.pids.get(name)})")
            else:
                self.failed = self.failed or (name, rc)
                self._stopping.set()
                self._print(f"{name} (pid {self.pids.get(name)}) exited with code {rc}: stopping the demo")
        elif m := _SIGNALLED.match(line):
            self.signal = m.group(1)
            self._stopping.set()
            self._print(f"{self.signal} received: stopping every process the demo started")
        elif m := _KILLING.match(line):
            self._print(f"{m.group(1)} (pid {m.group(2)}) did not stop within 5 s: sent SIGKILL")
        # "sending SIGTERM to ..." is honcho's news of what stopping means; each stop is printed.

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    # --- used by the steps -----------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def check_alive(self) -> None:
        """Raise :class:`Stopped` once the runner is stopping (steps then end quietly)."""
        if self._stopping.is_set():
            raise Stopped("the demo is stopping")

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up (raising :class:`Stopped`) as soon as the runner stops."""
        if self._stopping.wait(seconds):
            raise Stopped("the demo is stopping")

    def tail(self, name: str) -> list[str]:
        """The last lines the process wrote."""
        with self._lock:
            return list(self._tails.get(name, ()))

    # --- running ---------------------------------------------------------------------------

    def run(self, steps: Callable[[], int]) -> int:
        """Run every process and ``steps()`` beside them; stop everything when either ends.

        Returns the steps' exit code; 1 if a process died or a step failed; 130 or 143 after
        SIGINT or SIGTERM.
        """
        result: list[int] = []

        def worker() -> None:
            try:
                # Nothing runs beside honcho while it forks its processes.
                while not self._all_started.wait(0.2):
                    self.check_alive()
                result.append(steps())
            except Stopped:
                result.append(1)
            except DemoError as exc:
                self._print(f"error: {exc}")
                result.append(1)
            except Exception:  # a bug in a step: show it, and still stop every process
                traceback.print_exc()
                result.append(1)
            finally:
                if self._all_started.is_set():  # honcho needs every PID to send its signals
                    self._stopping.set()
                    self._manager.terminate()

        thread = threading.Thread(target=worker, name="demo-steps", daemon=True)
        thread.start()
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._manager.loop()  # installs honcho's SIGINT and SIGTERM handlers
        except KeyError:
            # A signal that arrives before honcho has every PID fails inside its handler
            # (honcho 2.0 reads the PIDs it has not yet received); stop what did start.
            self._stop_after_early_signal()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        thread.join(timeout=15)
        for log in self._logs.values():
            log.close()
        if self.failed is not None:
            name, rc = self.failed
            self._print(f"error: {name} exited with code {rc}; the last lines of {self.log(name)}:")
            for line in self.tail(name) or ["(nothing)"]:
                self._print(f"  {line}")
            return 1
        if self.signal is not None:
            self._print(f"stopped {len(self.exited)} processes after {self.signal}")
            return 130 if self.signal == "SIGINT" else 143
        return result[0] if result else 1

    def _stop_after_early_signal(self) -> None:
        self._stopping.set()
        self.signal = self.signal or "SIGTERM"
        end = time.monotonic() + 5
        while len(self.pids) < len(self._names) and time.monotonic() < end:
            try:
                msg = self._manager.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if msg.type == "start":
                self.pids[msg.name] = int(msg.data["pid"])
            elif msg.type == "line":
                self.write(msg)
        for force in (False, True):
            for name, pid in self.pids.items():
                if name not in self.exited:
                    try:
                        os.killpg(pid, signal.SIGKILL if force else signal.SIGTERM)
                    except OSError:
                        self.exited[name] = 0
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(_alive(p) for p in self.pids.values()):
                time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except OSError:
        return False
    return True
