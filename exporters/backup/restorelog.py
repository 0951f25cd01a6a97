"""The restore-test log: one JSON object per line, appended by engineers' tool.

{"time": "2026-01-14T10:00:00Z", "source": "acme-vbr", "job": "SQL nightly",
 "result": "success", "by": "jdoe", "note": "restored db to sandbox"}

The log is only ever appended to. A wrong entry (a misspelt job) is taken back by a removal
line, which drops every earlier entry of that source and job:

{"time": "2026-01-14T10:05:00Z", "source": "acme-vbr", "job": "SQL nigthly", "removed": true,
 "by": "jdoe"}
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from mspwatch.common.timeparse import format_time, parse_time

from .records import RestoreTest, Result, parse_result

log = logging.getLogger("mspwatch.backup.restorelog")


def read_restore_tests(path: Path | None, source: str) -> list[RestoreTest]:
    """The newest logged test per job of ``source``; a missing log means no tests yet."""
    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("cannot read restore-test log", extra={"err": exc.strerror or str(exc)})
        return []
    newest: dict[str, RestoreTest] = {}
    for n, entry in _entries(text, path.name):
        if entry.get("source") != source:
            continue
        job, when = entry.get("job"), parse_time(entry.get("time"))
        if not isinstance(job, str) or not job or when is None:
            log.warning("malformed restore-test log line", extra={"file": path.name, "line": n})
            continue
        if entry.get("removed") is True:
            newest.pop(job, None)  # taken back: every earlier entry of this job
        elif job not in newest or when >= newest[job].timestamp:
            newest[job] = RestoreTest(job, when, parse_result(entry.get("result")), "log")
    return list(newest.values())


def _entries(text: str, name: str) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            entry = None
        if not isinstance(entry, dict):
            log.warning("malformed restore-test log line", extra={"file": name, "line": n})
            continue
        out.append((n, entry))
    return out


def logged_jobs(path: Path, source: str) -> set[str]:
    """Jobs of ``source`` with a logged test that was not removed."""
    return {t.job_name for t in read_restore_tests(path, source)}


def append_restore_test(
    path: Path,
    *,
    source: str,
    job: str,
    result: Result,
    when: float,
    by: str | None = None,
    note: str | None = None,
    duration: float | None = None,
) -> dict[str, Any]:
    """Append one entry as a single write (O_APPEND keeps concurrent writers whole)."""
    entry: dict[str, Any] = {"time": format_time(when), "source": source, "job": job}
    entry["result"] = result
    if duration is not None:
        entry["duration_seconds"] = duration
    if by:
        entry["by"] = by
    if note:
        entry["note"] = note
    _append(path, entry)
    return entry


def append_removal(
    path: Path, *, source: str, job: str, when: float, by: str | None = None
) -> dict[str, Any]:
    """Append a removal: earlier entries of ``job`` no longer count (the log stays append-only)."""
    entry: dict[str, Any] = {"time": format_time(when), "source": source, "job": job, "removed": True}
    if by:
        entry["by"] = by
    _append(path, entry)
    return entry


def _append(path: Path, entry: dict[str, Any]) -> None:
    """One entry as a single write (O_APPEND keeps concurrent writers whole)."""
    data = (json.dumps(entry, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
