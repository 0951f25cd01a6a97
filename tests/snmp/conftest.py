"""SNMP test fixtures: real snmpsim serving real device recordings, and a misbehaving agent."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mspwatch.common.procs import free_port, spawn, stop_process, wait_for_port
from mspwatch.simulators.snmp import prepare_data_dir, start_snmpsim, wait_until_serving

V3_AUTH_KEY = "auth-key-for-tests-7d1c"
V3_PRIV_KEY = "priv-key-for-tests-93aa"
HUGE_TABLE_ROWS = 3000


@dataclass(frozen=True)
class Agent:
    port: int
    data_dir: Path


def _write_huge_table(data_dir: Path) -> None:
    """A switch stack with thousands of interfaces, generated rather than committed."""
    lines = [
        "1.3.6.1.2.1.1.1.0|4|mspwatch huge-table test device",
        "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10",
        "1.3.6.1.2.1.1.3.0|67|1000",
    ]
    rows = range(1, HUGE_TABLE_ROWS + 1)
    lines += [f"1.3.6.1.2.1.2.2.1.2.{i}|4|port{i}" for i in rows]
    lines += [f"1.3.6.1.2.1.2.2.1.8.{i}|2|1" for i in rows]
    lines += [f"1.3.6.1.2.1.31.1.1.1.1.{i}|4|Gi{i // 48}/0/{i % 48}" for i in rows]
    lines += [f"1.3.6.1.2.1.31.1.1.1.6.{i}|70|{i * 1000}" for i in rows]
    (data_dir / "huge-table.snmprec").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    """snmpsim on 127.0.0.1 serving the estate's recordings; stopped by PID at the end."""
    base = tmp_path_factory.mktemp("snmpsim")
    data_dir = prepare_data_dir(base / "data", frozen=True)
    _write_huge_table(data_dir)
    port = free_port()
    proc = start_snmpsim(
        data_dir, base / "cache", [f"127.0.0.1:{port}"], V3_AUTH_KEY, V3_PRIV_KEY, base / "log"
    )
    try:
        # snmpsim indexes every recording before it binds: slow on a busy machine.
        wait_for_port(port, udp=True, timeout=300, proc=proc)
        communities = sorted(p.stem for p in data_dir.glob("*.snmprec"))
        wait_until_serving(proc, f"127.0.0.1:{port}", communities, timeout=300)
        yield Agent(port=port, data_dir=data_dir)
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def bad_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The misbehaving agent (tests/snmp/bad_agent.py) on a free port."""
    port = free_port()
    log = tmp_path_factory.mktemp("bad_agent") / "log"
    proc = spawn(
        [sys.executable, "-m", "tests.snmp.bad_agent", str(port)],
        log,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        wait_for_port(port, udp=True, timeout=30, proc=proc, log=log)
        wait_until_serving(proc, f"127.0.0.1:{port}", ["loop"], timeout=30)
        yield port
    finally:
        stop_process(proc)
