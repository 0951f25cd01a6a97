"""The scrape with a recording fake session: what it asks for and what it exports."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import generate_latest

from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.probe import registry_of
from mspwatch.exporters.snmp.client import Reason, SessionStats, SnmpError, Value
from mspwatch.exporters.snmp.config import WalkOptions
from mspwatch.exporters.snmp.profile import Oid, load_profiles
from mspwatch.exporters.snmp.scrape import LabelCache, scrape_device

from .helpers import value

UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
LAST_CHANGE = (1, 3, 6, 1, 2, 1, 31, 1, 5, 0)
IF_NAME = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
HC_IN = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6)
IN_ERRORS = (1, 3, 6, 1, 2, 1, 2, 2, 1, 14)
PROFILES = load_profiles()


class FakeSession:
    """Answers from a table of columns, remembers every walk, fails the roots it is told to."""

    def __init__(self, uptime: int, last_change: int, names: dict[int, bytes]) -> None:
        self.stats = SessionStats()
        self.scalars: dict[Oid, Value] = {
            UPTIME: uptime,
            OBJECT_ID: (1, 3, 6, 1, 4, 1, 9),
            LAST_CHANGE: last_change,
        }
        self.columns: dict[Oid, dict[int, Value]] = {
            IF_NAME: dict(names),
            HC_IN: {i: 1000 * i for i in names},
            IN_ERRORS: {i: 0 for i in names},
        }
        self.walked: list[Oid] = []
        self.failing: set[Oid] = set()

    async def get(self, oids: Sequence[Oid], deadline: Deadline) -> dict[Oid, Value]:
        return {o: self.scalars[o] for o in oids if o in self.scalars}

    async def walk(self, root: Oid, deadline: Deadline) -> list[tuple[Oid, Value]]:
        self.walked.append(root)
        if root in self.failing:
            raise SnmpError(Reason.TIMEOUT, "told to fail")
        return [((*root, i), v) for i, v in sorted(self.columns.get(root, {}).items())]


async def scrape(session: FakeSession, cache: LabelCache) -> str:
    families = await scrape_device(
        session,
        PROFILES,
        ["interfaces"],
        WalkOptions(),
        Deadline.after(5),
        cache,
        ("10.0.0.1", 161, "x"),
        clock=lambda: 0.0,
    )
    return generate_latest(registry_of(families)).decode()


RX = 'snmp_interface_receive_bytes_total{if_index="%d",interface="%s"}'


async def test_names_are_walked_once_then_cached() -> None:
    cache = LabelCache(max_age=3600)
    session = FakeSession(1000, 5, {1: b"Gi0/1", 2: b"Gi0/2"})
    await scrape(session, cache)
    session.walked.clear()
    text = await scrape(session, cache)
    assert IF_NAME not in session.walked
    assert value(text, RX % (2, "Gi0/2")) == 2000


async def test_reboot_table_change_and_new_rows_refresh_the_names() -> None:
    cache = LabelCache(max_age=3600)
    session = FakeSession(100_000, 5, {1: b"Gi0/1"})
    await scrape(session, cache)
    for change in ("reboot", "table", "row"):
        session.walked.clear()
        if change == "reboot":
            session.scalars[UPTIME] = 50
        elif change == "table":
            session.scalars[LAST_CHANGE] = 6
        else:
            session.columns[IF_NAME][7] = b"Gi0/7"
            session.columns[HC_IN][7] = 7
        text = await scrape(session, cache)
        assert IF_NAME in session.walked, change
    assert value(text, RX % (7, "Gi0/7")) == 7


async def test_a_failed_value_walk_keeps_the_cached_names() -> None:
    cache = LabelCache(max_age=3600)
    session = FakeSession(1000, 5, {1: b"Gi0/1"})
    await scrape(session, cache)
    session.failing.add(IN_ERRORS)
    text = await scrape(session, cache)
    assert value(text, 'snmp_profile_success{profile="interfaces"}') == 0
    assert value(text, RX % (1, "Gi0/1")) == 1000  # not interface=""


async def test_rows_without_their_names_are_left_out() -> None:
    session = FakeSession(1000, 5, {1: b"Gi0/1"})
    session.failing.add(IF_NAME)
    text = await scrape(session, LabelCache(max_age=3600))
    assert value(text, 'snmp_profile_success{profile="interfaces"}') == 0
    assert "snmp_interface_receive_bytes_total{" not in text
