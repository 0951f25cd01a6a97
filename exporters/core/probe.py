"""The probe core: what every multi-target exporter would otherwise write again.

An exporter is a :class:`ProbeApp`. It says how to read a target from the request
(:meth:`ProbeApp.target`, raising :class:`BadRequest` for a 400) and how to scrape it
(:meth:`ProbeApp.scrape`, returning its families or raising :class:`ProbeFailure`). The
core alone takes the exporter-wide in-flight slot within the deadline, bounds the scrape by
the deadline and emits the outcome, the same three families for every exporter::

    snmp_up 0.0
    snmp_scrape_error{reason="timeout"} 1.0
    snmp_scrape_error{reason="deadline"} 0.0
    ...the exporter's own families...
    snmp_scrape_duration_seconds 2.0041

A wait for a slot that outlasts the deadline, and a scrape that overruns it, are the
reason ``deadline``; a scrape that raises anything else unforeseen (a bug, an answer shape
nobody foresaw) is the reason ``internal``, logged once with its traceback, and still an
HTTP 200. Every declared reason has a series, at 0 unless it is why ``up`` is 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import ClassVar, Generic, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from .deadline import Deadline

log = logging.getLogger("mspwatch.probe")

T = TypeVar("T")

# The reasons the core itself gives, which every exporter's enum must declare.
DEADLINE = "deadline"  # no slot, or no answer, before the scrape deadline
INTERNAL = "internal"  # the scrape raised an exception nobody foresaw
CORE_REASONS = (DEADLINE, INTERNAL)


class BadRequest(Exception):
    """The request itself is wrong (missing target, unknown module): HTTP 400."""


class ProbeFailure(Exception):
    """The target could not be scraped; ``families`` are what still makes sense.

    No reason at all means "down, cause not known yet" (every error series stays 0).

    >>> class Reason(StrEnum):
    ...     TIMEOUT = "timeout"
    ...     DEADLINE = "deadline"
    >>> ProbeFailure(Reason.TIMEOUT, detail="no answer").reasons
    frozenset({<Reason.TIMEOUT: 'timeout'>})
    """

    def __init__(self, *reasons: StrEnum, detail: str = "", families: Sequence[Metric] = ()) -> None:
        super().__init__(", ".join(reasons) + (f": {detail}" if detail else ""))
        self.reasons = frozenset(reasons)
        self.detail = detail
        self.families = list(families)


class SourceError(Exception):
    """A source could not be read, for a bounded ``reason`` of the exporter's enum.

    ``detail`` is for logs and never holds credentials. Each exporter's clients raise a
    subclass that narrows ``reason`` to its own enum.
    """

    def __init__(self, reason: StrEnum, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


async def fetch_source(
    source: str,
    fetch: Awaitable[T],
    deadline: Deadline,
    *,
    malformed: StrEnum,
    down: Callable[[], Sequence[Metric]],
    log: logging.Logger,
) -> T:
    """Await one source's ``fetch`` by ``deadline``; a source that cannot be read raises
    :class:`ProbeFailure` carrying ``down()``'s families (its request counters).

    The reason is the :class:`SourceError`'s; ``deadline`` (of ``malformed``'s enum) when the
    deadline comes first; ``malformed`` for any other exception, raised while a client read
    an answer of a shape nobody foresaw (logged as an error; the others are info).
    """
    try:
        async with asyncio.timeout(deadline.remaining()):
            return await fetch
    except SourceError as exc:
        reason, detail = exc.reason, exc.detail
    except TimeoutError:
        reason, detail = type(malformed)(DEADLINE), "no answer before the scrape deadline"
    except Exception as exc:  # an answer the client could not read: still a 200
        reason, detail = malformed, f"{type(exc).__name__}: {exc}"[:300]
        log.error("source answer could not be mapped", extra={"source": source, "err": detail})
    if reason is not malformed:
        log.info("source down", extra={"source": source, "reason": str(reason), "detail": detail})
    raise ProbeFailure(reason, detail=detail, families=down())


class Families:
    """A one-shot collector handing pre-built families to a per-request registry."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def registry_of(families: Iterable[Metric]) -> CollectorRegistry:
    """A fresh registry serving exactly ``families`` (multi-target: one per request)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families(families))
    return registry


class _Slots:
    """The exporter-wide in-flight limit; resized when a reload changes it."""

    def __init__(self) -> None:
        self._size: int | None = None
        self._sem: asyncio.Semaphore | None = None

    def get(self, size: int | None) -> asyncio.Semaphore | None:
        # Scrapes holding the old semaphore release it; new ones share the new size.
        if size != self._size:
            self._size = size
            self._sem = None if size is None else asyncio.Semaphore(size)
        return self._sem


class ProbeApp(ABC, Generic[T]):
    """One multi-target exporter: the part that knows its source, behind the shared core.

    Subclasses set the class attributes, implement :meth:`target` and :meth:`scrape`, and
    may override :attr:`max_in_flight`, :meth:`reload`, :meth:`start` and :meth:`stop`.
    """

    namespace: ClassVar[str]  # "snmp": the prefix of every family
    probe_path: ClassVar[str]  # "/snmp"
    reasons: ClassVar[type[StrEnum]]  # every failure reason, declared once; has CORE_REASONS
    subject: ClassVar[str] = "target"  # what is scraped, for help texts: "device"
    up_help: ClassVar[str] = "1 if the target was scraped, 0 otherwise."
    # The reasons are appended: "..., 0 for the others: timeout, auth, deadline."
    error_help: ClassVar[str] = (
        "1 for the reason the {subject} could not be scraped ({namespace}_up 0), 0 for the others"
    )

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        reasons = cls.__dict__.get("reasons")
        if reasons is not None:
            missing = [r for r in CORE_REASONS if r not in {m.value for m in reasons}]
            if missing:
                raise TypeError(f"{cls.__name__}.reasons must declare {', '.join(map(repr, missing))}")

    def __init__(self) -> None:
        self._probe_slots = _Slots()

    @property
    def max_in_flight(self) -> int | None:
        """Scrapes of this exporter allowed at once (``None``: no limit); read per scrape."""
        return None

    @abstractmethod
    def target(self, params: Mapping[str, str]) -> T:
        """The target named by the query parameters; raise :class:`BadRequest` if none."""

    @abstractmethod
    async def scrape(self, target: T, deadline: Deadline) -> list[Metric]:
        """Scrape one target by ``deadline``: its families, or raise :class:`ProbeFailure`.

        :class:`BadRequest` may still be raised (a name that resolves outside an allowlist).
        """

    def reload(self) -> None:
        """Re-read the config; raise ``ConfigError`` and keep the old one on failure."""

    async def start(self) -> None:
        """Start background work (refreshers); called once the loop runs."""

    async def stop(self) -> None:
        """Stop background work and close clients."""

    # --- the core's half -------------------------------------------------------------------

    async def probe(self, params: Mapping[str, str], deadline: Deadline) -> CollectorRegistry:
        """Scrape the target named by ``params`` into a fresh registry, outcome included.

        Raises :class:`BadRequest` only; a failing target is ``<namespace>_up 0``, and so is
        one whose scrape crashed (reason ``internal``).
        """
        target = self.target(params)
        started = time.monotonic()
        reasons: frozenset[StrEnum] = frozenset()
        try:
            families = await self._bounded(target, deadline)
        except ProbeFailure as failure:
            reasons, families = failure.reasons, failure.families
            if not reasons <= set(self.reasons):
                raise TypeError(f"undeclared reason in {sorted(reasons)}") from failure
            up = False
        except BadRequest:
            raise
        except Exception:
            # Once, here, with the traceback; the answer says only the bounded reason. The
            # target is not logged: its text comes from the request (the server logs it safely).
            log.exception("scrape crashed", extra={"namespace": self.namespace})
            reasons, families, up = frozenset({self.reasons(INTERNAL)}), [], False
        else:
            up = True
        up_family, error_family, duration_family = self._outcome(up, reasons, time.monotonic() - started)
        return registry_of([up_family, error_family, *families, duration_family])

    async def _bounded(self, target: T, deadline: Deadline) -> list[Metric]:
        slots = self._probe_slots.get(self.max_in_flight)
        deadline_reason = self.reasons(DEADLINE)
        acquired = False
        try:
            if slots is not None:
                # Waiting for a slot counts against this scrape's deadline.
                try:
                    async with asyncio.timeout(deadline.remaining()):
                        await slots.acquire()
                except TimeoutError:
                    log.info("no probe slot before the deadline", extra={"namespace": self.namespace})
                    raise ProbeFailure(deadline_reason, detail="max in flight reached") from None
                acquired = True
            try:
                # The scrape bounds its own work by the deadline (and may then fail with the
                # families it has); this bound is for one that does not.
                async with asyncio.timeout(deadline.remaining() + _GRACE):
                    return await self.scrape(target, deadline)
            except TimeoutError:
                log.warning("scrape overran its deadline", extra={"namespace": self.namespace})
                raise ProbeFailure(deadline_reason, detail="scrape overran the deadline") from None
        finally:
            if acquired and slots is not None:
                slots.release()

    @classmethod
    def outcome_metrics(cls) -> list[tuple[str, str, str]]:
        """``(name, label, help)`` of the three families the core adds, for the catalogues."""
        ns = cls.namespace
        error = cls.error_help.format(subject=cls.subject, namespace=ns) + f": {', '.join(cls.reasons)}."
        return [
            (f"{ns}_up", "", cls.up_help),
            (f"{ns}_scrape_error", "reason", error),
            (f"{ns}_scrape_duration_seconds", "", _DURATION_HELP),
        ]

    def _outcome(self, up: bool, reasons: frozenset[StrEnum], duration: float) -> list[Metric]:
        (up_name, _, up_help), (error_name, _, error_help), (duration_name, _, _) = self.outcome_metrics()
        error = GaugeMetricFamily(error_name, error_help, labels=["reason"])
        for reason in self.reasons:
            error.add_metric([reason.value], 1.0 if reason in reasons else 0.0)
        return [
            GaugeMetricFamily(up_name, up_help, value=1.0 if up else 0.0),
            error,
            GaugeMetricFamily(duration_name, _DURATION_HELP, value=duration),
        ]


_DURATION_HELP = "Time this scrape took."
# A scrape that watches its deadline fails with its own families at the deadline; the core
# waits this much longer before cancelling it, so it does not race the scrape's own answer.
_GRACE = 0.1
