"""Microsoft 365 test fixtures: the Graph simulator over TLS, run as a real process."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mspwatch.common.procs import free_port, spawn, stop_process, wait_for_port
from mspwatch.simulators.graph.tls import make_client_certificate, make_test_ca
from tests.conftest import ROOT

SCENARIOS = ROOT / "simulators" / "graph" / "scenarios"
ESTATE_START = "2026-11-02T07:55:00Z"  # helpers.FROZEN_NOW
MSP_CLIENT_ID = "4f1c2d9e-0000-4000-8000-000000000001"
MSP_SECRET = "sim-msp-secret"


@dataclass
class Sim:
    """A running simulator: where it listens and how to steer it."""

    port: int
    ca_file: Path
    client_cert: Path
    client_key: Path
    log: Path
    exporter_config: Path  # written by the simulator for its scenario's tenants

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def control(self, path: str, method: str = "POST", **params: Any) -> Any:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca_file)), trust_env=False) as c:
            r = c.request(method, f"{self.url}/_sim/{path}", params=params)
            r.raise_for_status()
            return r.json()

    def reset(self) -> None:
        self.control("reset")

    def requests(self) -> list[dict[str, Any]]:
        return list(self.control("requests", method="GET"))


def _start(base: Path, scenario: str, start: str | None = None) -> Iterator[Sim]:
    tls = make_test_ca(base / "tls")
    cert, key = make_client_certificate(base / "client")
    port = free_port()
    log = base / "simulator.log"
    proc = spawn(
        [
            sys.executable,
            "-m",
            "mspwatch.simulators.graph",
            "--listen",
            f"127.0.0.1:{port}",
            "--scenario",
            str(SCENARIOS / f"{scenario}.yaml"),
            "--tls-dir",
            str(base / "tls"),
            "--trust-cert",
            str(cert),
            "--write-exporter-config",
            str(base / "m365.yml"),
            *([f"--start={start}"] if start else []),
        ],
        log,
        cwd=ROOT,
    )
    try:
        wait_for_port(port, proc=proc, timeout=30)
        yield Sim(port, tls.ca_file, cert, key, log, base / "m365.yml")
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def _health_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    yield from _start(tmp_path_factory.mktemp("graph-health"), "service-health")


@pytest.fixture(scope="session")
def _faults_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    yield from _start(tmp_path_factory.mktemp("graph-faults"), "faults")


@pytest.fixture(scope="session")
def _estate_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    # The estate starts "now" for the demo; its relative times frozen at the goldens' moment.
    yield from _start(tmp_path_factory.mktemp("graph-estate"), "estate", ESTATE_START)


@pytest.fixture(scope="session")
def _token_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    yield from _start(tmp_path_factory.mktemp("graph-token"), "token-faults")


@pytest.fixture
def token_sim(_token_sim: Sim) -> Sim:
    """Token endpoints that fail or hang (token-faults scenario), counters reset."""
    _token_sim.reset()
    return _token_sim


@pytest.fixture
def estate_sim(_estate_sim: Sim) -> Sim:
    """The demo's built-in estate, clock and counters reset for this test."""
    _estate_sim.reset()
    return _estate_sim


@pytest.fixture
def health_sim(_health_sim: Sim) -> Sim:
    """The service-health scenario, clock and counters reset for this test."""
    _health_sim.reset()
    return _health_sim


@pytest.fixture
def faults_sim(_faults_sim: Sim) -> Sim:
    """The faults scenario, clock and fault counters reset for this test."""
    _faults_sim.reset()
    return _faults_sim
