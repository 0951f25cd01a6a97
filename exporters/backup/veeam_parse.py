"""Veeam B&R REST API v1 models -> plain records. Pure: no I/O, no clock.

A job state and its sessions become one :class:`JobPlan` (what the scrape still has to look
up beyond the session window), then a :class:`~.records.JobRecord`::

    >>> s = parse_session({"id": "s1", "jobId": "j1", "sessionType": "BackupJob",
    ...     "creationTime": "2026-01-15T01:00:00Z", "endTime": "2026-01-15T01:30:00Z",
    ...     "state": "Stopped", "result": {"result": "Success"}})
    >>> plan = plan_job({"id": "j1", "name": "SQL nightly", "status": "inactive"}, {"j1": [s]})
    >>> plan.record().last_result, plan.last_duration
    ('success', 1800.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mspwatch.common.timeparse import parse_time

from .records import JobRecord, RepositoryRecord, Result, parse_result

GIB = 1024.0**3
# Session results that leave a restore point: a run that ends in Warning still writes one.
RESTORE_POINT_RESULTS: tuple[Result, ...] = ("success", "warning")


@dataclass
class Session:
    id: str
    job_id: str
    name: str
    type: str
    created: float
    ended: float | None
    result: Result
    state: str


def parse_session(raw: dict[str, Any]) -> Session | None:
    """One ``SessionModel``; ``None`` without a creation time."""
    created = parse_time(raw.get("creationTime"))
    if created is None:
        return None
    result = raw.get("result")
    ended = parse_time(raw.get("endTime"))
    state = str(raw.get("state") or "")
    return Session(
        id=str(raw.get("id") or ""),
        job_id=str(raw.get("jobId") or ""),
        name=str(raw.get("name") or ""),
        type=str(raw.get("sessionType") or ""),
        created=created,
        # A session still working has no end time, whatever the server put there.
        ended=ended if state.lower() != "working" else None,
        result=parse_result(result.get("result") if isinstance(result, dict) else None),
        state=state,
    )


@dataclass
class JobPlan:
    """One job as its state and the session window show it; the scrape fills the gaps."""

    job_id: str
    name: str
    type: str
    enabled: bool
    running: bool
    last_result: Result
    last_run: float | None
    last_success: float | None
    last_restore_point: float | None
    next_run: float | None
    last_duration: float | None
    last_finished_id: str | None
    protected_objects: int | None
    workload: str
    repository: str
    transferred: float | None = None

    def record(self) -> JobRecord:
        return JobRecord(
            name=self.name,
            type=self.type,
            enabled=self.enabled,
            running=self.running,
            last_result=self.last_result,
            last_run=self.last_run,
            last_success=self.last_success,
            last_restore_point=self.last_restore_point,
            next_run=self.next_run,
            last_duration=self.last_duration,
            transferred_bytes=self.transferred,
            protected_objects=self.protected_objects,
            workload=self.workload,
            repository=self.repository,
        )


def label_value(raw: object, default: str = "unknown") -> str:
    """Enum-ish strings the API adds to with each revision: kept as given, bounded."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 64:
        return default
    return raw.strip()


def plan_job(raw: dict[str, Any], by_job: Mapping[str, list[Session]]) -> JobPlan | None:
    """One ``JobStateModel`` with its sessions (newest first); ``None`` without a name."""
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        return None
    job_id = str(raw.get("id") or "")
    status = str(raw.get("status") or "").lower()
    sessions = by_job.get(job_id, [])
    finished = [s for s in sessions if s.ended is not None]
    running = status == "running" or any(s.ended is None for s in sessions)
    # The newest finished session is the truth: an agent policy's own state can say
    # Success while the backup it ran failed.
    last = finished[0] if finished else None
    last_result = last.result if last is not None else parse_result(raw.get("lastResult"))
    success = next((s for s in finished if s.result == "success"), None)
    restore_point = next((s for s in finished if s.result in RESTORE_POINT_RESULTS), None)
    last_run = parse_time(raw.get("lastRun"))
    if sessions and (last_run is None or sessions[0].created > last_run):
        last_run = sessions[0].created
    objects = raw.get("objectsCount")
    return JobPlan(
        job_id=job_id,
        name=name,
        type=label_value(raw.get("type")),
        enabled=status != "disabled",
        running=running,
        last_result=last_result,
        last_run=last_run,
        last_success=success.created if success is not None else None,
        last_restore_point=restore_point.created if restore_point is not None else None,
        next_run=parse_time(raw.get("nextRun")),
        last_duration=(last.ended - last.created) if last is not None and last.ended else None,
        last_finished_id=last.id if last is not None and last.id else None,
        protected_objects=objects if isinstance(objects, int) and objects >= 0 else None,
        workload=label_value(raw.get("workload"), ""),
        repository=label_value(raw.get("repositoryName"), ""),
    )


def parse_repository(raw: dict[str, Any]) -> RepositoryRecord | None:
    """One ``RepositoryStateModel`` (sizes in GB, reported in bytes)."""
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        return None

    def gib(key: str) -> float | None:
        value = raw.get(key)
        return float(value) * GIB if isinstance(value, int | float) and value >= 0 else None

    return RepositoryRecord(
        name=name,
        type=label_value(raw.get("type")),
        capacity_bytes=gib("capacityGB"),
        free_bytes=gib("freeGB"),
    )


def sum_transferred(tasks: list[dict[str, Any]]) -> float | None:
    """Bytes a session transferred: the sum over its task sessions; ``None`` if none says."""
    total = 0.0
    seen = False
    for task in tasks:
        progress = task.get("progress")
        value = progress.get("transferredSize") if isinstance(progress, dict) else None
        if isinstance(value, int | float) and value >= 0:
            total += value
            seen = True
    return total if seen else None
