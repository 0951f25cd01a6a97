"""Clients a reload replaced stay open until the last scrape using them has ended.

A reload swaps in new clients at once, but a scrape that started before it still holds an
old one; closing that under it would turn a healthy target into ``up 0`` ("client has been
closed"). Scrapes hold a lease on the client they use; a retired client is closed when its
last lease ends (or at once if nobody holds it).

>>> import asyncio
>>> closed = []
>>> async def close(name: str) -> None:
...     closed.append(name)
>>> async def demo() -> list[str]:
...     leases = Leases(close)
...     async with leases.hold("old"):
...         leases.retire(["old"])
...         assert closed == []  # still in use
...     await leases.settle()
...     return closed
>>> asyncio.run(demo())
['old']
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

log = logging.getLogger("mspwatch.leases")

R = TypeVar("R")


class Leases(Generic[R]):
    """Use counts of shared clients, and the closing of retired ones once unused."""

    def __init__(self, close: Callable[[R], Awaitable[None]]) -> None:
        self._close = close
        # Keyed by identity: two equal clients are still two connections to close.
        self._users: dict[int, int] = {}
        self._retired: dict[int, R] = {}
        self._unused: list[R] = []  # retired while no loop ran: closed on the next settle()
        self._closing: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def hold(self, resource: R) -> AsyncIterator[R]:
        """Use ``resource`` for one scrape; a retire() meanwhile waits for the end."""
        key = id(resource)
        self._users[key] = self._users.get(key, 0) + 1
        try:
            yield resource
        finally:
            self._users[key] -= 1
            if self._users[key] <= 0:
                del self._users[key]
                if self._retired.pop(key, None) is not None:
                    self._schedule(resource)

    def in_use(self, resource: R) -> int:
        """Scrapes holding ``resource`` now."""
        return self._users.get(id(resource), 0)

    def retire(self, resources: Iterable[R]) -> None:
        """Close each resource once no scrape holds it (now, if none does)."""
        for resource in resources:
            if self.in_use(resource):
                self._retired[id(resource)] = resource
            else:
                self._schedule(resource)

    def _schedule(self, resource: R) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a reload outside the loop (tests, tools): close later
            self._unused.append(resource)
            return
        task = loop.create_task(self._close_one(resource))
        self._closing.add(task)  # keep a reference until it is done
        task.add_done_callback(self._closing.discard)

    async def _close_one(self, resource: R) -> None:
        try:
            await self._close(resource)
        except Exception as exc:  # closing is best effort: never take a scrape down with it
            log.warning("closing a retired client failed", extra={"err": f"{type(exc).__name__}: {exc}"})

    async def settle(self) -> None:
        """Close what is due now and wait for closings under way."""
        unused, self._unused = self._unused, []
        for resource in unused:
            await self._close_one(resource)
        if self._closing:
            await asyncio.gather(*list(self._closing))

    async def close_all(self, resources: Iterable[R]) -> None:
        """Shut down: close ``resources`` and every retired one, held or not."""
        await self.settle()
        pending = {id(r): r for r in [*self._retired.values(), *resources]}
        self._retired.clear()
        for resource in pending.values():
            await self._close_one(resource)
