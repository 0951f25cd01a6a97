"""Secrets and tokens never leak: not in logs (even at debug), /metrics, errors or config."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mspwatch.exporters.m365.config import load_config

from .conftest import MSP_CLIENT_ID, MSP_SECRET, Sim
from .helpers import Clock, make_app, scrape, write_config

TENANTS = [
    {"name": "contoso", "tenant_id": "2b6f0c5e-0000-4000-8000-00000000c0de"},
    {"name": "fabrikam", "tenant_id": "fabrikam.onmicrosoft.com"},
    {"name": "ghost", "tenant_id": "ghost.onmicrosoft.com"},  # tenant discovery fails
]


async def test_no_secret_or_token_in_logs_metrics_or_errors(
    health_sim: Sim, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, msal and urllib3 included
    cfg = write_config(tmp_path / "m365.yml", health_sim, TENANTS)
    config, _ = load_config(cfg)
    app = make_app(cfg, Clock())
    await app.start()
    try:
        await app.refresh_all()
        outputs = [(await scrape(app, t["name"])).text for t in TENANTS]
        outputs.append((await scrape(app, "nobody")).text)  # the 400 body
    finally:
        await app.stop()
    tokens = [r for r in health_sim.requests() if r["endpoint"] == "token" and r["status"] == 200]
    assert tokens, "the msal flow should have fetched tokens"
    records = caplog.records
    logs = "\n".join(f"{r.getMessage()} {vars(r)}" for r in records)
    for where, text in [("logs", logs), ("metrics", "\n".join(outputs)), ("config", repr(config))]:
        assert MSP_SECRET not in text, where
        assert "simtok." not in text, where  # the simulator's access tokens
    assert "<secret>" in repr(config)


async def test_certificate_credential_works_and_stays_secret(
    health_sim: Sim, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The certificate flow: msal signs a client assertion the simulator verifies."""
    caplog.set_level(logging.DEBUG)
    key_text = health_sim.client_key.read_text()
    cfg = write_config(
        tmp_path / "m365.yml",
        health_sim,
        TENANTS[:1],
        app={
            "client_id": MSP_CLIENT_ID,
            "certificate": {
                "certificate_file": str(health_sim.client_cert),
                "private_key": {"file": str(health_sim.client_key)},
            },
        },
    )
    app = make_app(cfg, Clock())
    await app.start()
    try:
        await app.refresh_all()
        text = (await scrape(app, "contoso")).text
    finally:
        await app.stop()
    assert "m365_up 1.0" in text
    key_body = key_text.splitlines()[1]  # a line of the PEM body
    logs = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert key_body not in logs
    assert key_body not in text
