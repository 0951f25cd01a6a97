"""Retired clients are closed once, after the last scrape holding them has ended."""

from __future__ import annotations

import asyncio

from mspwatch.exporters.core.leases import Leases


class Client:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def _leases() -> Leases[Client]:
    return Leases(lambda c: c.aclose())


async def test_a_held_client_is_closed_after_its_last_scrape() -> None:
    leases, old = _leases(), Client("old")
    first, second = asyncio.Event(), asyncio.Event()

    async def scrape(done: asyncio.Event) -> None:
        async with leases.hold(old):
            await done.wait()

    a = asyncio.ensure_future(scrape(first))
    b = asyncio.ensure_future(scrape(second))
    await asyncio.sleep(0)
    assert leases.in_use(old) == 2
    leases.retire([old])
    first.set()
    await a
    await leases.settle()
    assert old.closed == 0  # one scrape still holds it
    second.set()
    await b
    await leases.settle()
    assert old.closed == 1
    assert leases.in_use(old) == 0


async def test_an_unused_client_is_closed_at_once_and_equal_clients_are_two() -> None:
    leases = _leases()
    one, other = Client("same"), Client("same")
    async with leases.hold(other):
        leases.retire([one])
        await leases.settle()
        assert (one.closed, other.closed) == (1, 0)


def test_a_retire_outside_the_loop_is_closed_on_the_next_settle() -> None:
    leases, old = _leases(), Client("old")
    leases.retire([old])  # a reload from a tool or a test, no loop running
    assert old.closed == 0
    asyncio.run(leases.settle())
    assert old.closed == 1


async def test_close_all_closes_current_and_retired_once() -> None:
    leases, current, retired = _leases(), Client("current"), Client("retired")
    release = asyncio.Event()

    async def scrape() -> None:
        async with leases.hold(retired):
            await release.wait()

    task = asyncio.ensure_future(scrape())
    await asyncio.sleep(0)
    leases.retire([retired])
    await leases.close_all([current])
    assert (current.closed, retired.closed) == (1, 1)
    release.set()
    await task
    await leases.settle()
    assert retired.closed == 1  # not twice


async def test_a_failing_close_does_not_escape() -> None:
    async def boom(client: Client) -> None:
        raise OSError("socket already gone")

    leases: Leases[Client] = Leases(boom)
    leases.retire([Client("x")])
    await leases.settle()  # logged, not raised
