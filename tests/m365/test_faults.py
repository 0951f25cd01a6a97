"""Each simulator fault end to end, tenant isolation, and the scrape deadline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from mspwatch.simulators.graph.tls import make_client_certificate

from .conftest import MSP_CLIENT_ID, Sim
from .helpers import Clock, Sleeps, make_app, scrape, write_config

TENANTS = {
    "throttled": "11111111-0000-4000-8000-000000000001",
    "flaky": "11111111-0000-4000-8000-000000000002",
    "expiring": "11111111-0000-4000-8000-000000000003",
    "forbidden": "11111111-0000-4000-8000-000000000004",
    "unauthorized": "11111111-0000-4000-8000-000000000005",
    "slow": "11111111-0000-4000-8000-000000000006",
}


def _sequence(sim: Sim, tenant: str | None, endpoint: str) -> list[int]:
    return [r["status"] for r in sim.requests() if r["tenant"] == tenant and r["endpoint"] == endpoint]


async def _refresh_one(sim: Sim, tmp_path: Path, name: str, sleeps: Sleeps, **refresh: object) -> str:
    cfg = write_config(
        tmp_path / "m365.yml", sim, [{"name": name, "tenant_id": TENANTS[name]}], refresh=refresh
    )
    app = make_app(cfg, Clock(), sleeps)
    await app.start()
    try:
        await app.refresh_all()
        return (await scrape(app, name)).text
    finally:
        await app.stop()


async def test_429_with_retry_after_is_waited_out(faults_sim: Sim, tmp_path: Path) -> None:
    sleeps = Sleeps()
    text = await _refresh_one(faults_sim, tmp_path, "throttled", sleeps)
    assert sleeps.calls == [1.0]  # exactly the Retry-After, once
    # page 1, page 2 throttled, page 2 again, page 3: the listing continued where it was.
    assert _sequence(faults_sim, "throttled", "issues") == [200, 429, 200, 200]
    assert 'm365_signal_up{signal="issues"} 1.0' in text
    assert "m365_graph_throttled_total 1.0" in text


async def test_429_longer_than_the_refresh_budget_backs_off(faults_sim: Sim, tmp_path: Path) -> None:
    """Retry-After beyond the budget: fail now as throttled and come back no sooner."""
    cfg = write_config(
        tmp_path / "m365.yml",
        faults_sim,
        [{"name": "throttled", "tenant_id": TENANTS["throttled"]}],
        refresh={"timeout": "500ms", "retry": "100ms"},
    )
    clock = Clock()
    sleeps = Sleeps()
    app = make_app(cfg, clock, sleeps)
    await app.start()
    try:
        collector = app.refreshers["throttled"]
        await collector.refresh("issues")
        text = (await scrape(app, "throttled")).text
        assert sleeps.calls == []
        assert 'm365_scrape_error{reason="throttled"} 1.0' in text
        assert 'm365_signal_up{signal="issues"} 0.0' in text
        # Retry-After (1 s) wins over the configured 100 ms retry.
        assert collector._signals["issues"].next_due == clock.now + 1.0
    finally:
        await app.stop()


async def test_503_is_retried_and_a_persistent_one_reported(faults_sim: Sim, tmp_path: Path) -> None:
    sleeps = Sleeps()
    text = await _refresh_one(faults_sim, tmp_path, "flaky", sleeps)
    assert _sequence(faults_sim, "flaky", "healthOverviews") == [503, 200]
    assert _sequence(faults_sim, "flaky", "subscribedSkus") == [503, 503, 503, 503]
    assert 'm365_signal_up{signal="health"} 1.0' in text
    assert 'm365_signal_up{signal="licences"} 0.0' in text
    assert 'm365_scrape_error{reason="unavailable"} 1.0' in text
    assert "m365_up 0.0" in text
    assert "m365_license_prepaid_units" not in text  # never fetched: nothing, not a fake zero


async def test_expired_skip_token_restarts_from_the_first_page(faults_sim: Sim, tmp_path: Path) -> None:
    text = await _refresh_one(faults_sim, tmp_path, "expiring", Sleeps())
    # 35 users in pages of 10: page 2 expired once, then four pages from the start.
    assert _sequence(faults_sim, "expiring", "userRegistrationDetails") == [200, 400, 200, 200, 200, 200]
    assert 'm365_users{group="all"} 35.0' in text  # counted once, not 45
    assert "m365_graph_paging_restarts_total 1.0" in text


async def test_tenant_refusing_the_app(faults_sim: Sim, tmp_path: Path) -> None:
    text = await _refresh_one(faults_sim, tmp_path, "unauthorized", Sleeps())
    assert _sequence(faults_sim, "unauthorized", "token") == [401]  # msal asked once, then remembered
    assert 'm365_scrape_error{reason="auth"} 1.0' in text
    assert "m365_up 0.0" in text


async def test_tenant_without_permissions(faults_sim: Sim, tmp_path: Path) -> None:
    text = await _refresh_one(faults_sim, tmp_path, "forbidden", Sleeps())
    assert set(_sequence(faults_sim, "forbidden", "healthOverviews")) == {403}
    assert 'm365_scrape_error{reason="forbidden"} 1.0' in text
    assert 'm365_graph_requests_total{code="403"} 5.0' in text


async def test_wrong_secret_is_auth(faults_sim: Sim, tmp_path: Path) -> None:
    text = await _refresh_one_with_app(
        faults_sim, tmp_path, {"client_id": MSP_CLIENT_ID, "client_secret": "not-the-secret"}
    )
    assert 'm365_scrape_error{reason="auth"} 1.0' in text


async def test_app_not_consented_in_tenant_is_auth(faults_sim: Sim, tmp_path: Path) -> None:
    text = await _refresh_one_with_app(
        faults_sim, tmp_path, {"client_id": "99999999-0000-4000-8000-000000000009", "client_secret": "x"}
    )
    assert 'm365_scrape_error{reason="auth"} 1.0' in text


async def test_unknown_tenant_is_auth(faults_sim: Sim, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "m365.yml", faults_sim, [{"name": "ghost", "tenant_id": "ghost.onmicrosoft.com"}]
    )
    app = make_app(cfg, Clock())
    await app.start()
    try:
        await app.refresh_all()
        text = (await scrape(app, "ghost")).text
    finally:
        await app.stop()
    assert 'm365_scrape_error{reason="auth"} 1.0' in text


async def _refresh_one_with_app(sim: Sim, tmp_path: Path, app_cfg: dict[str, Any]) -> str:
    cfg = write_config(
        tmp_path / "m365.yml", sim, [{"name": "throttled", "tenant_id": TENANTS["throttled"]}], app=app_cfg
    )
    app = make_app(cfg, Clock())
    await app.start()
    try:
        await app.refresh_all()
        return (await scrape(app, "throttled")).text
    finally:
        await app.stop()


async def test_one_hanging_tenant_never_delays_the_others(faults_sim: Sim, tmp_path: Path) -> None:
    """While 'slow' hangs inside Graph, every other tenant refreshes and scrapes normally."""
    cfg = write_config(
        tmp_path / "m365.yml",
        faults_sim,
        [{"name": n, "tenant_id": t} for n, t in TENANTS.items()],
        refresh={"timeout": "20s"},
        max_concurrent_refreshes=2,  # even with few slots, the hanging tenant holds only one
    )
    app = make_app(cfg, Clock())
    await app.start()
    try:
        slow = asyncio.ensure_future(app.refreshers["slow"].refresh_due(force=True))
        await asyncio.sleep(0)
        others = [c.refresh_due(force=True) for n, c in app.refreshers.items() if n != "slow"]
        await asyncio.gather(*others)
        assert not slow.done()  # still hanging in Graph ...
        healthy = (await scrape(app, "expiring")).text
        assert "m365_up 1.0" in healthy  # ... and the others are done and serving
        for name in ("forbidden", "unauthorized", "flaky", "throttled"):
            assert (await scrape(app, name)).status_code == 200
        # The hanging tenant itself answers within its scrape deadline: 200, not a 504.
        response = await scrape(app, "slow", scrape_timeout="1")
        assert response.status_code == 200
        assert 'm365_signal_up{signal="health"} 0.0' in response.text
        assert 'm365_signal_data_age_seconds{signal="health"} +Inf' in response.text
        slow.cancel()
    finally:
        await app.stop()


async def test_first_scrape_waits_for_first_data_but_not_past_the_deadline(
    faults_sim: Sim, tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path / "m365.yml",
        faults_sim,
        [{"name": n, "tenant_id": TENANTS[n]} for n in ("slow", "expiring")],
    )
    app = make_app(cfg, Clock())
    await app.start()
    try:
        first = [asyncio.ensure_future(c.refresh_due(force=True)) for c in app.refreshers.values()]
        await asyncio.sleep(0)  # the refreshes are in flight, nothing fetched yet
        fast = await scrape(app, "expiring", scrape_timeout="10")
        assert "m365_up 1.0" in fast.text  # the first scrape got the first data
        slow = await scrape(app, "slow", scrape_timeout="1")
        assert slow.status_code == 200
        assert "m365_up 0.0" in slow.text
        for task in first:
            task.cancel()
    finally:
        await app.stop()


async def test_refresh_budget_turns_a_hang_into_deadline(faults_sim: Sim, tmp_path: Path) -> None:
    text = await _refresh_one(faults_sim, tmp_path, "slow", Sleeps(), timeout="300ms")
    assert 'm365_scrape_error{reason="deadline"} 1.0' in text
    assert 'm365_signal_up{signal="mfa"} 1.0' in text  # the other signals are unaffected


async def test_untrusted_certificate_is_auth(faults_sim: Sim, tmp_path: Path) -> None:
    cert, key = make_client_certificate(tmp_path / "other", "not-registered")
    text = await _refresh_one_with_app(
        faults_sim,
        tmp_path,
        {
            "client_id": MSP_CLIENT_ID,
            "certificate": {"certificate_file": str(cert), "private_key": {"file": str(key)}},
        },
    )
    assert 'm365_scrape_error{reason="auth"} 1.0' in text


async def test_revoked_token_is_replaced(faults_sim: Sim, tmp_path: Path) -> None:
    """Graph refuses a token msal still holds: the client drops it and asks for a new one."""
    cfg = write_config(
        tmp_path / "m365.yml", faults_sim, [{"name": "expiring", "tenant_id": TENANTS["expiring"]}]
    )
    app = make_app(cfg, Clock())
    await app.start()
    try:
        await app.refresh_all()
        faults_sim.control("revoke")
        await app.refreshers["expiring"].refresh("health")
        text = (await scrape(app, "expiring")).text
    finally:
        await app.stop()
    assert _sequence(faults_sim, "expiring", "token") == [200, 200]
    assert _sequence(faults_sim, None, "healthOverviews") == [401]
    assert 'm365_signal_up{signal="health"} 1.0' in text
    assert 'm365_graph_requests_total{code="401"} 1.0' in text
