"""Plain records every backup client returns; they know nothing of Prometheus."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

# One request-statistics type for every exporter: the core HTTP client's (a scrape counts
# requests and retries in its own instance; restic and the drop folder count commands).
from mspwatch.exporters.core.http import RequestStats as RequestStats
from mspwatch.exporters.core.probe import SourceError as CoreSourceError

Result = Literal["success", "warning", "failed", "none", "unknown"]
RESULTS: tuple[Result, ...] = ("success", "warning", "failed", "none", "unknown")


class Reason(StrEnum):
    """Why a source could not be read: the ``reason`` of ``backup_scrape_error``."""

    DEADLINE = "deadline"  # the scrape deadline was reached before the source answered
    TIMEOUT = "timeout"  # a request got no answer within request_timeout, a command ran past command_timeout
    UNREACHABLE = "unreachable"  # connection refused, no route, name does not resolve
    TLS = "tls"  # the TLS handshake or certificate verification failed
    AUTH = "auth"  # credentials refused (wrong password, account locked)
    THROTTLED = "throttled"  # HTTP 429 and no time left to wait for Retry-After
    SERVER_ERROR = "server_error"  # HTTP 5xx after the retry
    HTTP_ERROR = "http_error"  # another unexpected HTTP status
    MALFORMED = "malformed"  # the answer was not the documented JSON
    COMMAND_FAILED = "command_failed"  # the configured command exited non-zero or could not start
    IO = "io"  # a configured file or folder is missing or unreadable
    INTERNAL = "internal"  # the scrape crashed (a bug): see the exporter's log


class SourceError(CoreSourceError):
    """A source could not be read; ``detail`` is for logs and never holds credentials."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason: Reason = reason


_RESULT_ALIASES: dict[str, Result] = {
    "success": "success",
    "succeeded": "success",
    "ok": "success",
    "warning": "warning",
    "failed": "failed",
    "failure": "failed",
    "error": "failed",
    "none": "none",
}


def parse_result(raw: object) -> Result:
    """Map a product's result value to a state; anything unrecognised is ``unknown``.

    >>> parse_result("Success"), parse_result("None"), parse_result("Pending")
    ('success', 'none', 'unknown')
    """
    if not isinstance(raw, str):
        return "unknown"
    return _RESULT_ALIASES.get(raw.strip().lower(), "unknown")


@dataclass(frozen=True)
class JobRecord:
    """The state of one backup job (or policy, or restic snapshot group)."""

    name: str
    type: str
    enabled: bool = True
    running: bool = False
    last_result: Result = "none"
    last_run: float | None = None  # Unix seconds
    last_success: float | None = None  # start of the newest run with result success
    # start of the newest run that left a restore point: success or warning (a Veeam run
    # that warns still writes one; every restic snapshot is one). A success always counts.
    last_restore_point: float | None = None
    next_run: float | None = None
    last_duration: float | None = None  # seconds, of the last finished run
    transferred_bytes: float | None = None  # of the last finished run
    protected_objects: int | None = None
    workload: str = ""
    repository: str = ""


@dataclass(frozen=True)
class RepositoryRecord:
    name: str
    type: str
    capacity_bytes: float | None
    free_bytes: float | None


@dataclass(frozen=True)
class RestoreTest:
    """One restore test: a SureBackup session or an engineer's log entry."""

    job_name: str
    timestamp: float
    result: Result
    method: Literal["surebackup", "log"]


@dataclass
class SourceData:
    """Everything one scrape of one source found."""

    jobs: list[JobRecord] = field(default_factory=list)
    repositories: list[RepositoryRecord] = field(default_factory=list)
    restore_tests: list[RestoreTest] = field(default_factory=list)
    # drop folder only: file name -> number of malformed lines (0 for a clean file)
    file_errors: dict[str, int] | None = None
    # restic only: repository -> (timestamp, passed) of the last `restic check`
    checks: dict[str, tuple[float, bool]] = field(default_factory=dict)
