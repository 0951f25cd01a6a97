"""Scrape: one device's session bound to its profiles and the mapping, for one scrape.

Output for a device that answers (abridged; the core adds ``snmp_up`` and friends)::

    snmp_device_uptime_seconds 1.2345e+06
    snmp_profile_success{profile="interfaces"} 1
    snmp_scrape_pdus_sent 14

A device that does not answer raises :class:`ProbeFailure` with its reason and the request
counters, so the core answers ``snmp_up 0`` and ``snmp_scrape_error{reason="timeout"} 1``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric

from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.probe import ProbeFailure

from .client import SessionStats, SnmpError, SnmpSession, Value
from .config import WalkOptions
from .mapping import DeviceData, Families, map_profile
from .profile import Oid, Profile, TableSpec

log = logging.getLogger("mspwatch.snmp")

SYS_OBJECT_ID: Oid = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)


@dataclass
class CachedLabels:
    """Lookup columns (index -> interface name, ...) of one device."""

    uptime: int | None
    fetched_at: float
    change: dict[Oid, Value | None]
    columns: dict[Oid, dict[Oid, Value]] = field(default_factory=dict)
    indexes: dict[str, set[Oid]] = field(default_factory=dict)  # profile/table -> rows seen


class LabelCache:
    """Per-device lookup cache, bounded, dropped on reboot or a table change."""

    def __init__(self, max_age: float, max_devices: int = 100_000) -> None:
        self.max_age = max_age
        self.max_devices = max_devices
        self._entries: OrderedDict[tuple[str, int, str], CachedLabels] = OrderedDict()

    def get(
        self,
        key: tuple[str, int, str],
        uptime: int | None,
        change: dict[Oid, Value | None],
        now: float,
    ) -> CachedLabels:
        entry = self._entries.get(key)
        rebooted = (
            entry is not None and uptime is not None and entry.uptime is not None and (uptime < entry.uptime)
        )
        if entry is None or rebooted or entry.change != change or now - entry.fetched_at > self.max_age:
            entry = CachedLabels(uptime=uptime, fetched_at=now, change=change)
        entry.uptime = uptime
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_devices:
            self._entries.popitem(last=False)
        return entry


def _gauge(name: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, _HELP[name], value=value)


def choose_profiles(profiles: dict[str, Profile], sys_object_id: Oid | None) -> list[Profile]:
    """Vendor profiles whose sysObjectID prefix matches, then the generic ones."""
    vendor = [p for p in profiles.values() if p.match and p.applies_to(sys_object_id)]
    return vendor + [p for p in profiles.values() if not p.match]


# The scrape's own metrics: (name, labels, help). The catalogue documents them from here
# (after the core's snmp_up, snmp_scrape_error and snmp_scrape_duration_seconds).
SCRAPE_METRICS: list[tuple[str, str, str]] = [
    (
        "snmp_profile_success",
        "profile",
        "1 when every OID of the profile was read; 0 on timeout, agent error or broken walk "
        "(what was read before the failure is still exported).",
    ),
    ("snmp_scrape_pdus_sent", "", "SNMP requests sent in this scrape, retries included."),
    ("snmp_scrape_retries", "", "SNMP requests re-sent after a timeout in this scrape."),
    ("snmp_scrape_values_returned", "", "Variable bindings received in this scrape."),
    (
        "snmp_scrape_lookup_cache_hits",
        "",
        "Tables whose lookup labels (ifIndex -> ifName, ...) came from the per-device cache, "
        "dropped when sysUpTime goes back (reboot), a table's change OIDs change, an unknown "
        "row appears, or after lookup_cache_max_age.",
    ),
    (
        "snmp_scrape_invalid_values",
        "",
        "Values skipped: non-numeric where a number belongs, out of the MIB's range, or a row "
        "whose labels repeat another row's.",
    ),
]
_HELP = {name: text for name, _labels, text in SCRAPE_METRICS}


class DeviceScrape:
    """One scrape of one device; walks each needed column once, concurrently."""

    def __init__(self, session: SnmpSession, options: WalkOptions, deadline: Deadline) -> None:
        self.session = session
        self.deadline = deadline
        self._walk_slots = asyncio.Semaphore(options.max_concurrent_walks)
        self._walks: dict[Oid, asyncio.Task[list[tuple[Oid, Value]]]] = {}
        self.columns: dict[Oid, dict[Oid, Value]] = {}
        self.incomplete: set[Oid] = set()
        self.cache_hits = 0

    async def _walk_once(self, root: Oid) -> list[tuple[Oid, Value]]:
        async with self._walk_slots:
            return await self.session.walk(root, self.deadline)

    async def column(self, root: Oid) -> dict[Oid, Value]:
        """Walk a column (memoised per scrape: profiles share columns) keyed by row index."""
        task = self._walks.get(root)
        if task is None:
            task = asyncio.ensure_future(self._walk_once(root))
            self._walks[root] = task
        n = len(root)
        try:
            rows = await asyncio.shield(task)  # one waiter's cancellation must not end it
        except SnmpError as exc:
            self.columns[root] = {oid[n:]: v for oid, v in exc.partial}
            self.incomplete.add(root)
            raise
        col = {oid[n:]: v for oid, v in rows}
        self.columns[root] = col
        return col

    def cancel(self) -> None:
        """Stop walks nobody waits for any more (the scrape ended early)."""
        for task in self._walks.values():
            task.cancel()

    async def _table(self, table: TableSpec, key: str, cached: CachedLabels) -> None:
        # Values first. Each metric's preferred source (the 64-bit counter) is walked; a
        # fallback (the 32-bit one) only when the preferred column misses rows that the
        # table has, so no row is dropped and no column is walked for nothing.
        failure: SnmpError | None = None
        extra: list[Oid] = []
        for spec in table.metrics:
            extra += [c for c in spec.columns if c not in {s.oid for s in spec.sources}]
        try:
            await _gather(
                [self.column(spec.sources[0].oid) for spec in table.metrics]
                + [self.column(c) for c in dict.fromkeys(extra)]
            )
            rows = {i for spec in table.metrics for i in self.columns.get(spec.sources[0].oid, {})}

            async def fallbacks(sources: Sequence[Oid]) -> None:
                covered = set(self.columns.get(sources[0], {}))
                for oid in sources[1:]:
                    if rows <= covered:
                        return
                    covered |= set(await self.column(oid))

            await _gather([fallbacks([s.oid for s in spec.sources]) for spec in table.metrics])
        except SnmpError as exc:
            failure = exc  # still label what was read, below
        rows = {i for spec in table.metrics for s in spec.sources for i in self.columns.get(s.oid, {})}
        lookup_oids = list(dict.fromkeys(o for ls in table.labels.values() for o in ls.oids))
        known = cached.indexes.get(key)
        if known is not None and rows <= known and all(o in cached.columns for o in lookup_oids):
            self.cache_hits += 1
            for oid in lookup_oids:
                self.columns.setdefault(oid, cached.columns[oid])
        else:
            try:
                await _gather([self.column(o) for o in lookup_oids])
            except SnmpError as exc:
                failure = failure or exc
            else:
                for oid in lookup_oids:
                    cached.columns[oid] = self.columns[oid]
                cached.indexes[key] = rows
        if failure is not None:
            raise failure

    async def profile(self, profile: Profile, cached: CachedLabels, scalars: dict[Oid, Value]) -> None:
        wanted = [s.oid for spec in profile.scalars for s in spec.sources]
        wanted += [o for spec in profile.scalars for ls in spec.labels.values() for o in ls.oids]
        missing = [o for o in dict.fromkeys(wanted) if o not in scalars]
        if missing:
            scalars.update(await self.session.get(missing, self.deadline))
        await _gather([self._table(t, f"{profile.name}/{i}", cached) for i, t in enumerate(profile.tables)])


async def _gather(aws: Iterable[asyncio.Future[object] | object]) -> None:
    """Run concurrently; wait for all; re-raise the first SnmpError."""
    results = await asyncio.gather(*aws, return_exceptions=True)  # type: ignore[arg-type]
    for r in results:
        if isinstance(r, BaseException):
            raise r


def _profile_failed(target: str, profile: str, exc: BaseException) -> None:
    if isinstance(exc, SnmpError):
        log.info(
            "profile failed",
            extra={"target": target, "profile": profile, "reason": exc.reason, "detail": exc.detail},
        )
    else:  # a bug or an agent's value we did not foresee: this profile fails, not the scrape
        log.error("profile crashed", exc_info=exc, extra={"target": target, "profile": profile})


def session_families(stats: SessionStats) -> list[Metric]:
    """The request counters of one scrape, also exported when the device did not answer."""
    return [
        _gauge("snmp_scrape_pdus_sent", stats.pdus_sent),
        _gauge("snmp_scrape_retries", stats.retries),
        _gauge("snmp_scrape_values_returned", stats.values),
    ]


async def scrape_device(
    session: SnmpSession,
    profiles: dict[str, Profile],
    modules: list[str] | None,
    options: WalkOptions,
    deadline: Deadline,
    cache: LabelCache,
    cache_key: tuple[str, int, str],
    clock: Callable[[], float] = time.time,
) -> list[Metric]:
    """Scrape one device; a device that does not answer raises :class:`ProbeFailure`."""
    target = cache_key[0]
    try:
        # Liveness asks for two OIDs every agent has, so no agent fails it for an OID it lacks.
        scalars = await session.get([SYS_OBJECT_ID, SYS_UPTIME], deadline)
    except SnmpError as exc:
        log.info("device down", extra={"target": target, "reason": exc.reason, "detail": exc.detail})
        raise ProbeFailure(exc.reason, detail=exc.detail, families=session_families(session.stats)) from None
    sys_oid = scalars.get(SYS_OBJECT_ID)
    chosen = (
        [profiles[m] for m in modules]
        if modules
        else choose_profiles(profiles, sys_oid if isinstance(sys_oid, tuple) else None)
    )
    change_oids = sorted({o for p in chosen for t in p.tables for o in t.change_oids})
    change: dict[Oid, Value | None] = {}
    if change_oids:
        try:
            got = await session.get(change_oids, deadline)
        except SnmpError:
            got = {}  # the cache then relies on reboots, new rows and its maximum age
        change = {o: got.get(o) for o in change_oids}
    uptime = scalars.get(SYS_UPTIME)
    cached = cache.get(cache_key, uptime if isinstance(uptime, int) else None, change, clock())
    scrape = DeviceScrape(session, options, deadline)
    try:
        results = await asyncio.gather(
            *(scrape.profile(p, cached, scalars) for p in chosen), return_exceptions=True
        )
    finally:
        scrape.cancel()
    success = GaugeMetricFamily("snmp_profile_success", _HELP["snmp_profile_success"], labels=["profile"])
    mapped = Families()
    data = DeviceData(scalars, scrape.columns, clock(), frozenset(scrape.incomplete))
    for profile, result in zip(chosen, results, strict=True):
        # Failed profiles still contribute what was read before the failure.
        try:
            map_profile(profile, data, mapped)
        except Exception as exc:
            result = exc
        if isinstance(result, BaseException):
            _profile_failed(target, profile.name, result)
        success.add_metric([profile.name], 0.0 if isinstance(result, BaseException) else 1.0)
    return [
        *mapped.metrics(),
        success,
        _gauge("snmp_scrape_lookup_cache_hits", scrape.cache_hits),
        _gauge("snmp_scrape_invalid_values", mapped.invalid_values),
        *session_families(session.stats),
    ]
