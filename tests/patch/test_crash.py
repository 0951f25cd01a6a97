"""A patch scrape that crashes after the NinjaOne simulator answered (here: the clock the
mapping reads fails) is ``patch_up 0`` with the reason ``internal``, an HTTP 200 through the
real server, and one error log line with the traceback; the client secret is in neither."""

from __future__ import annotations

import logging

import httpx
import pytest

from mspwatch.exporters.core.server import ExporterMetrics, ExporterServer
from mspwatch.exporters.core.webconfig import WebConfig
from mspwatch.exporters.patch.scrape import scrape_source

from .conftest import LONDON, SECRET, OneScrape, Sim, lines_of, ninja_client
from .test_policy import Policy


async def test_a_crash_after_the_answer_is_up_0_internal(
    fleet: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = ninja_client(fleet)
    calls: list[float] = []

    def clock() -> float:  # the mapping's "now": the one call after a good fetch fails
        calls.append(fleet.now())
        raise OverflowError("clock out of range")

    app = OneScrape(lambda deadline: scrape_source("acme-ninja", client, Policy(), LONDON, deadline, clock))
    server = ExporterServer(app, web=WebConfig(), metrics=ExporterMetrics("patch", "test"))
    try:
        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as http:
            resp = await http.get("/patch", headers={"X-Prometheus-Scrape-Timeout-Seconds": "30"})
            own = (await http.get("/metrics")).text
    finally:
        await client.aclose()
    assert resp.status_code == 200
    assert len(calls) == 1  # the fetch succeeded; the mapping crashed
    assert "patch_up 0.0" in resp.text
    firing = [ln for ln in lines_of(resp.text, "patch_scrape_error") if ln.endswith(" 1.0")]
    assert firing == ['patch_scrape_error{reason="internal"} 1.0']
    assert 'patch_exporter_probes_total{outcome="ok"} 1.0' in own
    crashed = [r for r in caplog.records if r.getMessage() == "scrape crashed"]
    assert len(crashed) == 1 and crashed[0].exc_info is not None
    assert "OverflowError: clock out of range" in caplog.text  # the traceback, once
    assert caplog.text.count("Traceback (most recent call last)") == 1
    assert SECRET not in caplog.text and SECRET not in resp.text
