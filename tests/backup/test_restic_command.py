"""A restic command that hangs: no child process outlives its scrape, and the reason says
whose clock ran out (the command's own timeout, or the scrape's deadline)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from mspwatch.exporters.backup.records import RequestStats
from mspwatch.exporters.backup.restic import ResticClient
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.inventory import ResticSource

from .conftest import value, write_config
from .test_faults import reason_of

# The command starts a grandchild (as `sh -c 'restic ...'` would), notes both PIDs, hangs.
HANG = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(sys.argv[1], "a") as f:
    f.write(f"{__import__('os').getpid()} {child.pid}\\n")
time.sleep(600)
"""


def _children() -> set[int]:
    """PIDs of this test process's direct children."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has already died


def _still_running(pids: list[int]) -> list[int]:
    """The PIDs still running once SIGKILL had time to land (bounded, not a timing test)."""
    end = time.monotonic() + 10
    running = [p for p in pids if _alive(p)]
    while running and time.monotonic() < end:
        time.sleep(0.05)
        running = [p for p in running if _alive(p)]
    return running


def _started(pid_file: Path) -> list[int]:
    return [int(p) for line in pid_file.read_text().splitlines() for p in line.split()]


def _source(tmp_path: Path, pid_file: Path, **extra: Any) -> dict[str, Any]:
    command = [sys.executable, "-c", HANG, str(pid_file)]
    return {"name": "acme-restic", "kind": "restic", "command": command, **extra}


async def test_hanging_command_is_killed_at_the_scrape_deadline(tmp_path: Path, exporters: Any) -> None:
    """command_timeout (60 s) lies beyond the scrape: the deadline ends it, with its children."""
    pid_file = tmp_path / "pids"
    config = write_config(tmp_path, [_source(tmp_path, pid_file)])
    exp = exporters(config)
    before = _children()
    for _ in range(3):
        text = await exp.scrape("acme-restic", scrape_timeout=4)  # time to start, even on a busy CI
        assert value(text, "backup_up") == 0
        assert reason_of(text) == "deadline"
    started = _started(pid_file)
    assert len(started) == 6  # three commands, each with a grandchild
    assert _still_running(started) == []
    assert _children() - before == set()


async def test_command_past_its_timeout_is_a_timeout_not_the_deadline(tmp_path: Path, exporters: Any) -> None:
    """command_timeout (3 s) fires with the scrape deadline (30 s) far away."""
    pid_file = tmp_path / "pids"
    config = write_config(tmp_path, [_source(tmp_path, pid_file, command_timeout="3s")])
    exp = exporters(config)
    before = _children()
    text = await exp.scrape("acme-restic", scrape_timeout=30)
    assert value(text, "backup_up") == 0
    assert reason_of(text) == "timeout"
    assert value(text, 'backup_scrape_error{reason="deadline"}') == 0
    started = _started(pid_file)
    assert len(started) == 2
    assert _still_running(started) == []
    assert _children() - before == set()


async def test_cancelled_scrape_kills_the_command(tmp_path: Path) -> None:
    """A scrape cancelled mid-command (Prometheus hung up): the command and its child die."""
    pid_file = tmp_path / "pids"
    source = ResticSource.model_validate(_source(tmp_path, pid_file))
    client = ResticClient(source, tmp_path, None)
    before = _children()
    fetch = asyncio.ensure_future(client.fetch(Deadline.after(60), RequestStats()))
    for _ in range(600):  # until the command has started its grandchild (at most 30 s)
        if pid_file.exists() and pid_file.read_text().endswith("\n"):
            break
        await asyncio.sleep(0.05)
    fetch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await fetch
    started = _started(pid_file)
    assert len(started) == 2
    assert _still_running(started) == []
    assert _children() - before == set()
