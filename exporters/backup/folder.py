"""The vendor-neutral drop folder: run records as JSON, JSON lines or CSV.

Products without an API (or with one we do not speak) drop one record per backup run into
a folder; the schema is in docs/backup-metrics.md. A malformed record is reported with its
file and line, skipped, and every other record and file is still read.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mspwatch.common.timeparse import parse_time
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.inventory import FolderSource

from .records import JobRecord, Reason, RequestStats, Result, SourceData, SourceError, parse_result

log = logging.getLogger("mspwatch.backup.folder")

SUFFIXES = (".json", ".jsonl", ".csv")
REQUIRED = ("job_name", "result", "start_time")
OPTIONAL = (
    "end_time",
    "job_type",
    "workload",
    "repository",
    "transferred_bytes",
    "protected_objects",
    "next_run",
    "enabled",
)
_MAX_FILE_BYTES = 32 * 1024 * 1024
# Unix seconds written as text: digits, an optional fraction, surrounding blanks allowed.
_UNIX_SECONDS = re.compile(r"^[ \t]*[0-9]{1,11}(\.[0-9]{1,9})?[ \t]*$")  # ASCII digits only
_MAX_UNIX_SECONDS = 253402300800.0  # 10000-01-01T00:00:00Z


class RecordError(ValueError):
    """One malformed record; the message names the field."""


@dataclass(frozen=True)
class Run:
    job_name: str
    result: Result
    start: float
    end: float | None
    job_type: str
    workload: str
    repository: str
    transferred_bytes: float | None
    protected_objects: int | None
    next_run: float | None
    enabled: bool


def parse_run(rec: Any) -> Run:
    """Validate one record (from JSON or a CSV row, where every value is a string)."""
    if not isinstance(rec, dict):
        raise RecordError("record is not an object")
    unknown = sorted(set(rec) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise RecordError(f"{unknown[0]}: unknown field")
    values = {k: (None if v == "" else v) for k, v in rec.items()}
    for key in REQUIRED:
        if values.get(key) is None:
            raise RecordError(f"{key}: required field is missing")
    name = values["job_name"]
    if not isinstance(name, str) or len(name) > 200:
        raise RecordError("job_name: must be a string of at most 200 characters")
    start = _time(values, "start_time")
    assert start is not None
    end = _time(values, "end_time")
    if end is not None and end < start:
        raise RecordError("end_time: before start_time")
    return Run(
        job_name=name,
        result=parse_result(values["result"]),
        start=start,
        end=end,
        job_type=_text(values, "job_type") or "generic",
        workload=_text(values, "workload"),
        repository=_text(values, "repository"),
        transferred_bytes=_number(values, "transferred_bytes"),
        protected_objects=_int(values, "protected_objects"),
        next_run=_time(values, "next_run"),
        enabled=_bool(values, "enabled"),
    )


def _time(values: dict[str, Any], key: str) -> float | None:
    """ISO 8601, or Unix seconds: a JSON number, or the same digits as text (CSV cells).

    >>> _time({"t": "1730000000.5"}, "t"), _time({"t": 1730000000.5}, "t")
    (1730000000.5, 1730000000.5)
    """
    raw = values.get(key)
    if raw is None:
        return None
    if isinstance(raw, str) and _UNIX_SECONDS.match(raw):
        raw = float(raw)  # at most 11 integer digits: exact to the microsecond
    if isinstance(raw, float | int) and not isinstance(raw, bool) and not 0 < raw < _MAX_UNIX_SECONDS:
        raw = None  # not finite, or past year 9999: no time any report can print
    ts = parse_time(raw)
    if ts is None:
        raise RecordError(f"{key}: want ISO 8601 (2026-01-15T22:00:00Z) or Unix seconds")
    return ts


def _text(values: dict[str, Any], key: str) -> str:
    raw = values.get(key)
    if raw is None:
        return ""
    if not isinstance(raw, str) or len(raw) > 64:
        raise RecordError(f"{key}: must be a string of at most 64 characters")
    return raw


def _number(values: dict[str, Any], key: str) -> float | None:
    raw = values.get(key)
    if raw is None:
        return None
    try:
        value = float(raw) if not isinstance(raw, bool) else -1.0
    except (TypeError, ValueError):
        value = -1.0
    if value < 0 or value != value:
        raise RecordError(f"{key}: must be a number >= 0")
    return value


def _int(values: dict[str, Any], key: str) -> int | None:
    value = _number(values, key)
    if value is not None and not value.is_integer():
        raise RecordError(f"{key}: must be a whole number")
    return None if value is None else int(value)


def _bool(values: dict[str, Any], key: str) -> bool:
    raw = values.get(key)
    if raw is None:
        return True
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise RecordError(f"{key}: must be true or false")


# --- reading files -------------------------------------------------------------------------


def read_records(name: str, text: str) -> tuple[list[Run], list[tuple[int, str]]]:
    """Parse one file; return the good runs and (line, message) for every bad record."""
    runs: list[Run] = []
    errors: list[tuple[int, str]] = []
    text = text.removeprefix("\ufeff")  # spreadsheets write a byte-order mark
    for line, rec in _raw_records(name, text, errors):
        try:
            runs.append(parse_run(rec))
        except RecordError as exc:
            errors.append((line, str(exc)))
    return runs, errors


def _raw_records(name: str, text: str, errors: list[tuple[int, str]]) -> list[tuple[int, Any]]:
    if name.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [k for k in REQUIRED if k not in (reader.fieldnames or [])]
        if missing:
            errors.append((1, f"header: missing column {missing[0]}"))
            return []
        out: list[tuple[int, Any]] = []
        try:
            for row in reader:
                if None in row:
                    errors.append((reader.line_num, "more cells than header columns"))
                    continue
                out.append((reader.line_num, row))
        except csv.Error as exc:
            errors.append((reader.line_num, f"CSV: {exc}"))
        return out
    if name.endswith(".jsonl"):
        out = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                errors.append((n, f"JSON: {exc.msg}"))
        return out
    return _json_array(text, errors)


def _json_array(text: str, errors: list[tuple[int, str]]) -> list[tuple[int, Any]]:
    """A JSON array (or ``{"runs": [...]}``) with the line each element starts on."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        errors.append((exc.lineno, f"JSON: {exc.msg}"))
        return []
    if isinstance(doc, dict) and set(doc) == {"runs"} and isinstance(doc["runs"], list):
        doc = doc["runs"]
        start = text.find("[", text.find('"runs"'))
    elif isinstance(doc, list):
        start = text.find("[")
    else:
        errors.append((1, 'want a JSON array of runs or {"runs": [...]}'))
        return []
    # Walk the array again to learn where each element starts.
    decoder = json.JSONDecoder()
    out: list[tuple[int, Any]] = []
    pos = start + 1
    try:
        for item in doc:
            while text[pos] in " \t\r\n,":
                pos += 1
            _, end = decoder.raw_decode(text, pos)
            out.append((text.count("\n", 0, pos) + 1, item))
            pos = end
    except (ValueError, IndexError):  # an unusual layout: report line 1 rather than fail
        return [(1, item) for item in doc]
    return out


class FolderClient:
    kind = "folder"

    def __init__(self, source: FolderSource, folder: Path) -> None:
        self.source = source
        self.folder = folder
        self.api_errors: dict[str, int] | None = None

    async def aclose(self) -> None:
        return None

    async def fetch(self, deadline: Deadline, stats: RequestStats) -> SourceData:
        try:
            files = sorted(p for p in self.folder.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))
        except OSError as exc:
            raise SourceError(Reason.IO, f"cannot list {self.folder.name}: {exc.strerror}") from None
        runs: list[Run] = []
        file_errors: dict[str, int] = {}
        for path in files:
            if deadline.expired():
                raise SourceError(Reason.DEADLINE, "scrape deadline reached while reading files")
            try:
                if path.stat().st_size > _MAX_FILE_BYTES:
                    raise OSError(0, "file larger than 32 MiB")
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                file_errors[path.name] = 1
                log.warning(
                    "cannot read backup record file",
                    extra={"source": self.source.name, "file": path.name, "err": str(exc)},
                )
                continue
            try:
                good, bad = read_records(path.name, text)
            except Exception as exc:  # never let one odd file hide the rest of the folder
                good, bad = [], [(1, f"unreadable: {type(exc).__name__}")]
            runs += good
            file_errors[path.name] = len(bad)
            for line, msg in bad[:5]:
                log.warning(
                    "malformed backup record",
                    extra={"source": self.source.name, "file": path.name, "line": line, "err": msg},
                )
        return SourceData(jobs=aggregate(runs), file_errors=file_errors)


def aggregate(runs: list[Run]) -> list[JobRecord]:
    """Fold run records into one state per job (the newest record wins)."""
    by_job: dict[str, list[Run]] = {}
    for run in runs:
        by_job.setdefault(run.job_name, []).append(run)
    jobs = []
    for name in sorted(by_job):
        history = sorted(by_job[name], key=lambda r: r.start, reverse=True)
        newest = history[0]
        finished = [r for r in history if r.end is not None]
        last = finished[0] if finished else None
        success = next((r for r in finished if r.result == "success"), None)
        # A run that ended with a warning still left a backup to restore from.
        restore_point = next((r for r in finished if r.result in ("success", "warning")), None)
        jobs.append(
            JobRecord(
                name=name,
                type=newest.job_type,
                enabled=newest.enabled,
                running=newest.end is None,
                last_result=last.result if last is not None else "none",
                last_run=newest.start,
                last_success=success.start if success is not None else None,
                last_restore_point=restore_point.start if restore_point is not None else None,
                next_run=newest.next_run,
                last_duration=(last.end - last.start) if last is not None and last.end else None,
                transferred_bytes=last.transferred_bytes if last is not None else None,
                protected_objects=newest.protected_objects,
                workload=newest.workload,
                repository=newest.repository,
            )
        )
    return jobs
