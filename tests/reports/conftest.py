"""One real Prometheus for all report tests, holding the ground-truth month (backfilled)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mspwatch.common.procs import stop_process
from mspwatch.reports.build import build_customer
from mspwatch.reports.model import CustomerReport
from mspwatch.reports.query import Prometheus
from mspwatch.simulators.history.write import backfill_history, create_blocks, write_openmetrics
from tests.conftest import require_tool
from tests.reports import groundtruth
from tests.rulepasses import start_prometheus


@pytest.fixture(scope="session")
def history_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_openmetrics(groundtruth.history(), tmp_path_factory.mktemp("history"))


@pytest.fixture(scope="session")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory, history_files: list[Path]) -> Iterator[str]:
    binary = require_tool("prometheus")
    promtool = require_tool("promtool")
    base = tmp_path_factory.mktemp("prometheus")
    data = base / "data"
    backfill_history(groundtruth.history(), data, prometheus=binary, promtool=promtool)
    late = base / "late.om"  # a second recorded series, for one customer from mid-month only
    late.write_text(groundtruth.late_recorded_openmetrics(), encoding="utf-8")
    for block in create_blocks(late, base / "late-blocks", promtool, max_block="768h"):
        block.rename(data / block.name)
    (base / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n", encoding="utf-8")
    proc, url = start_prometheus(binary, base, data)
    try:
        yield url
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def prom(prometheus_url: str) -> Iterator[Prometheus]:
    with Prometheus(prometheus_url) as p:
        yield p


@pytest.fixture(scope="session")
def acme(prom: Prometheus) -> CustomerReport:
    return build_customer(prom, groundtruth.ACME, groundtruth.MONTH)


@pytest.fixture(scope="session")
def bolt(prom: Prometheus) -> CustomerReport:
    return build_customer(prom, groundtruth.BOLT, groundtruth.MONTH)
