"""Collector: keep one tenant's signals fresh in the background and serve the latest.

Each signal (health, issues, licences, secure_score, mfa) has its own interval. A refresh
runs under its own budget (``refresh.timeout``), never inside a scrape; a failed refresh
keeps the last good data (its age keeps growing) and is retried after ``refresh.retry`` or
the server's ``Retry-After``, whichever is later. Tenants never share a task, so a slow or
refusing tenant only ever delays itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.graph.client import RequestStats
from mspwatch.exporters.graph.errors import GraphError, Reason
from mspwatch.inventory import M365Tenant
from mspwatch.inventory.m365 import Signal

from .client import M365Client
from .config import Refresh
from .mapping import SignalState, TenantView

log = logging.getLogger("mspwatch.m365")

Clock = Callable[[], float]


@dataclass
class _Slot:
    state: SignalState
    data: Any = None
    next_due: float = 0.0
    running: asyncio.Task[None] | None = None


class TenantRefresher:
    """One tenant: its signals' latest data and the refreshes that keep it current."""

    def __init__(
        self,
        tenant: M365Tenant,
        client: M365Client,
        stats: RequestStats,
        refresh: Refresh,
        signals: Sequence[Signal],
        *,
        clock: Clock = time.time,
        slots: asyncio.Semaphore | None = None,
        per_tenant: int = 2,
    ) -> None:
        self.tenant = tenant
        self.client = client  # replaced on reload when Graph's transport changes
        self.stats = stats
        self.refresh_cfg = refresh
        self.clock = clock
        self._slots = slots  # shared by all tenants
        # One tenant never holds more than ``per_tenant`` of the shared slots (and Graph
        # throttles per tenant anyway).
        self._own_slots = asyncio.Semaphore(per_tenant)
        self._per_tenant = per_tenant
        self._wake = asyncio.Event()
        self._signals: dict[Signal, _Slot] = {
            s: _Slot(SignalState(interval=refresh.interval(s))) for s in signals
        }

    def reconfigure(
        self,
        refresh: Refresh,
        signals: Sequence[Signal],
        per_tenant: int,
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        """Apply new intervals, signals and limits on reload, keeping the data already fetched."""
        self.refresh_cfg = refresh
        if slots is not None:
            self._slots = slots
        if per_tenant != self._per_tenant:
            self._own_slots = asyncio.Semaphore(per_tenant)
            self._per_tenant = per_tenant
        kept: dict[Signal, _Slot] = {}
        for signal in signals:
            slot = self._signals.get(signal) or _Slot(SignalState(interval=refresh.interval(signal)))
            slot.state = replace(slot.state, interval=refresh.interval(signal))
            if slot.state.ok and slot.state.fetched_at is not None:
                slot.next_due = slot.state.fetched_at + slot.state.interval
            kept[signal] = slot
        for signal, slot in self._signals.items():
            if signal not in kept and slot.running is not None:
                slot.running.cancel()
        self._signals = kept
        self._wake.set()

    # --- refreshing ---------------------------------------------------------------------

    async def _fetch(self, signal: Signal, deadline: Deadline) -> Any:
        src = self.client
        if signal == "health":
            return await src.health(deadline)
        if signal == "issues":
            return await src.issues(deadline)
        if signal == "licences":
            return await src.licences(deadline)
        if signal == "secure_score":
            return await src.secure_score(deadline)
        return await src.mfa(deadline)

    async def refresh(self, signal: Signal) -> None:
        """Refresh one signal now; never raises (a failure is recorded as state)."""
        slot = self._signals[signal]
        cfg = self.refresh_cfg
        retry_after: float | None = None
        try:
            # Queue for a slot first (background work may wait), then start the budget: a
            # busy exporter delays refreshes but does not fail them.
            async with self._own_slots, self._slots or contextlib.nullcontext():
                deadline = Deadline.after(cfg.timeout)
                async with asyncio.timeout(cfg.timeout + 1.0):
                    data = await self._fetch(signal, deadline)
        except GraphError as exc:
            self._failed(signal, exc)
            retry_after = exc.retry_after
        except TimeoutError:
            self._failed(signal, GraphError(Reason.DEADLINE, "refresh overran its budget"))
        except Exception as exc:  # a bug must not kill the tenant's loop
            log.exception("refresh crashed", extra={"tenant": self.tenant.name, "signal": signal})
            self._failed(signal, GraphError(Reason.INTERNAL, type(exc).__name__))
        else:
            now = self.clock()
            if slot.state.attempted and not slot.state.ok:
                log.info("refresh recovered", extra={"tenant": self.tenant.name, "signal": signal})
            slot.data = data
            slot.state = replace(slot.state, attempted=True, ok=True, reason=None, fetched_at=now)
            slot.next_due = now + slot.state.interval
            return
        now = self.clock()
        wait = min(cfg.retry, slot.state.interval)
        if retry_after is not None:
            wait = max(wait, retry_after)
        slot.next_due = now + wait

    def _failed(self, signal: Signal, exc: GraphError) -> None:
        slot = self._signals[signal]
        if slot.state.reason != exc.reason:  # log changes, not every retry
            log.warning(
                "refresh failed",
                extra={
                    "tenant": self.tenant.name,
                    "signal": signal,
                    "reason": exc.reason,
                    "detail": exc.detail,
                },
            )
        slot.state = replace(slot.state, attempted=True, ok=False, reason=exc.reason)

    def _start(self, signal: Signal) -> asyncio.Task[None]:
        slot = self._signals[signal]
        if slot.running is None or slot.running.done():
            slot.running = asyncio.ensure_future(self.refresh(signal))
        return slot.running

    async def refresh_due(self, *, force: bool = False) -> None:
        """Refresh every signal that is due (every signal with ``force``), concurrently."""
        now = self.clock()
        tasks = [self._start(s) for s, slot in self._signals.items() if force or slot.next_due <= now]
        if tasks:
            await asyncio.gather(*tasks)

    def next_due(self) -> float:
        return min((slot.next_due for slot in self._signals.values()), default=self.clock() + 3600)

    async def run(self) -> None:
        """The tenant's background loop: start what is due, wake for the next due signal.

        Signals run side by side: a long listing (registration details of a big tenant) or
        a hanging request never holds back the next health refresh of the same tenant.
        """
        while True:
            now = self.clock()
            for signal, slot in self._signals.items():
                if slot.next_due <= now:
                    self._start(signal)
            running = [s.running for s in self._signals.values() if s.running and not s.running.done()]
            idle = [s.next_due for s in self._signals.values() if not (s.running and not s.running.done())]
            delay = min(max(min(idle, default=now + 3600.0) - now, 0.5), 3600.0)
            # Wake when a refresh finishes (its next due time is then known), when the next
            # one is due, or when a reload changed the intervals.
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait([*running, woken], timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
            self._wake.clear()

    # --- serving ------------------------------------------------------------------------

    async def wait_first(self, deadline: Deadline) -> None:
        """Before the first data of a signal exists, wait for its refresh, up to the deadline."""
        pending = [
            slot.running
            for slot in self._signals.values()
            if not slot.state.attempted and slot.running is not None and not slot.running.done()
        ]
        if pending and deadline.remaining() > 0:
            await asyncio.wait([asyncio.shield(t) for t in pending], timeout=deadline.remaining())

    def view(self) -> TenantView:
        def data(signal: Signal) -> Any:
            slot = self._signals.get(signal)
            return None if slot is None else slot.data

        return TenantView(
            signals={s: slot.state for s, slot in self._signals.items()},
            now=self.clock(),
            requests=self.stats,
            health=data("health"),
            issues=data("issues"),
            licences=data("licences"),
            secure_score=data("secure_score"),
            mfa=data("mfa"),
        )

    def tasks(self) -> list[asyncio.Task[None]]:
        return [slot.running for slot in self._signals.values() if slot.running is not None]

    def cancel(self) -> None:
        for slot in self._signals.values():
            if slot.running is not None:
                slot.running.cancel()
