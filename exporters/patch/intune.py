"""Microsoft Intune through Graph: managed devices, Defender state, quality-update level.

Per scrape, through the Graph client the Microsoft 365 exporter uses (msal, paging,
throttling, the same multi-tenant app)::

    GET /v1.0/deviceManagement/managedDevices?$select=...          DeviceManagementManagedDevices.Read.All
    GET /v1.0/deviceManagement/managedDevices/{id}/windowsProtectionState   (the same permission)

Defender's state gives real-time protection, malware protection, ``signatureUpdateOverdue``
(Defender's own judgement; Graph serves no signature date) and the last quick and full
scan; it has no Windows Update scan time, so ``not_scanned`` is not judged for Intune.

Graph serves no per-device update state any more (``deviceUpdateStates`` answers 400 since
2023; the export-job reports cover expedited-update policies only and need a ReadWrite
permission), so the quality-update level is read from the device's OS build revision:
``10.0.26100.2605`` is build ``10.0.26100`` at revision 2605. A device whose revision is
below a configured cumulative update of its build lacks that month's security update (and
every later one), due from the release date of the first it lacks. Builds not configured
are not judged.

Defender's state is one request per Windows device: it is cached for
``protection_state_ttl`` (default 1h) and read with at most ``max_concurrent_requests``
requests at once, so a steady-state scrape costs the device list and the expired entries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any

# parse_time moves to mspwatch.common with the probe core (issue 7)
from mspwatch.common.timeparse import parse_time
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.http import RequestStats
from mspwatch.exporters.graph.client import Graph
from mspwatch.exporters.graph.errors import GraphError

from .records import (
    Antivirus,
    Classification,
    DeviceRecord,
    OsFamily,
    Role,
    Severity,
    SourceData,
    SourceError,
    SourceReason,
    Update,
)

DEVICE_FIELDS = (
    "id",
    "deviceName",
    "operatingSystem",
    "osVersion",
    "complianceState",
    "lastSyncDateTime",
    "managedDeviceOwnerType",
)
_REASONS: dict[str, SourceReason] = {
    "auth": SourceReason.AUTH,
    "forbidden": SourceReason.FORBIDDEN,
    "throttled": SourceReason.THROTTLED,
    "unavailable": SourceReason.UNAVAILABLE,
    "network": SourceReason.UNREACHABLE,
    "protocol": SourceReason.PROTOCOL,
    "deadline": SourceReason.DEADLINE,
}


@dataclass(frozen=True)
class QualityUpdate:
    """The latest cumulative (security) update of one Windows build."""

    revision: int
    released: date

    @property
    def released_at(self) -> float:
        # Noon UTC is the release day from UTC-11 to UTC+11, so the policy anchors it on
        # that month's Patch Tuesday in every customer zone.
        return datetime.combine(self.released, dtime(12, 0), UTC).timestamp()


def split_version(os_version: str) -> tuple[str, int] | None:
    """``10.0.26100.2605`` -> ``("10.0.26100", 2605)``; anything else -> None.

    >>> split_version("10.0.26100.2605"), split_version("17.2"), split_version("")
    (('10.0.26100', 2605), None, None)
    """
    parts = os_version.strip().split(".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    return ".".join(parts[:3]), int(parts[3])


def lacking_update(os_version: str, table: Mapping[str, Sequence[QualityUpdate]]) -> Update | None:
    """The security update a Windows device at ``os_version`` lacks, if any.

    Cumulative updates: the newest installs every older one, so a device below several
    lacks one update, due from the release of the first it lacks. A build not in the table
    is not judged.
    """
    split = split_version(os_version)
    if split is None:
        return None
    lacking = [u for u in table.get(split[0], ()) if split[1] < u.revision]
    if not lacking:
        return None
    first = min(lacking, key=lambda u: u.revision)
    return Update(
        classification=Classification.SECURITY,
        severity=Severity.IMPORTANT,
        failed=False,
        detected=first.released_at,
    )


def os_family(operating_system: object) -> OsFamily:
    text = operating_system.lower() if isinstance(operating_system, str) else ""
    if text.startswith("windows"):
        return OsFamily.WINDOWS
    if text in ("macos", "mac os", "macosx"):
        return OsFamily.MAC
    if text.startswith("linux"):
        return OsFamily.LINUX
    return OsFamily.OTHER  # iOS, Android, unknown


@dataclass
class _Cached:
    state: dict[str, Any] | None  # None: the device has no protection state (404)
    at: float  # monotonic


class IntuneClient:
    """One customer tenant's Intune devices; keeps the Defender cache across scrapes."""

    kind = "intune"

    def __init__(
        self,
        name: str,
        graph: Graph,
        graph_stats: RequestStats,  # the Graph client's own (cumulative) counts
        quality_updates: Mapping[str, Sequence[QualityUpdate]],
        *,
        protection_state_ttl: float = 3600.0,
        max_concurrent_requests: int = 8,
    ) -> None:
        self.name = name
        self._graph = graph
        self._graph_stats = graph_stats
        self._updates = {b: sorted(u, key=lambda q: q.revision) for b, u in quality_updates.items()}
        self._ttl = protection_state_ttl
        self._slots = asyncio.Semaphore(max_concurrent_requests)
        self._cache: dict[str, _Cached] = {}

    async def aclose(self) -> None:
        return None  # the HTTP pool is the exporter's, shared by every tenant

    async def fetch(self, deadline: Deadline, stats: RequestStats) -> SourceData:
        """List the tenant's managed devices and their Windows protection state."""
        before = self._graph_stats.requests, self._graph_stats.retries
        try:
            devices = await self._graph.list(
                "deviceManagement/managedDevices", deadline, {"$select": ",".join(DEVICE_FIELDS)}
            )
            windows = [d for d in devices if os_family(d.get("operatingSystem")) is OsFamily.WINDOWS]
            states = await asyncio.gather(*(self._protection(d, deadline) for d in windows))
        except GraphError as exc:
            raise SourceError(_REASONS.get(exc.reason, SourceReason.PROTOCOL), exc.detail) from None
        finally:
            stats.requests += self._graph_stats.requests - before[0]
            stats.retries += self._graph_stats.retries - before[1]
        by_id = {str(d.get("id")): s for d, s in zip(windows, states, strict=True)}
        for gone in self._cache.keys() - by_id.keys():  # retired or wiped devices
            del self._cache[gone]
        return SourceData(
            devices=[self._record(d, by_id.get(str(d.get("id")))) for d in devices],
            update_table={b: max(u.released_at for u in us) for b, us in self._updates.items() if us},
        )

    async def _protection(self, device: dict[str, Any], deadline: Deadline) -> dict[str, Any] | None:
        device_id = str(device.get("id") or "")
        cached = self._cache.get(device_id)
        if cached is not None and time.monotonic() - cached.at < self._ttl:
            return cached.state
        if not device_id or "/" in device_id:
            raise SourceError(SourceReason.MALFORMED, "managed device without a usable id")
        async with self._slots:
            try:
                state: dict[str, Any] | None = await self._graph.get(
                    f"deviceManagement/managedDevices/{device_id}/windowsProtectionState", deadline
                )
            except GraphError as exc:
                if exc.status != 404:
                    raise
                state = None  # not reported (yet): no antivirus series for the device
        self._cache[device_id] = _Cached(state, time.monotonic())
        return state

    def _record(self, d: dict[str, Any], protection: dict[str, Any] | None) -> DeviceRecord:
        family = os_family(d.get("operatingSystem"))
        version = str(d.get("osVersion") or "")
        updates: tuple[Update, ...] = ()
        missing = lacking_update(version, self._updates) if family is OsFamily.WINDOWS else None
        if missing is not None:
            updates = (missing,)
        av = None
        reboot = False
        if protection is not None:
            av = Antivirus(
                enabled=_bool(protection.get("malwareProtectionEnabled")),
                realtime=_bool(protection.get("realTimeProtectionEnabled")),
                signatures_current=_not(protection.get("signatureUpdateOverdue")),
                # Defender's scans, the only scan times Graph serves (no Windows Update scan
                # time, no signature date: see docs/patch-metrics.md).
                last_scan=max(
                    (
                        t
                        for t in (
                            parse_time(protection.get("lastQuickScanDateTime")),
                            parse_time(protection.get("lastFullScanDateTime")),
                        )
                        if t is not None and t > 0
                    ),
                    default=None,
                ),
            )
            reboot = protection.get("rebootRequired") is True
        return DeviceRecord(
            id=str(d.get("id")),
            name=str(d.get("deviceName") or d.get("id")),
            os_family=family,
            role=Role.WORKSTATION if family in (OsFamily.WINDOWS, OsFamily.MAC) else Role.OTHER,
            os_name=str(d.get("operatingSystem") or ""),
            os_version=version,
            last_contact=parse_time(d.get("lastSyncDateTime")),
            reboot_pending=reboot,  # Defender's rebootRequired; Graph gives no "since"
            updates=updates,
            antivirus=av,
        )


def _bool(raw: object) -> bool | None:
    return raw if isinstance(raw, bool) else None


def _not(raw: object) -> bool | None:
    return (not raw) if isinstance(raw, bool) else None
