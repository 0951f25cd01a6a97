"""restic: the JSON of ``restic snapshots --json``, from a file or a command.

restic only writes a snapshot when a backup completes, so every group's last result is
``success`` and every snapshot is a restore point; a failing backup shows as a last
restore point that grows old (RPO). The result of
``restic check`` comes from a file the scheduler writes (``restic check --json`` or its
plain text output).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

from mspwatch.common.secrets import REDACTED, Secret
from mspwatch.common.timeparse import parse_time
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.inventory import ResticSource, resolve

from .records import JobRecord, Reason, RequestStats, SourceData, SourceError

log = logging.getLogger("mspwatch.backup.restic")

KILL_WAIT = 1.0  # seconds to wait for a killed command to exit


class ResticClient:
    kind = "restic"

    def __init__(self, source: ResticSource, base_dir: Path, password: Secret | None) -> None:
        self.source = source
        self.base_dir = base_dir
        self._password = password
        self.api_errors: dict[str, int] | None = None

    async def aclose(self) -> None:
        return None

    @property
    def repository(self) -> str:
        return self.source.repository or self.source.name

    async def fetch(self, deadline: Deadline, stats: RequestStats) -> SourceData:
        if self.source.command is not None:
            raw = await self._run(self.source.command, deadline, stats)
            where = "command output"
        else:
            path = resolve(self.base_dir, self.source.snapshots_file)
            assert path is not None
            raw = _read(path)
            where = path.name
        try:
            snapshots = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SourceError(Reason.MALFORMED, f"{where}: line {exc.lineno}: {exc.msg}") from None
        if not isinstance(snapshots, list):
            raise SourceError(Reason.MALFORMED, f"{where}: want a JSON list of snapshots")
        # `restic snapshots --json --group-by ...` nests them: [{group_key, snapshots}, ...]
        snapshots = [
            snap
            for item in snapshots
            for snap in (
                item["snapshots"]
                if isinstance(item, dict) and isinstance(item.get("snapshots"), list)
                else [item]
            )
        ]
        data = SourceData(jobs=self._jobs(snapshots))
        check = resolve(self.base_dir, self.source.check_file)
        if check is not None:
            data.checks[self.repository] = _check_result(check)
        return data

    def _jobs(self, snapshots: list[Any]) -> list[JobRecord]:
        latest: dict[str, tuple[float, dict[str, Any]]] = {}
        for snap in snapshots:
            if not isinstance(snap, dict):
                continue
            when = parse_time(snap.get("time"))
            if when is None:
                continue
            name = self._group(snap)
            if name not in latest or when > latest[name][0]:
                latest[name] = (when, snap)
        jobs = []
        for name, (when, snap) in sorted(latest.items()):
            raw_summary = snap.get("summary")
            summary: dict[str, Any] = raw_summary if isinstance(raw_summary, dict) else {}
            start = parse_time(summary.get("backup_start"))
            end = parse_time(summary.get("backup_end"))
            added = summary.get("data_added")
            jobs.append(
                JobRecord(
                    name=name,
                    type="restic",
                    last_result="success",
                    last_run=when,
                    last_success=when,
                    last_restore_point=when,
                    last_duration=(end - start) if start and end and end >= start else None,
                    transferred_bytes=float(added) if isinstance(added, int | float) else None,
                    repository=self.repository,
                )
            )
        return jobs

    def _group(self, snap: dict[str, Any]) -> str:
        parts = []
        for key in self.source.group_by:
            if key == "host":
                parts.append(str(snap.get("hostname") or ""))
            else:
                values = snap.get(key) or []
                parts.append(",".join(sorted(str(v) for v in values if isinstance(v, str))))
        return ":".join(parts)

    async def _run(self, argv: list[str], deadline: Deadline, stats: RequestStats) -> str:
        """Run the command; it and everything it started are killed before this returns.

        The command gets its own session, so on its timeout, the scrape's deadline or a
        cancelled scrape the whole process group is killed (``sh -c 'restic ...'`` and its
        restic alike), in a ``finally`` that runs whichever of those fires first.
        """
        env = dict(os.environ)
        if self._password is not None:
            env["RESTIC_PASSWORD"] = self._password.reveal()
        remaining = deadline.remaining()
        # Whose clock runs out first names the failure: the command's own limit, or the scrape.
        own_limit = self.source.command_timeout < remaining
        budget = min(self.source.command_timeout, remaining)
        stats.requests += 1
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=self.base_dir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise SourceError(
                Reason.COMMAND_FAILED, f"cannot start {argv[0]}: {exc.strerror or exc}"
            ) from None
        finished = False
        try:
            async with asyncio.timeout(budget):
                out, err = await proc.communicate()
            finished = True
        except TimeoutError:
            if own_limit:
                raise SourceError(
                    Reason.TIMEOUT, f"{argv[0]} did not finish within command_timeout ({budget:.1f}s)"
                ) from None
            raise SourceError(Reason.DEADLINE, f"{argv[0]} did not finish within {budget:.1f}s") from None
        finally:
            if not finished:
                await _kill_group(proc, argv[0])
        if proc.returncode != 0:
            first = err.decode("utf-8", "replace").strip().splitlines()[:1]
            detail = self._redact(first[0][:200] if first else "")
            raise SourceError(Reason.COMMAND_FAILED, f"{argv[0]} exited {proc.returncode}: {detail}")
        return out.decode("utf-8", "replace")

    def _redact(self, text: str) -> str:
        if self._password is not None and self._password.reveal():
            text = text.replace(self._password.reveal(), REDACTED)
        return text


async def _kill_group(proc: asyncio.subprocess.Process, name: str) -> None:
    """SIGKILL the command's process group and reap the command (briefly: never a hang)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the group id is its PID
    try:
        # Shielded: a second cancellation must not leave the command unreaped here.
        await asyncio.wait_for(asyncio.shield(proc.wait()), KILL_WAIT)
    except TimeoutError:
        # Stuck in the kernel (a hung NFS mount): it dies when the I/O returns, and asyncio's
        # child watcher reaps it then.
        log.warning("killed command has not exited yet", extra={"command": name, "pid": proc.pid})


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(Reason.IO, f"cannot read {path.name}: {exc.strerror or exc}") from None


def _check_result(path: Path) -> tuple[float, bool]:
    """(time the check ran, whether it passed) from the file the scheduler wrote."""
    try:
        mtime = path.stat().st_mtime
        text = path.read_text(encoding="utf-8")
    except OSError:
        return (0.0, False)
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(msg, dict) and msg.get("message_type") == "summary":
            errors = msg.get("num_errors")
            return (mtime, errors == 0)
    return (mtime, "no errors were found" in text)
