"""Patch test fixtures: the NinjaOne simulator as a real process (one per scenario, for the
session), and a scrape of one source rendered as /metrics text."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import Metric

from mspwatch.common.procs import stop_process
from mspwatch.common.secrets import Secret
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.probe import ProbeApp, registry_of
from mspwatch.exporters.patch.main import PatchApp
from mspwatch.exporters.patch.ninjaone import NinjaOneClient, NinjaOptions
from mspwatch.exporters.patch.scrape import scrape_source
from mspwatch.simulators.admin import AdminClient, start_simulator
from tests.conftest import ROOT

from .test_policy import Policy

SCENARIOS = ROOT / "simulators" / "ninjaone" / "scenarios"
CLIENT_ID = "mspwatch-test"
SECRET = "Sim-Ninja-Secret-1"
LONDON = ZoneInfo("Europe/London")
ESTATE_CLOCK = "2026-02-02T09:00:00Z"


class Sim(AdminClient):
    """A running NinjaOne simulator, with its simulated clock."""

    def now(self) -> float:
        iso = self.admin.get("/admin/clock").json()["now"]
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def start_sim(scenario: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    proc, url = start_simulator("mspwatch.simulators.ninjaone", scenario, log, *extra, cwd=ROOT)
    return proc, int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="session")
def _sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Sim]]:
    logs = tmp_path_factory.mktemp("ninjaone-sim")
    sims: dict[str, Sim] = {}
    try:
        for name in ("fleet", "rollover"):
            proc, port = start_sim(SCENARIOS / f"{name}.yaml", logs / f"{name}.log")
            sims[name] = Sim(proc, f"http://127.0.0.1:{port}")
        # The demo's running clock, frozen on a known day for the test.
        proc, port = start_sim(SCENARIOS / "estate.yaml", logs / "estate.log", "--clock", ESTATE_CLOCK)
        sims["estate"] = Sim(proc, f"http://127.0.0.1:{port}")
        yield sims
    finally:
        for sim in sims.values():
            sim.close()
            stop_process(sim.proc)


@pytest.fixture
def fleet(_sims: dict[str, Sim]) -> Sim:
    """The fleet scenario, reset to its start (clock, faults, tokens, request log)."""
    _sims["fleet"].reset()
    return _sims["fleet"]


@pytest.fixture
def estate(_sims: dict[str, Sim]) -> Sim:
    _sims["estate"].reset()
    return _sims["estate"]


@pytest.fixture
def rollover(_sims: dict[str, Sim]) -> Sim:
    _sims["rollover"].reset()
    return _sims["rollover"]


class OneScrape(PatchApp):
    """The probe core over one scrape function, without a config file: what /patch answers."""

    def __init__(self, run: Callable[[Deadline], Awaitable[list[Metric]]]) -> None:
        ProbeApp.__init__(self)
        self._run = run

    @property
    def max_in_flight(self) -> None:
        return None

    def target(self, params: Mapping[str, str]) -> Any:
        return None

    async def scrape(self, target: Any, deadline: Deadline) -> list[Metric]:
        return await self._run(deadline)


async def probe(run: Callable[[Deadline], Awaitable[list[Metric]]], budget: float) -> str:
    """The exporter's answer (outcome families included) for one scrape, normalised."""
    registry = await OneScrape(run).probe({}, Deadline.after(budget))
    return normalise(generate_latest(registry).decode())


def render(families: list[Metric]) -> str:
    return generate_latest(registry_of(families)).decode()


_DURATION = re.compile(r"^(patch_scrape_duration_seconds) \S+$", re.M)


def normalise(text: str) -> str:
    """Golden-file form: the one wall-clock-dependent value zeroed."""
    return _DURATION.sub(r"\1 0.0", text)


def ninja_client(
    sim: Sim, organization: str = "Acme Dental", secret: str = SECRET, client_id: str = CLIENT_ID, **opts: Any
) -> NinjaOneClient:
    return NinjaOneClient(
        "acme-ninja",
        sim.url,
        organization,
        client_id,
        Secret(secret),
        NinjaOptions(**{"page_size": 100, **opts}),
        clock=sim.now,
    )


async def scrape(
    sim: Sim, client: NinjaOneClient | None = None, *, budget: float = 30.0, policy: Policy | None = None
) -> str:
    """Scrape the source once at the simulator's clock; the client is closed unless given."""
    own = client is None
    client = client or ninja_client(sim)
    try:
        return await probe(
            lambda deadline: scrape_source(
                "acme-ninja", client, policy or Policy(), LONDON, deadline, sim.now
            ),
            budget,
        )
    finally:
        if own:
            await client.aclose()


def value(text: str, series: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def lines_of(text: str, name: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(name + "{") or ln.startswith(name + " ")]
