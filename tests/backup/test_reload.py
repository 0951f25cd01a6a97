"""Reloads while scrapes run: a scrape that started before a reload ends as it would have."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from .conftest import Sim, value, veeam_source, write_config


async def _until(predicate: Any) -> None:
    for _ in range(3000):  # a minute at most
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


async def test_a_reload_never_fails_a_scrape_that_started_before_it(
    acme: Sim, tmp_path: Path, exporters: Any
) -> None:
    config = write_config(tmp_path, [veeam_source(acme.url)])
    exp = exporters(config)
    old = exp.app.clients["acme-vbr"]
    # The first scrape's job listing is held 2 s (then a 500 it retries): it is in flight
    # while the config changes under it.
    acme.fault(path="/api/v1/jobs/states", delay=2.0, status=500)
    first = asyncio.ensure_future(exp.scrape("acme-vbr"))
    await _until(lambda: acme.grants())  # logged once answered: the listing is next
    write_config(tmp_path, [veeam_source(acme.url, page_size=50)])  # a new client for the source
    assert exp.server.reload()
    assert exp.app.clients["acme-vbr"] is not old
    second = await exp.scrape("acme-vbr")  # used to close the retired client under the first
    assert value(second, "backup_up") == 1
    text = await first
    assert value(text, "backup_up") == 1, [ln for ln in text.splitlines() if "error" in ln]
    await exp.app._leases.settle()
    assert old._api._http.http.is_closed  # retired once its last scrape ended


async def test_a_reload_into_a_config_that_cannot_work_keeps_the_old_one(
    acme: Sim, tmp_path: Path, exporters: Any
) -> None:
    config = write_config(tmp_path, [veeam_source(acme.url)])
    exp = exporters(config)
    assert value(await exp.scrape("acme-vbr"), "backup_up") == 1
    good = config.read_bytes()
    for broken in (
        good.replace(b"restore-tests", b"restore-\xfftests"),  # not UTF-8
        good.replace(b"inventory.yml", b"missing.yml"),
    ):
        config.write_bytes(broken)
        assert not exp.server.reload()
        own = (await exp.get("/metrics", {})).text
        assert "backup_exporter_config_last_reload_successful 0.0" in own
        assert value(await exp.scrape("acme-vbr"), "backup_up") == 1  # the old config serves
    config.write_bytes(good)
    assert exp.server.reload()
