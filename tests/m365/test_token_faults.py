"""The identity platform's bad days: token endpoints answering 5xx, or accepting and never answering.

Each refresh below runs the real msal client against the simulator's token endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest

from .conftest import Sim
from .helpers import Clock, make_app, scrape, write_config

TENANTS = {
    "tokenblip": "22222222-0000-4000-8000-000000000001",
    "tokendown": "22222222-0000-4000-8000-000000000002",
    "tokengateway": "22222222-0000-4000-8000-000000000003",
    "calm1": "22222222-0000-4000-8000-000000000011",
    "calm2": "22222222-0000-4000-8000-000000000012",
    **{f"tokenhang{i}": f"22222222-0000-4000-8000-0000000001{i:02d}" for i in range(1, 9)},
}
HANGING = [f"tokenhang{i}" for i in range(1, 9)]
HEALTHY = ["calm1", "calm2"]


def _tokens(sim: Sim, tenant: str) -> list[int]:
    return [r["status"] for r in sim.requests() if r["tenant"] == tenant and r["endpoint"] == "token"]


def _tenants(*names: str) -> list[dict[str, object]]:
    return [{"name": n, "tenant_id": TENANTS[n], "signals": ["health"]} for n in names]


def _complaints(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records that claim a crash: a traceback, or the collector's catch-all."""
    return [r.getMessage() for r in caplog.records if r.exc_info or r.getMessage() == "refresh crashed"]


async def test_token_endpoint_500_is_unavailable_and_retried(
    token_sim: Sim, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """500 server_error once (Retry-After: 1): waited out, asked again, the refresh succeeds."""
    caplog.set_level(logging.INFO)
    cfg = write_config(tmp_path / "m365.yml", token_sim, _tenants("tokenblip"))
    app = make_app(cfg, Clock())
    await app.start()
    try:
        await app.refresh_all()
        text = (await scrape(app, "tokenblip")).text
    finally:
        await app.stop()
    assert _tokens(token_sim, "tokenblip") == [500, 200]
    assert 'm365_signal_up{signal="health"} 1.0' in text
    assert "m365_up 1.0" in text
    assert _complaints(caplog) == []


async def test_token_endpoint_503_that_persists_is_unavailable(
    token_sim: Sim, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A gateway answering 503: retried (max_retries: 1), then reported as unavailable."""
    caplog.set_level(logging.INFO)
    graph = {"url": token_sim.url, "authority_host": token_sim.url, "ca_file": str(token_sim.ca_file)}
    cfg = write_config(
        tmp_path / "m365.yml", token_sim, _tenants("tokendown"), graph={**graph, "max_retries": 1}
    )
    app = make_app(cfg, Clock())
    await app.start()
    try:
        await app.refresh_all()
        text = (await scrape(app, "tokendown")).text
    finally:
        await app.stop()
    assert _tokens(token_sim, "tokendown") == [503, 503]
    assert 'm365_scrape_error{reason="unavailable"} 1.0' in text
    assert 'm365_scrape_error{reason="protocol"} 0.0' in text
    assert "m365_up 0.0" in text
    assert _complaints(caplog) == []
    failed = [r for r in caplog.records if r.getMessage() == "refresh failed"]
    assert [getattr(r, "reason", None) for r in failed] == ["unavailable"]


async def test_token_5xx_without_retry_after_backs_off_for_msal_throttle(
    token_sim: Sim, tmp_path: Path
) -> None:
    """502 without Retry-After: msal holds that answer for 5 s, so no retry inside a 4 s budget,
    and the next refresh comes no sooner than those 5 s."""
    cfg = write_config(
        tmp_path / "m365.yml",
        token_sim,
        _tenants("tokengateway"),
        refresh={"timeout": "4s", "retry": "1s"},
    )
    clock = Clock()
    app = make_app(cfg, clock)
    await app.start()
    try:
        collector = app.refreshers["tokengateway"]
        await collector.refresh("health")
        text = (await scrape(app, "tokengateway")).text
        assert collector._signals["health"].next_due == clock.now + 5.0
    finally:
        await app.stop()
    assert _tokens(token_sim, "tokengateway") == [502]
    assert 'm365_scrape_error{reason="unavailable"} 1.0' in text


async def test_hanging_token_endpoints_leak_no_threads_and_starve_no_one(
    token_sim: Sim, tmp_path: Path
) -> None:
    """Eight tenants whose token endpoint never answers, refreshed again and again: each
    refresh ends at its budget as ``deadline``, no thread outlives it, and healthy tenants
    that first ask after all those rounds still get their token at once."""
    cfg = write_config(
        tmp_path / "m365.yml",
        token_sim,
        _tenants(*HANGING, *HEALTHY),
        refresh={"timeout": "2s"},
        # The hanging tenants' budget (2 s) is shorter than a request's timeout (10 s):
        # only the deadline can end those requests.
    )
    app = make_app(cfg, Clock())
    await app.start()
    before = threading.active_count()
    try:
        counts = []
        for _ in range(5):  # 8 tenants x 5 rounds = 40 stuck requests if nothing ends them (pool: 32)
            await asyncio.gather(*(app.refreshers[n].refresh_due(force=True) for n in HANGING))
            counts.append(threading.active_count() - before)
        await app.refresh_all()
        for name in HEALTHY:
            text = (await scrape(app, name)).text
            assert "m365_up 1.0" in text, name
        for name in HANGING:
            text = (await scrape(app, name)).text
            assert 'm365_scrape_error{reason="deadline"} 1.0' in text, name
    finally:
        await app.stop()
    # One token thread per hanging tenant, reused round after round. (The pool counts a
    # thread idle a moment after its work ends, so a new round may rarely add one: the
    # bounds allow that lag, never a thread per round.)
    assert counts[0] <= len(HANGING) + 1
    assert counts[-1] - counts[0] < len(HANGING), counts
    assert counts[-1] < 2 * len(HANGING), counts
    assert all(s == 200 for n in HEALTHY for s in _tokens(token_sim, n))


async def test_request_timeout_bounds_a_token_request_inside_a_long_budget(
    token_sim: Sim, tmp_path: Path
) -> None:
    """request_timeout (300 ms) ends each hanging token request long before the refresh
    budget (30 s): both attempts time out as requests (``network``), not as ``deadline``."""
    graph = {
        "url": token_sim.url,
        "authority_host": token_sim.url,
        "ca_file": str(token_sim.ca_file),
        "request_timeout": "300ms",
        "max_retries": 1,
    }
    cfg = write_config(
        tmp_path / "m365.yml", token_sim, _tenants("tokenhang1"), refresh={"timeout": "30s"}, graph=graph
    )
    app = make_app(cfg, Clock())
    await app.start()
    try:
        await app.refresh_all()
        text = (await scrape(app, "tokenhang1")).text
    finally:
        await app.stop()
    assert 'm365_scrape_error{reason="network"} 1.0' in text
    assert 'm365_scrape_error{reason="deadline"} 0.0' in text
