"""Scenario files for the Graph simulator: tenants, their data, faults and a timeline.

A scenario (YAML)::

    start: now                         # the simulated clock starts here: `now` (the real time
                                       # when the simulator starts, the demo) or an ISO time
    tenants:
      - name: contoso                  # for humans and logs only
        tenant_id: 2b6f0c5e-0000-4000-8000-00000000c0de
        domains: [contoso.onmicrosoft.com]
        clients:
          - client_id: 4f1c2d9e-0000-4000-8000-000000000001
            secret: sim-contoso-secret  # accepted client secret (certificates: --trust-cert)
        deny: null                     # 401 or 403: answer every Graph call with it
        page_size: {issues: 2, userRegistrationDetails: 100}
        health:   [{id: Exchange, service: Exchange Online, status: ServiceDegradation}]
        issues:   [{id: EX1, service: Exchange Online, classification: incident, ...}]
        skus:     [{skuPartNumber: ENTERPRISEPACK, consumedUnits: 48, prepaidUnits: {...}}]
        secure_score: {currentScore: 41.5, maxScore: 72}
        users: {total: 250, mfa_registered: 180, admins: 5, admins_mfa_registered: 4}
        faults:                        # by the n-th request (1-based) to an endpoint
          - {endpoint: issues, request: 2, status: 429, retry_after: 1}
          - {endpoint: userRegistrationDetails, request: 2, expired_skiptoken: true}
        timeline:                      # from simulated second ``at`` on, replace these lists
          - {at: 600, health: [...]}

Any ``...DateTime`` value may be relative to the start (``-1h14m``, ``-3d``, ``+2h``), so an
estate that starts ``now`` looks the same on any day; absolute ISO times are served as given.
``--start`` on the command line overrides ``start`` (the tests freeze the estate that way).

Endpoints: token, healthOverviews, issues, subscribedSkus, secureScores,
userRegistrationDetails, managedDevices (Intune, paged) and windowsProtectionState (one
device's Defender state)::

        managed_devices:
          - {id: 7d2c..., deviceName: ACME-LT-01, operatingSystem: Windows, osVersion: 10.0.26100.2605,
             lastSyncDateTime: -1h55m,
             windowsProtectionState: {realTimeProtectionEnabled: true, signatureUpdateOverdue: false}}
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"

Endpoint = Literal[
    "token",
    "healthOverviews",
    "issues",
    "subscribedSkus",
    "secureScores",
    "userRegistrationDetails",
    "managedDevices",
    "windowsProtectionState",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Client(_Model):
    client_id: str
    secret: str | None = None


class Users(_Model):
    total: int = Field(ge=0)
    mfa_registered: int = Field(ge=0)
    admins: int = Field(default=0, ge=0)
    admins_mfa_registered: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Users:
        if self.mfa_registered > self.total or self.admins > self.total:
            raise ValueError("mfa_registered and admins must not exceed total")
        if self.admins_mfa_registered > min(self.admins, self.mfa_registered):
            raise ValueError("admins_mfa_registered must not exceed admins or mfa_registered")
        return self


class Fault(_Model):
    endpoint: Endpoint
    request: int = Field(default=1, ge=1)  # first matching request, 1-based per endpoint
    times: int = Field(default=1, ge=1)
    status: int | None = None
    retry_after: str | None = None
    expired_skiptoken: bool = False
    delay: float = Field(default=0.0, ge=0)  # seconds before answering (a slow Graph)

    def matches(self, endpoint: str, count: int) -> bool:
        return self.endpoint == endpoint and self.request <= count < self.request + self.times


class Data(_Model):
    """The lists a timeline step may replace."""

    health: list[dict[str, Any]] | None = None
    issues: list[dict[str, Any]] | None = None
    skus: list[dict[str, Any]] | None = None
    secure_score: dict[str, Any] | None = None
    users: Users | None = None
    # Intune: managedDevice objects; a device's "windowsProtectionState" (if any) is served
    # at .../managedDevices/{id}/windowsProtectionState, not in the list.
    managed_devices: list[dict[str, Any]] | None = None


class Step(Data):
    at: float = Field(ge=0)


class Tenant(Data):
    name: str
    tenant_id: str
    domains: list[str] = []
    clients: list[Client] = []
    deny: Literal[401, 403] | None = None
    page_size: dict[Endpoint, int] = {}
    faults: list[Fault] = []
    timeline: list[Step] = []

    def data_at(self, offset: float) -> Data:
        """The tenant's data ``offset`` simulated seconds after the start."""
        merged: dict[str, Any] = {k: getattr(self, k) for k in Data.model_fields}
        for step in sorted(self.timeline, key=lambda s: s.at):
            if step.at > offset:
                break
            for key in Data.model_fields:
                value = getattr(step, key)
                if value is not None:
                    merged[key] = value
        return Data(**merged)


class Scenario(_Model):
    start: datetime | Literal["now"]
    tenants: list[Tenant]

    def started(self, start: datetime | None = None) -> Scenario:
        """This scenario with its clock fixed (``start``, else its own; ``now``: the real time)
        and every relative ``...DateTime`` value resolved against it.

        >>> s = Scenario.model_validate({"start": "2026-11-02T07:55:00Z", "tenants": [
        ...     {"name": "a", "tenant_id": "t", "issues": [{"startDateTime": "-1h14m"}]}]})
        >>> s.started().tenants[0].issues
        [{'startDateTime': '2026-11-02T06:41:00Z'}]
        """
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0) if self.start == "now" else self.start
        assert isinstance(start, datetime)
        data = _resolve(self.model_dump(exclude={"start"}), start)
        return Scenario.model_validate({**data, "start": start})

    @property
    def clock(self) -> datetime:
        """The start of a :meth:`started` scenario."""
        if not isinstance(self.start, datetime):
            raise ValueError("the scenario has not been started")
        return self.start

    def tenant(self, key: str) -> Tenant | None:
        key = key.lower()
        for t in self.tenants:
            if t.tenant_id.lower() == key or key in (d.lower() for d in t.domains):
                return t
        return None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RELATIVE = re.compile(r"^([+-])((?:\d+[smhdw])+)$")


def relative_time(text: str, start: datetime) -> str | None:
    """``-1h14m`` against ``start`` as Graph writes times (``2026-11-02T06:41:00Z``); None if
    ``text`` is not relative.

    >>> start = datetime(2026, 11, 2, 7, 55, tzinfo=UTC)
    >>> relative_time("-3d16h55m", start), relative_time("x", start)
    ('2026-10-29T15:00:00Z', None)
    """
    m = _RELATIVE.match(text.strip())
    if m is None:
        return None
    seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", m.group(2)))
    at = start + timedelta(seconds=seconds if m.group(1) == "+" else -seconds)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _resolve(value: Any, start: datetime, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, start, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, start, key) for v in value]
    if isinstance(value, str) and key.endswith("DateTime"):
        resolved = relative_time(value, start)
        return value if resolved is None else resolved
    return value


def load_scenario(path: Path) -> Scenario:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Scenario.model_validate(data)


def exporter_config(scenario: Scenario, url: str, ca_file: Path) -> dict[str, Any]:
    """An ``m365-exporter`` config covering every tenant of ``scenario`` (demo wiring).

    The first client with a secret becomes the app ``msp``; the tenants keep their names.
    """
    client = next(c for t in scenario.tenants for c in t.clients if c.secret is not None)
    return {
        "apps": {"msp": {"client_id": client.client_id, "client_secret": client.secret}},
        "graph": {"url": url, "authority_host": url, "ca_file": str(ca_file)},
        "tenants": [{"name": t.name, "tenant_id": t.tenant_id} for t in scenario.tenants],
    }
