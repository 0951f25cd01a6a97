"""Microsoft 365 client: Graph reads turned into plain records (no Prometheus here).

Endpoints (application permissions in brackets)::

    /admin/serviceAnnouncement/healthOverviews          [ServiceHealth.Read.All]
    /admin/serviceAnnouncement/issues                   [ServiceHealth.Read.All]
    /subscribedSkus                                     [Organization.Read.All]
    /security/secureScores?$top=1                       [SecurityEvents.Read.All]
    /reports/authenticationMethods/userRegistrationDetails  [AuditLog.Read.All]

User registration details are counted page by page into totals; no per-user record leaves
this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mspwatch.common.timeparse import parse_time
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.graph.client import Graph, Record
from mspwatch.exporters.graph.errors import GraphError, Reason


@dataclass(frozen=True)
class ServiceHealth:
    id: str  # "Exchange"
    service: str  # "Exchange Online"
    status: str  # as Graph sent it; the mapping folds case and unknown values


@dataclass(frozen=True)
class Issue:
    id: str  # "EX123456"
    service: str
    classification: str
    status: str
    resolved: bool
    start: float | None  # epoch seconds


@dataclass(frozen=True)
class Sku:
    sku_id: str
    part_number: str  # "ENTERPRISEPACK"
    consumed: float
    enabled: float
    suspended: float
    warning: float
    locked_out: float


@dataclass(frozen=True)
class SecureScore:
    current: float
    max: float
    created: float | None


@dataclass(frozen=True)
class MfaCounts:
    users: int
    registered: int
    admins: int
    admins_registered: int


def _str(record: Record, key: str, required: bool = True) -> str:
    value = record.get(key)
    if isinstance(value, str) and value:
        return value
    if required:
        raise GraphError(Reason.PROTOCOL, f"record without {key!r}")
    return ""


def _num(record: Any, key: str) -> float:
    value = record.get(key) if isinstance(record, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


class M365Client:
    """The reads behind each signal, for one tenant."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    async def health(self, deadline: Deadline) -> list[ServiceHealth]:
        rows = await self.graph.list("admin/serviceAnnouncement/healthOverviews", deadline)
        return [
            ServiceHealth(_str(r, "id"), _str(r, "service", False) or _str(r, "id"), _str(r, "status", False))
            for r in rows
        ]

    async def issues(self, deadline: Deadline) -> list[Issue]:
        # $select leaves out posts and descriptions: the bulk of each issue, never exported.
        rows = await self.graph.list(
            "admin/serviceAnnouncement/issues",
            deadline,
            {"$select": "id,service,classification,status,isResolved,startDateTime"},
        )
        return [
            Issue(
                id=_str(r, "id"),
                service=_str(r, "service", False),
                classification=_str(r, "classification", False),
                status=_str(r, "status", False),
                resolved=r.get("isResolved") is True,
                start=parse_time(r.get("startDateTime")),
            )
            for r in rows
        ]

    async def licences(self, deadline: Deadline) -> list[Sku]:
        rows = await self.graph.list("subscribedSkus", deadline)
        out = []
        for r in rows:
            prepaid = r.get("prepaidUnits") or {}
            out.append(
                Sku(
                    sku_id=_str(r, "skuId", False),
                    part_number=_str(r, "skuPartNumber", False) or _str(r, "skuId"),
                    consumed=_num(r, "consumedUnits"),
                    enabled=_num(prepaid, "enabled"),
                    suspended=_num(prepaid, "suspended"),
                    warning=_num(prepaid, "warning"),
                    locked_out=_num(prepaid, "lockedOut"),
                )
            )
        return out

    async def secure_score(self, deadline: Deadline) -> SecureScore | None:
        # Newest first; $top=1 is the latest daily snapshot. No paging: one record.
        body = await self.graph.get("security/secureScores", deadline, {"$top": "1"})
        rows = body.get("value")
        if not isinstance(rows, list):
            raise GraphError(Reason.PROTOCOL, "secureScores without a 'value' list")
        if not rows or not isinstance(rows[0], dict):
            return None
        latest = rows[0]
        for key in ("currentScore", "maxScore"):
            if isinstance(latest.get(key), bool) or not isinstance(latest.get(key), int | float):
                raise GraphError(Reason.PROTOCOL, f"secureScores without a numeric {key!r}")
        return SecureScore(
            current=_num(latest, "currentScore"),
            max=_num(latest, "maxScore"),
            created=parse_time(latest.get("createdDateTime")),
        )

    async def mfa(self, deadline: Deadline) -> MfaCounts:
        rows = await self.graph.list(
            "reports/authenticationMethods/userRegistrationDetails",
            deadline,
            {"$select": "id,isAdmin,isMfaRegistered"},
        )
        users = registered = admins = admins_registered = 0
        for r in rows:
            users += 1
            is_registered = r.get("isMfaRegistered") is True
            registered += is_registered
            if r.get("isAdmin") is True:
                admins += 1
                admins_registered += is_registered
        return MfaCounts(users, registered, admins, admins_registered)
