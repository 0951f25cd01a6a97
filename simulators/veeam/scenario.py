"""Scenario files for the Veeam B&R REST API simulator.

A scenario describes one backup server at a moment in time. Times are absolute ISO 8601
or relative to the scenario clock (``-8h``, ``+16h``, ``-2d``)::

    clock: "2026-01-15T06:00:00Z"
    users: {svc-monitor: "Sim-Passw0rd!"}
    repositories:
      - {name: Main Repo, type: WinLocal, capacity_gb: 10240, free_gb: 2048}
    jobs:
      - name: SQL nightly
        type: Backup
        repository: Main Repo
        objects: 4
        next_run: "+16h"
        sessions:
          - {start: "-8h", duration: 45m, result: Success, transferred: 1.2e9}
          - {start: "-32h", duration: 50m, result: Failed, message: "Disk full"}
        history: {start: "-56h", count: 300, every: 1h, duration: 10m, result: Success}
    sessions:                          # sessions of no listed job, e.g. SureBackup
      - {name: SureBackup Daily, type: SureBackup, start: "-5h", duration: 30m, result: Success}
    faults:
      - {path: /api/v1/jobs/states, status: 429, retry_after: 1}
      - {path: /api/v1/sessions, status: 500, skip: 1}

``clock: now`` starts at the real time and runs with it (the demo); an absolute clock
stands still until the admin route moves it (the tests). A session without ``duration`` is
still running. A session whose start lies after the
clock is not visible yet; one whose end lies after the clock shows as running.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from mspwatch.common.config import StrictModel, load_model

_PART = r"\d+(?:\.\d+)?(?:s|m|h|d|w)"
_SPAN = re.compile(rf"^(?:{_PART})+$")
_REL = re.compile(rf"^([+-])((?:{_PART})+)$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def span_seconds(text: str) -> float:
    """``1h30m`` -> 5400.0."""
    return sum(
        float(m.group(1)) * _UNITS[m.group(2)] for m in re.finditer(r"(\d+(?:\.\d+)?)(s|m|h|d|w)", text)
    )


NAMESPACE = uuid.UUID("5b8e4f7c-3d1a-4c2b-9e6f-0a1b2c3d4e5f")


def parse_duration(value: object) -> object:
    if isinstance(value, str):
        if not _SPAN.match(value.strip()):
            raise ValueError(f"invalid duration {value!r}, want e.g. 45m, 2h, 1h30m")
        return span_seconds(value.strip())
    return value


def parse_when(value: object) -> object:
    """Keep relative times (and ``now``) as strings for later; check absolute ones now."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        if _REL.match(text) or text == "now":
            return text
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"invalid time {value!r}, want ISO 8601 or -8h / +16h") from None
        return text
    raise ValueError("want a time: ISO 8601 or relative like -8h")


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
When = Annotated[str, BeforeValidator(parse_when)]


def resolve_when(when: str, clock: float) -> float:
    if when == "now":
        return time.time()
    m = _REL.match(when)
    if m:
        delta = span_seconds(m.group(2))
        return clock + delta if m.group(1) == "+" else clock - delta
    return datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(UTC).timestamp()


class SessionSpec(StrictModel):
    start: When
    duration: Seconds | None = None  # absent: still running
    result: str = "Success"  # None|Success|Warning|Failed, or anything else on purpose
    message: str = ""
    type: str | None = None  # sessionType; default from the job
    name: str | None = None
    transferred: float = 0.0
    canceled: bool = False


class HistorySpec(StrictModel):
    """Many generated sessions: ``count`` runs, every ``every``, going back from ``start``."""

    start: When
    count: int = Field(ge=1, le=100_000)
    every: Seconds
    duration: Seconds = 600.0
    result: str = "Success"
    transferred: float = 0.0
    until: When | None = None  # also generate runs forward up to here (a running clock)


class JobSpec(StrictModel):
    name: str
    id: str | None = None
    type: str = "Backup"
    session_type: str = "BackupJob"
    workload: str = "Vm"
    repository: str = ""
    objects: int = 1
    disabled: bool = False
    next_run: When | None = None
    last_result: str | None = None  # override what the sessions say (agent policies)
    description: str = ""
    sessions: list[SessionSpec] = []
    history: HistorySpec | None = None


class RepositorySpec(StrictModel):
    name: str
    id: str | None = None
    type: str = "WinLocal"
    capacity_gb: float
    free_gb: float
    used_gb: float | None = None
    path: str = ""


class FaultSpec(StrictModel):
    """Answer the next ``count`` matching requests (after ``skip`` of them) with a fault."""

    path: str
    method: Literal["GET", "POST"] | None = None
    status: int = Field(default=500, ge=100, le=599)
    count: int = Field(default=1, ge=1)
    skip: int = Field(default=0, ge=0)
    retry_after: float | None = None
    body: str | None = None  # raw body (e.g. broken JSON); default a documented error
    delay: Seconds = 0.0  # hold the answer this long (a hanging server)


class Scenario(StrictModel):
    # An absolute time freezes the clock there (tests); "now" starts it at the real time and
    # lets it run (demos). The admin routes move either.
    clock: When
    api_version_pattern: str = r"^1\.\d+-rev\d+$"
    users: dict[str, str] = Field(min_length=1)
    token_lifetime: Seconds = 900.0
    refresh_token_lifetime: Seconds = 14 * 86400.0
    default_limit: int = Field(default=200, ge=1)
    max_limit: int = Field(default=1000, ge=1)
    repositories: list[RepositorySpec] = []
    jobs: list[JobSpec] = []
    sessions: list[SessionSpec] = []
    faults: list[FaultSpec] = []

    @model_validator(mode="after")
    def _relative_clock(self) -> Scenario:
        if _REL.match(self.clock):
            raise ValueError("clock: must be an absolute time")
        return self


def load_scenario(path: Path) -> Scenario:
    return load_model(Scenario, path)


def stable_id(*parts: object) -> str:
    """Deterministic UUIDs, so golden files do not change between runs."""
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))
