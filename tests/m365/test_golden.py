"""Golden /metrics per scenario tenant: real HTTPS to the simulator, real msal token flow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import assert_golden, promtool_check_metrics

from .conftest import Sim
from .helpers import Clock, Sleeps, make_app, normalise, scrape, write_config

GOLDEN = Path(__file__).parent / "golden"
HEALTH_TENANTS = {
    "contoso": "2b6f0c5e-0000-4000-8000-00000000c0de",
    "fabrikam": "fabrikam.onmicrosoft.com",  # a domain works as well as the GUID
}
FAULT_TENANTS = {
    "throttled": "11111111-0000-4000-8000-000000000001",
    "flaky": "11111111-0000-4000-8000-000000000002",
    "expiring": "11111111-0000-4000-8000-000000000003",
    "forbidden": "11111111-0000-4000-8000-000000000004",
    "unauthorized": "11111111-0000-4000-8000-000000000005",
}


async def _golden_run(sim: Sim, tmp_path: Path, tenants: dict[str, str], target: str) -> str:
    cfg = write_config(tmp_path / "m365.yml", sim, [{"name": n, "tenant_id": t} for n, t in tenants.items()])
    clock = Clock()
    app = make_app(cfg, clock)
    await app.start()
    try:
        await app.refresh_all()
        clock.advance(30)  # the data served is 30 s old
        response = await scrape(app, target)
    finally:
        await app.stop()
    assert response.status_code == 200
    return response.text


@pytest.mark.parametrize("tenant", sorted(HEALTH_TENANTS))
async def test_service_health_golden(
    health_sim: Sim, tmp_path: Path, tenant: str, update_goldens: bool
) -> None:
    text = await _golden_run(health_sim, tmp_path, HEALTH_TENANTS, tenant)
    assert_golden(GOLDEN / f"service-health-{tenant}.prom", normalise(text), update_goldens)


@pytest.mark.parametrize("tenant", sorted(FAULT_TENANTS))
async def test_faults_golden(faults_sim: Sim, tmp_path: Path, tenant: str, update_goldens: bool) -> None:
    text = await _golden_run(faults_sim, tmp_path, {tenant: FAULT_TENANTS[tenant]}, tenant)
    assert_golden(GOLDEN / f"faults-{tenant}.prom", normalise(text), update_goldens)


async def test_new_service_appears(health_sim: Sim, tmp_path: Path, update_goldens: bool) -> None:
    """Ten simulated minutes later fabrikam has a new service; only health is refreshed."""
    cfg = write_config(
        tmp_path / "m365.yml", health_sim, [{"name": "fabrikam", "tenant_id": HEALTH_TENANTS["fabrikam"]}]
    )
    clock = Clock()
    app = make_app(cfg, clock, Sleeps())
    await app.start()
    try:
        await app.refresh_all()
        before = (await scrape(app, "fabrikam")).text
        health_sim.control("clock", advance=600)
        clock.advance(600)
        await app.refreshers["fabrikam"].refresh_due()  # health and issues are due, the rest not
        after = (await scrape(app, "fabrikam")).text
    finally:
        await app.stop()
    assert 'service="Microsoft Viva"' not in before
    assert 'm365_service_status{service="Microsoft Viva",status="serviceOperational"} 1.0' in after
    assert 'm365_signal_data_age_seconds{signal="health"} 0.0' in after
    assert 'm365_signal_data_age_seconds{signal="licences"} 600.0' in after
    assert_golden(GOLDEN / "service-health-fabrikam-later.prom", normalise(after), update_goldens)


def test_goldens_pass_promtool() -> None:
    files = sorted(GOLDEN.glob("*.prom"))
    assert files, "no golden files yet: run pytest --update-goldens"
    for path in files:
        assert promtool_check_metrics(path.read_text(encoding="utf-8")) == "", path.name


@pytest.mark.parametrize("tenant", ["acme", "bolt", "globex", "initech", "umbrella"])
async def test_estate_golden(estate_sim: Sim, tmp_path: Path, tenant: str, update_goldens: bool) -> None:
    """The demo estate through the config the simulator writes for it."""
    clock = Clock()
    app = make_app(estate_sim.exporter_config, clock)
    await app.start()
    try:
        await app.refresh_all()
        clock.advance(30)
        response = await scrape(app, tenant)
    finally:
        await app.stop()
    assert response.status_code == 200
    assert_golden(GOLDEN / f"estate-{tenant}.prom", normalise(response.text), update_goldens)


def test_every_metric_is_documented() -> None:
    """Each family in the goldens has a row in docs/m365-metrics.md, and each row a family."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "m365-metrics.md").read_text()
    emitted = {
        line.split()[2]
        for path in GOLDEN.glob("*.prom")
        for line in path.read_text().splitlines()
        if line.startswith("# TYPE ")
    }
    emitted = {n + "_total" if n in COUNTERS else n for n in emitted}
    documented = set(re.findall(r"^\| `(m365_[a-z_]+)` \|", doc, flags=re.M))
    assert emitted == documented


COUNTERS = {
    "m365_graph_requests",
    "m365_graph_throttled",
    "m365_graph_retries",
    "m365_graph_paging_restarts",
}
