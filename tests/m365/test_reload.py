"""Reloads keep what they can: data and counters survive, credentials changes rebuild."""

from __future__ import annotations

from pathlib import Path

import pytest

from mspwatch.common.config import ConfigError

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
