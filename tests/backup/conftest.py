"""Backup test fixtures: the Veeam simulator as a real process, an in-process exporter."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mspwatch.common.procs import stop_process
from mspwatch.exporters.backup.main import BackupApp
from mspwatch.exporters.core.server import ExporterMetrics, ExporterServer
from mspwatch.exporters.core.webconfig import WebConfig
from mspwatch.simulators.admin import AdminClient, start_simulator
from tests.conftest import ROOT

SCENARIOS = ROOT / "simulators" / "veeam" / "scenarios"
PASSWORD = "Sim-Passw0rd!"
SCENARIO_CLOCK = datetime.fromisoformat("2026-01-15T06:00:00+00:00").timestamp()


class Sim(AdminClient):
    """A running Veeam simulator."""

    def grants(self) -> list[str]:
        return [r["grant_type"] for r in self.requests() if r["path"] == "/api/oauth2/token"]


def start_sim(scenario: Path, log: Path, *tls: str) -> tuple[subprocess.Popen[bytes], int]:
    proc, url = start_simulator("mspwatch.simulators.veeam", scenario, log, *tls, cwd=ROOT)
    return proc, int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="session")
def _sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Sim]]:
    """One simulator process per scenario for the whole session, stopped by PID."""
    logs = tmp_path_factory.mktemp("veeam-sim")
    sims: dict[str, Sim] = {}
    try:
        for name in ("acme", "smallbiz"):
            proc, port = start_sim(SCENARIOS / f"{name}.yaml", logs / f"{name}.log")
            sims[name] = Sim(proc, f"http://127.0.0.1:{port}")
        yield sims
    finally:
        for sim in sims.values():
            sim.close()
            stop_process(sim.proc)


@pytest.fixture
def acme(_sims: dict[str, Sim]) -> Sim:
    """The acme scenario, reset to its start (clock, faults, tokens, request log)."""
    _sims["acme"].reset()
    return _sims["acme"]


@pytest.fixture
def smallbiz(_sims: dict[str, Sim]) -> Sim:
    _sims["smallbiz"].reset()
    return _sims["smallbiz"]


def write_config(
    directory: Path,
    sources: list[dict[str, Any]],
    *,
    password: Any = PASSWORD,
    extra_credentials: dict[str, Any] | None = None,
) -> Path:
    """An inventory with one customer holding ``sources``, and a backup.yml naming it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "inventory.yml").write_text(
        yaml.safe_dump({"customers": [{"name": "acme", "backup_sources": sources}]}),
        encoding="utf-8",
    )
    credentials = {"acme_veeam": {"username": "svc-monitor", "password": password}}
    credentials.update(extra_credentials or {})
    config = {
        "inventory": "inventory.yml",
        "credentials": credentials,
        "restore_test_log": "restore-tests.jsonl",
    }
    path = directory / "backup.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def veeam_source(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "acme-vbr",
        "kind": "veeam",
        "url": url,
        "credentials": "acme_veeam",
        "page_size": 100,
        "rpo": {"jobs": [{"match": "Hourly*", "rpo": "2h"}, {"match": "Weekly*", "rpo": "8d"}]},
        **extra,
    }


class Exporter:
    """The backup exporter's ASGI app with a frozen clock, scraped over HTTP semantics."""

    def __init__(self, config: Path, clock: Callable[[], float] = lambda: SCENARIO_CLOCK) -> None:
        self.app = BackupApp(config, clock=clock)
        self.server = ExporterServer(self.app, web=WebConfig(), metrics=ExporterMetrics("backup", "test"))

    async def get(
        self, path: str, params: dict[str, str], scrape_timeout: float | None = None
    ) -> httpx.Response:
        headers = {}
        if scrape_timeout:
            headers["X-Prometheus-Scrape-Timeout-Seconds"] = str(scrape_timeout)
        transport = httpx.ASGITransport(app=self.server)
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
            return await client.get(path, params=params, headers=headers)

    async def scrape(self, target: str, scrape_timeout: float | None = 30.0) -> str:
        # A generous default: CI machines are busy; deadline tests pass their own.
        resp = await self.get("/backup", {"target": target}, scrape_timeout)
        assert resp.status_code == 200, resp.text
        return resp.text

    async def close(self) -> None:
        await self.app.stop()


@pytest.fixture
async def exporters() -> Any:
    made: list[Exporter] = []

    def make(config: Path, **kw: Any) -> Exporter:
        exp = Exporter(config, **kw)
        made.append(exp)
        return exp

    yield make
    for exp in made:
        await exp.close()


_DURATION = re.compile(r"^(backup_scrape_duration_seconds) \S+$", re.M)


def normalise(text: str) -> str:
    """Golden-file form: the one wall-clock-dependent value zeroed."""
    return _DURATION.sub(r"\1 0.0", text)


def value(text: str, series: str) -> float | None:
    """The value of one exact series line, or None if absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def series_of(text: str, name: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(name + "{") or ln.startswith(name + " ")]


def dump_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
