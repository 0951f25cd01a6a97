"""Reloads keep what they can: data and counters survive, credentials changes rebuild."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mspwatch.common.config import ConfigError
from mspwatch.exporters.core.server import ExporterMetrics, ExporterServer, ServerOptions
from mspwatch.exporters.core.webconfig import WebConfig
from mspwatch.exporters.m365.main import M365App

from .conftest import MSP_CLIENT_ID, MSP_SECRET, Sim
from .helpers import Clock, make_app, scrape, write_config

CONTOSO = [{"name": "contoso", "tenant_id": "2b6f0c5e-0000-4000-8000-00000000c0de"}]


async def test_reload_keeps_data_and_counters(health_sim: Sim, tmp_path: Path) -> None:
    path = tmp_path / "m365.yml"
    write_config(path, health_sim, CONTOSO)
    app = make_app(path, Clock())
    await app.start()
    try:
        await app.refresh_all()
        before = app.refreshers["contoso"]

        # New intervals, one signal fewer: applied in place, data kept.
        write_config(path, health_sim, CONTOSO, refresh={"health": "90s"}, signals=["health", "issues"])
        app.reload()
        assert app.refreshers["contoso"] is before
        text = (await scrape(app, "contoso")).text
        assert "m365_up 1.0" in text
        assert 'm365_signal_refresh_interval_seconds{signal="health"} 90.0' in text
        assert 'signal="mfa"' not in text
        assert "m365_license_prepaid_units" not in text  # the licences signal is off now

        # A broken file changes nothing.
        path.write_text("apps: {}\n")
        with pytest.raises(ConfigError):
            app.reload()
        assert app.refreshers["contoso"] is before

        # New credentials: a new collector (new msal app), the counters carry on.
        write_config(
            path, health_sim, CONTOSO, app={"client_id": MSP_CLIENT_ID, "client_secret": MSP_SECRET + "-2"}
        )
        app.reload()
        assert app.refreshers["contoso"] is not before
        text = (await scrape(app, "contoso")).text
        assert 'm365_graph_requests_total{code="200"} 9.0' in text
        assert "m365_up 0.0" in text  # nothing fetched yet with the new credentials
    finally:
        await app.stop()


async def test_signals_per_tenant(health_sim: Sim, tmp_path: Path) -> None:
    """A tenant without Entra ID P1/P2 leaves the registration report out; up means its signals."""
    path = tmp_path / "m365.yml"
    write_config(path, health_sim, [{**CONTOSO[0], "signals": ["health", "issues"]}])
    app = make_app(path, Clock())
    await app.start()
    try:
        await app.refresh_all()
        text = (await scrape(app, "contoso")).text
        before = app.refreshers["contoso"]
        write_config(path, health_sim, CONTOSO)  # back to the exporter's list: all five
        app.reload()
        assert app.refreshers["contoso"] is before  # same credentials: reconfigured in place
        after = (await scrape(app, "contoso")).text
    finally:
        await app.stop()
    assert "m365_up 1.0" in text
    assert 'signal="mfa"' not in text
    assert "m365_users" not in text
    assert 'm365_signal_up{signal="mfa"} 0.0' in after  # new signal, not fetched yet
    assert 'm365_signal_up{signal="health"} 1.0' in after  # health data kept


def _with_graph(path: Path, **graph: Any) -> None:
    """Change Graph's transport settings in the config file (a valid reload)."""
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["graph"].update(graph)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")


def _server(app: M365App) -> ExporterServer:
    return ExporterServer(
        app, web=WebConfig(), metrics=ExporterMetrics("m365", "test"), options=ServerOptions()
    )


async def _get(server: ExporterServer, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
        return await client.get(path, headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})


async def test_reloads_while_refreshes_run_keep_every_tenant_up(health_sim: Sim, tmp_path: Path) -> None:
    """Valid reloads (Graph's timeout, the refresh limit) with refreshes in flight: the data
    stays, the refreshes that straddle a reload succeed, no scrape answers m365_up 0."""
    path = tmp_path / "m365.yml"
    write_config(path, health_sim, CONTOSO)
    app = make_app(path, Clock())
    server = _server(app)
    await app.start()
    try:
        await app.refresh_all()
        for i in range(6):
            refreshing = asyncio.ensure_future(app.refreshers["contoso"].refresh_due(force=True))
            await asyncio.sleep(0.05)  # the refreshes are under way on the current transport
            _with_graph(path, request_timeout=f"{10 + i}s")
            cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
            cfg["max_concurrent_refreshes"] = 4 + i % 2
            path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
            assert server.reload()
            during = await _get(server, "/m365?target=contoso")
            assert "m365_up 1.0" in during.text, i
            await refreshing
            after = await _get(server, "/m365?target=contoso")
            assert "m365_up 1.0" in after.text, (i, [ln for ln in after.text.splitlines() if "error" in ln])
    finally:
        await app.stop()


async def test_a_ca_file_that_is_not_pem_keeps_the_old_config(health_sim: Sim, tmp_path: Path) -> None:
    path = tmp_path / "m365.yml"
    write_config(path, health_sim, CONTOSO)
    app = make_app(path, Clock())
    server = _server(app)
    await app.start()
    try:
        await app.refresh_all()
        (tmp_path / "not-a-ca.pem").write_text("this is not a certificate\n", encoding="utf-8")
        _with_graph(path, ca_file=str(tmp_path / "not-a-ca.pem"))
        assert not server.reload()
        own = (await _get(server, "/metrics")).text
        assert "m365_exporter_config_last_reload_successful 0.0" in own
        for _ in range(2):  # every later scrape, not only the next
            resp = await _get(server, "/m365?target=contoso")
            assert resp.status_code == 200
            assert "m365_up 1.0" in resp.text
        await app.refresh_all()  # the old transport still works
        assert "m365_up 1.0" in (await _get(server, "/m365?target=contoso")).text
    finally:
        await app.stop()
