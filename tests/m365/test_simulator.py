"""The simulator's own rules: timeline steps, fault windows, generated users."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from mspwatch.simulators.graph.app import GraphSimulator
from mspwatch.simulators.graph.scenario import SCENARIOS_DIR, Fault, Scenario, load_scenario


def test_timeline_replaces_lists_from_its_time_on() -> None:
    scenario = load_scenario(SCENARIOS_DIR / "service-health.yaml")
    fabrikam = scenario.tenant("fabrikam.onmicrosoft.com")
    assert fabrikam is not None
    before = [s["service"] for s in fabrikam.data_at(599).health or []]
    after = [s["service"] for s in fabrikam.data_at(600).health or []]
    assert "Microsoft Viva" not in before
    assert "Microsoft Viva" in after
    assert fabrikam.data_at(600).skus == fabrikam.skus  # lists a step does not name stay


def test_fault_window() -> None:
    fault = Fault(endpoint="issues", request=2, times=2, status=503)
    assert [fault.matches("issues", n) for n in (1, 2, 3, 4)] == [False, True, True, False]
    assert not fault.matches("subscribedSkus", 2)


async def test_generated_users_match_the_counts() -> None:
    scenario = load_scenario(SCENARIOS_DIR / "estate.yaml")
    sim = GraphSimulator(scenario)
    token = (
        await sim.handle(
            "POST",
            "/acmedental.onmicrosoft.com/oauth2/v2.0/token",
            {},
            {"host": "sim"},
            b"grant_type=client_credentials&client_id=4f1c2d9e-0000-4000-8000-000000000001"
            b"&client_secret=sim-msp-secret&scope=https%3A%2F%2Fgraph%2F.default",
        )
    ).body["access_token"]
    users: list[dict[str, Any]] = []
    query: dict[str, list[str]] = {}
    while True:
        page = await sim.handle(
            "GET",
            "/v1.0/reports/authenticationMethods/userRegistrationDetails",
            query,
            {"host": "sim", "authorization": f"Bearer {token}"},
            b"",
        )
        users += page.body["value"]
        nxt = page.body.get("@odata.nextLink")
        if not nxt:
            break
        assert nxt.startswith("https://sim/v1.0/reports/")  # absolute, as Graph sends them
        query = {"$skiptoken": [nxt.split("$skiptoken=")[1]]}
    assert len(users) == 57
    assert sum(u["isMfaRegistered"] for u in users) == 44
    assert sum(u["isAdmin"] for u in users) == 4
    assert sum(u["isAdmin"] and u["isMfaRegistered"] for u in users) == 3


async def test_clock_speed_runs_the_timeline() -> None:
    sim = GraphSimulator(load_scenario(SCENARIOS_DIR / "estate.yaml"), clock_speed=3600.0)
    await asyncio.sleep(0.01)
    assert sim.elapsed() >= 36.0  # an hour a second
    frozen = GraphSimulator(load_scenario(SCENARIOS_DIR / "estate.yaml"))
    await frozen.handle("POST", "/_sim/clock", {"advance": ["600"]}, {}, b"")
    assert frozen.elapsed() == 600.0


def _issue_start(scenario: Scenario, tenant: str, issue: str) -> str:
    found = scenario.tenant(tenant)
    assert found is not None
    return next(str(i["startDateTime"]) for i in found.issues or [] if i["id"] == issue)


def test_relative_times_follow_the_start() -> None:
    """The estate's times are relative: the same story whatever day the clock starts."""
    estate = load_scenario(SCENARIOS_DIR / "estate.yaml")
    assert estate.start == "now"
    assert _issue_start(estate, "acmedental.onmicrosoft.com", "EX912345") == "-1h14m"
    frozen = estate.started(datetime(2026, 11, 2, 7, 55, tzinfo=UTC))
    assert _issue_start(frozen, "acmedental.onmicrosoft.com", "EX912345") == "2026-11-02T06:41:00Z"
    later = estate.started(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert _issue_start(later, "acmedental.onmicrosoft.com", "EX912345") == "2026-12-01T07:46:00Z"
    assert _issue_start(later, "acmedental.onmicrosoft.com", "TM910042") == "2026-11-27T16:05:00Z"
    # a step of the timeline too, and an absolute time stays as written
    acme = later.tenant("acmedental.onmicrosoft.com")
    assert acme is not None and acme.timeline[0].issues is not None
    assert acme.timeline[0].issues[0]["endDateTime"] == "2026-12-01T09:40:00Z"
    health = load_scenario(SCENARIOS_DIR / "service-health.yaml").started()
    assert all(str(i["startDateTime"]).startswith("2026-") for t in health.tenants for i in t.issues or [])


def test_a_now_start_is_the_real_time_when_the_simulator_starts() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    sim = GraphSimulator(load_scenario(SCENARIOS_DIR / "estate.yaml"))
    after = datetime.now(UTC)
    assert before <= sim.scenario.clock <= after
    issue = _issue_start(sim.scenario, "acmedental.onmicrosoft.com", "EX912345")
    assert datetime.fromisoformat(issue.replace("Z", "+00:00")) == sim.scenario.clock - timedelta(minutes=74)
