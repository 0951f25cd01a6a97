"""Scenario files for the NinjaOne API v2 simulator.

A scenario is one NinjaOne instance at a moment in time. Times are absolute ISO 8601 or
relative to the scenario clock (``-8h``, ``+3d``), as in the Veeam simulator::

    clock: "2026-02-02T09:00:00Z"
    clients: {mspwatch-test: "Sim-Secret-1"}          # client_id: client_secret
    organizations:
      - name: Acme Dental
        devices:
          - name: acme-dc1
            class: WINDOWS_SERVER
            os: Windows Server 2022 Standard
            build: "10.0.20348.2966"
            last_contact: -5m
            last_boot: -2d
            last_scan: -8d                    # no patch scan for a week: not_scanned
            av: {product: Windows Defender, state: "ON", definitions: UP_TO_DATE}
            patches:
              - {kb: KB5050001, type: SECURITY_UPDATES, severity: CRITICAL, detected: "2026-01-13T19:00:00Z"}
              - kb: KB5050002
                detected: -20d
                attempts: [{at: -2h, ok: false}, {at: +1h, ok: true}]   # fails, then retries
          - {name: ws, count: 150, class: WINDOWS_WORKSTATION}    # ws-001 .. ws-150
    faults:
      - {path: /v2/devices, status: 429, retry_after: 1, skip: 1}
      - {path: /v2/queries/os-patches, expire_cursor: true}      # the next cursor page

Each device's patch scans (``last_scan``, default ``-6h``; with ``scan_history: 10d`` also
one every ``scan_every`` before it) are in the activity log (``/v2/activities``) once they
have happened.

A patch is visible once ``detected`` has passed. With an ``ok`` attempt in the past it is
installed: gone from ``os-patches``, listed in ``os-patch-installs``; a failed attempt in
the past and none ok makes it ``FAILED``. ``needs_reboot`` left out means: an install
after the last boot is waiting for a reboot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from mspwatch.common.config import StrictModel, load_model
from mspwatch.simulators.veeam.scenario import Seconds, When


class Attempt(StrictModel):
    at: When
    ok: bool = True


class PatchSpec(StrictModel):
    kb: str
    name: str | None = None  # default: a title built from kb and type
    type: str = "SECURITY_UPDATES"  # anything, on purpose, to test unknown values
    severity: str | None = "IMPORTANT"
    status: str = "MANUAL"  # MANUAL | APPROVED | REJECTED (FAILED follows from attempts)
    detected: When = "-1d"
    attempts: list[Attempt] = []


class AntivirusSpec(StrictModel):
    product: str = "Windows Defender"
    state: str = "ON"  # ON | OFF | SNOOZED | EXPIRED
    definitions: str = "UP_TO_DATE"  # UP_TO_DATE | OUT_OF_DATE | UNKNOWN
    version: str = "4.18.24090.11"


class DeviceSpec(StrictModel):
    name: str
    count: int | None = Field(default=None, ge=1, le=100_000)  # name-001 .. name-NNN
    class_: str = Field(default="WINDOWS_WORKSTATION", alias="class")
    os: str = "Windows 11 Pro"
    build: str = "10.0.26100.2605"
    last_contact: When = "-5m"
    last_boot: When = "-1d"
    offline: bool | None = None  # default: no contact for 15 minutes
    needs_reboot: bool | None = None
    # Patch scans in the activity log: the newest at ``last_scan`` (null: never scanned),
    # then one every ``scan_every`` back over ``scan_history`` (default: that one only).
    last_scan: When | None = "-6h"
    scan_every: Seconds = 86400.0
    scan_history: Seconds = 0.0
    av: AntivirusSpec | None = None
    patches: list[PatchSpec] = []


class OrganizationSpec(StrictModel):
    name: str
    devices: list[DeviceSpec] = []


class FaultSpec(StrictModel):
    """Answer the next ``count`` matching requests (after ``skip`` of them) with a fault."""

    path: str
    status: int = Field(default=500, ge=100, le=599)
    count: int = Field(default=1, ge=1)
    skip: int = Field(default=0, ge=0)
    retry_after: float | None = None
    body: str | None = None  # raw body (broken JSON, a wrong shape)
    delay: Seconds = 0.0  # hold the answer this long (a hanging server)
    # Only requests that carry a cursor match, and the cursor is forgotten (expired).
    expire_cursor: bool = False


class Scenario(StrictModel):
    clock: When
    clients: dict[str, str] = Field(min_length=1)
    token_lifetime: Seconds = 3600.0
    cursor_lifetime: Seconds = 600.0
    default_page_size: int = Field(default=100, ge=1)
    max_page_size: int = Field(default=10_000, ge=1)
    scopes: list[Literal["monitoring", "management", "control"]] = ["monitoring", "management", "control"]
    organizations: list[OrganizationSpec] = []
    faults: list[FaultSpec] = []


def load_scenario(path: Path) -> Scenario:
    return load_model(Scenario, path)
