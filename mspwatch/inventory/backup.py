"""Backup sources as the customer inventory declares them (no credentials here).

Each customer lists its sources; ``credentials`` names an entry of the exporter's own
config (``backup.yml``), so the inventory can be read without any secret::

    customers:
      - name: acme
        backup_sources:
          - name: acme-vbr
            kind: veeam
            url: https://vbr.acme.local:9419
            credentials: acme_veeam
            ca_file: certs/acme-vbr-ca.pem
            rpo:
              default: 26h
              jobs:
                - {match: "SQL*", rpo: 4h}
          - name: acme-nas-restic
            kind: restic
            snapshots_file: /var/lib/restic/acme-snapshots.json
          - name: acme-cloud
            kind: folder
            path: /srv/backup-drop/acme

Relative paths are relative to the inventory file.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from mspwatch.common.config import Duration, StrictModel

from .names import SourceName

_URL = re.compile(r"^https?://[^/\s?#@]+/?$")  # no user:password@ in URLs


def check_base_url(value: str, example: str) -> str:
    """An API's scheme, host and port, without a path or credentials.

    >>> check_base_url("https://vbr:9419/", "https://vbr:9419")
    'https://vbr:9419'
    """
    if not _URL.match(value):
        raise ValueError(f"must be http(s)://host[:port] without a path or credentials, e.g. {example}")
    return value.rstrip("/")


DEFAULT_RPO = 26 * 3600.0  # a daily job plus two hours of slack


class RpoRule(StrictModel):
    match: str = Field(min_length=1, description="glob on the job name (fnmatch, case-sensitive)")
    rpo: Duration
    """Recovery point objective of the matching jobs: the newest restore point may be at most this old."""


class RpoConfig(StrictModel):
    """RPO per job: the first rule whose glob matches the job name wins, else ``default``."""

    default: Duration = DEFAULT_RPO
    """RPO of jobs no rule matches."""
    jobs: list[RpoRule] = []
    """Per-job RPOs; the first matching rule wins."""

    def for_job(self, job_name: str) -> float:
        for rule in self.jobs:
            if fnmatch.fnmatchcase(job_name, rule.match):
                return rule.rpo
        return self.default


class _SourceBase(StrictModel):
    name: SourceName
    """Short name: the exporter's `target` and the `source` label (unique across customers)."""
    rpo: RpoConfig = RpoConfig()
    """Recovery point objectives of this source's jobs."""


class VeeamSource(_SourceBase):
    """Veeam Backup & Replication REST API v1 (default port 9419)."""

    kind: Literal["veeam"]
    """`veeam`: a Veeam Backup & Replication server's REST API."""
    url: str = Field(description="scheme, host and port of the VBR REST API: https://vbr:9419")
    credentials: str = Field(min_length=1, description="entry in the exporter's credentials")
    api_version: str = "1.1-rev2"
    """Sent as `x-api-version` on every call."""
    ca_file: Path | None = None
    """PEM CA bundle that signed the server's certificate (relative to the inventory)."""
    insecure_skip_verify: bool = False
    """Do not verify the server's certificate (must be asked for by name; avoid)."""
    page_size: int = Field(default=200, ge=1, le=1000)
    """Items asked for per page (`limit`); every page is read."""
    session_lookback: Duration = 8 * 86400.0
    """How far back sessions are listed each scrape."""
    request_timeout: Duration = 10.0
    """Time one API request may take; the scrape deadline cuts it shorter."""
    surebackup: bool = True
    """Read SureBackup sessions as restore tests."""
    transferred_bytes: bool = Field(
        default=True,
        description="read the last session's taskSessions for bytes (one request per new session)",
    )
    max_concurrent_requests: int = Field(default=4, ge=1, le=32)
    """API requests to this server at once during one scrape."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_base_url(value, "https://vbr:9419")

    @model_validator(mode="after")
    def _tls(self) -> VeeamSource:
        if self.insecure_skip_verify and self.ca_file is not None:
            raise ValueError("ca_file and insecure_skip_verify are mutually exclusive")
        return self


class ResticSource(_SourceBase):
    """``restic snapshots --json``, from a file the scheduler writes or a command."""

    kind: Literal["restic"]
    """`restic`: the output of `restic snapshots --json`, from a file or a command."""
    snapshots_file: Path | None = None
    """File holding `restic snapshots --json` output (relative to the inventory); or give `command`."""
    command: list[str] | None = Field(default=None, min_length=1)
    """Command printing `restic snapshots --json`, run each scrape; killed after `command_timeout`."""
    credentials: str | None = Field(
        default=None, description="entry whose password is passed as RESTIC_PASSWORD"
    )
    check_file: Path | None = Field(
        default=None, description="output of `restic check --json` written by the scheduler"
    )
    repository: str | None = Field(default=None, description="repository label; default: name")
    group_by: list[Literal["host", "paths", "tags"]] = Field(default=["host", "paths"], min_length=1)
    """Snapshot fields that make one backup job, as restic's `--group-by`."""
    command_timeout: Duration = 60.0
    """Time the command may run; its whole process group is killed then."""

    @model_validator(mode="after")
    def _one_input(self) -> ResticSource:
        if (self.snapshots_file is None) == (self.command is None):
            raise ValueError("set exactly one of snapshots_file and command")
        return self


class FolderSource(_SourceBase):
    """A drop folder of JSON/CSV run records (docs/backup-metrics.md has the schema)."""

    kind: Literal["folder"]
    """`folder`: JSON, JSON-lines or CSV files a backup product drops into a folder."""
    path: Path
    """The drop folder (relative to the inventory)."""


BackupSource = Annotated[VeeamSource | ResticSource | FolderSource, Field(discriminator="kind")]


def resolve(base: Path, path: Path | None) -> Path | None:
    """A configured path, relative to the file that configured it.

    >>> resolve(Path("/etc/mspwatch"), Path("drop/acme"))
    PosixPath('/etc/mspwatch/drop/acme')
    """
    if path is None:
        return None
    return path if path.is_absolute() else base / path
