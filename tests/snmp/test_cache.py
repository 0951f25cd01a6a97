"""The per-device lookup cache: kept across scrapes, dropped on reboot or table change."""

from __future__ import annotations

from mspwatch.exporters.snmp.scrape import LabelCache

KEY = ("10.0.0.1", 161, "public_v2")
IF_LAST_CHANGE = (1, 3, 6, 1, 2, 1, 31, 1, 5, 0)
NAMES = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)


def _fill(cache: LabelCache, uptime: int, change: int, now: float) -> None:
    entry = cache.get(KEY, uptime, {IF_LAST_CHANGE: change}, now)
    entry.columns[NAMES] = {(1,): b"Gi0/1"}


def _cached(cache: LabelCache, uptime: int, change: int, now: float) -> bool:
    return NAMES in cache.get(KEY, uptime, {IF_LAST_CHANGE: change}, now).columns


def test_kept_while_nothing_changes() -> None:
    cache = LabelCache(max_age=3600)
    _fill(cache, uptime=1000, change=5, now=0)
    assert _cached(cache, uptime=7000, change=5, now=60)


def test_dropped_when_the_device_rebooted() -> None:
    cache = LabelCache(max_age=3600)
    _fill(cache, uptime=100_000, change=5, now=0)
    assert not _cached(cache, uptime=300, change=5, now=60)


def test_dropped_when_the_interface_table_changed() -> None:
    cache = LabelCache(max_age=3600)
    _fill(cache, uptime=1000, change=5, now=0)
    assert not _cached(cache, uptime=7000, change=6, now=60)


def test_dropped_after_max_age() -> None:
    cache = LabelCache(max_age=3600)
    _fill(cache, uptime=1000, change=5, now=0)
    assert not _cached(cache, uptime=1000 + 360_100, change=5, now=3601)


def test_bounded_by_device_count() -> None:
    cache = LabelCache(max_age=3600, max_devices=2)
    for host in ("a", "b", "c"):
        cache.get((host, 161, "x"), 1, {}, 0).columns[NAMES] = {}
    assert NAMES not in cache.get(("a", 161, "x"), 1, {}, 0).columns  # evicted, oldest first
    assert NAMES in cache.get(("c", 161, "x"), 1, {}, 0).columns
