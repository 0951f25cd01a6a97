"""Run the Microsoft 365 exporter in-process against the simulator, with a frozen clock."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from mspwatch.exporters.core.server import ExporterMetrics, ExporterServer, ServerOptions
from mspwatch.exporters.core.webconfig import WebConfig
from mspwatch.exporters.m365.main import M365App, graph_client

from .conftest import MSP_CLIENT_ID, MSP_SECRET, Sim

FROZEN_NOW = 1_793_606_100.0  # 2026-11-02T07:55:00Z, the scenarios' start


class Clock:
    """A wall clock that moves only when told."""

    def __init__(self, now: float = FROZEN_NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Sleeps:
    """Stands in for asyncio.sleep in the Graph client: remembers, does not wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


def write_config(
    path: Path,
    sim: Sim,
    tenants: Sequence[Mapping[str, Any]],
    *,
    refresh: Mapping[str, Any] | None = None,
    app: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Path:
    cfg: dict[str, Any] = {
        "apps": {"msp": dict(app) if app else {"client_id": MSP_CLIENT_ID, "client_secret": MSP_SECRET}},
        "graph": {"url": sim.url, "authority_host": sim.url, "ca_file": str(sim.ca_file)},
        "tenants": [dict(t) for t in tenants],
        **extra,
    }
    if refresh:
        cfg["refresh"] = dict(refresh)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def make_app(config: Path, clock: Clock, sleeps: Sleeps | None = None) -> M365App:
    return M365App(
        config,
        client_factory=graph_client(sleeps or Sleeps()),
        clock=clock,
        background=False,
    )


async def scrape(
    app: M365App, target: str, *, scrape_timeout: str = "10", path: str = "/m365"
) -> httpx.Response:
    """GET the probe path through the shared ASGI server, as Prometheus would."""
    server = ExporterServer(
        app, web=WebConfig(), metrics=ExporterMetrics("m365", "test"), options=ServerOptions()
    )
    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
        return await client.get(
            path,
            params={"target": target} if target else None,
            headers={"X-Prometheus-Scrape-Timeout-Seconds": scrape_timeout},
        )


def normalise(text: str) -> str:
    """Golden-file form: the one wall-clock-dependent value, how long the scrape took, zeroed."""
    return re.sub(r"^(m365_scrape_duration_seconds) \S+$", r"\1 0.0", text, flags=re.M)
