"""The same month from VictoriaMetrics, fed the same samples, gives the same figures.

VictoriaMetrics differs from Prometheus at window edges (``(t-r, t]`` against ``[t-r, t]``),
in ``rate``/``increase`` extrapolation and in how long a range query holds a gauge
(REFERENCE section 8). The report's queries avoid all three: samples are judged per minute
with ``last_over_time(x[1m])`` on minute-aligned steps (one sample per window either way),
month aggregates are counts and sums of 0/1 gauges (no extrapolation; an ``avg_over_time``
differed in the last bit, as the two sum floats in a different order, so the ratio is taken in
Python), and no figure depends on the lookback. So there is no difference left to name: every
figure is asserted equal.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import httpx
import pytest

from mspwatch.common.procs import free_port, spawn, stop_process, wait_for_port, wait_until
from mspwatch.reports.build import build_customer
from mspwatch.reports.frames import RECORDED, REPORTING, UNREACHABLE
from mspwatch.reports.model import CustomerReport
from mspwatch.reports.query import Prometheus
from mspwatch.simulators.history.write import prometheus_import_chunks
from tests.conftest import require_tool
from tests.reports import groundtruth


def recorded_lines(prometheus_url: str) -> str:
    """The recorded series the report reads as Prometheus backfilled them (the same rules, run
    once), in VictoriaMetrics's import format: VictoriaMetrics gets the same samples of them."""
    h = groundtruth.history()
    lines: list[str] = []
    for name in (RECORDED, UNREACHABLE, REPORTING):
        got = httpx.post(
            f"{prometheus_url}/api/v1/query",
            data={"query": f"{name}[{h.end - h.start + 3600}s]", "time": str(h.end + 60)},
            timeout=120,
        ).json()["data"]["result"]
        assert got, name
        for r in got:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(r["metric"].items()) if k != "__name__")
            lines.extend(f"{name}{{{labels}}} {v} {round(float(t) * 1000)}\n" for t, v in r["values"])
    return "".join(lines)


@pytest.fixture(scope="session")
def vm_url(tmp_path_factory: pytest.TempPathFactory, prometheus_url: str) -> Iterator[str]:
    binary = require_tool("victoria-metrics")
    base = tmp_path_factory.mktemp("vm")
    port = free_port()
    proc = spawn(
        [
            binary,
            f"-storageDataPath={base / 'data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-selfScrapeInterval=0",
        ],
        base / "vm.log",
    )
    try:
        wait_for_port(port, proc=proc, log=base / "vm.log")
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=120) as client:
            for chunk in [*prometheus_import_chunks(groundtruth.history()), recorded_lines(prometheus_url)]:
                client.post(f"{url}/api/v1/import/prometheus", content=chunk.encode()).raise_for_status()
            client.get(f"{url}/internal/force_flush").raise_for_status()
            # Imported rows become searchable after the next in-memory part flush (~1 s).
            wait_until(
                "imported series searchable",
                lambda: client.get(f"{url}/api/v1/series/count").json()["data"][0] > 0,
                30,
            )
            time.sleep(2)
        yield url
    finally:
        stop_process(proc)


def _build(url: str, which: str) -> CustomerReport:
    with Prometheus(url) as prom:
        return build_customer(
            prom, groundtruth.ACME if which == "acme" else groundtruth.BOLT, groundtruth.MONTH
        )


def _figures(r: CustomerReport) -> dict[str, object]:
    """Everything but the charts (rendering input, compared through the figures anyway)."""
    d = dataclasses.asdict(r)
    d.pop("charts")
    return d


@pytest.mark.parametrize("which", ["acme", "bolt"])
def test_same_figures_as_prometheus(
    which: str, vm_url: str, acme: CustomerReport, bolt: CustomerReport
) -> None:
    expected = acme if which == "acme" else bolt
    got = _build(vm_url, which)
    exp, act = _figures(expected), _figures(got)
    diffs = {k: (exp[k], act[k]) for k in exp if exp[k] != act[k]}
    assert diffs == {}
    assert got.availability_source == "recorded"
