"""Mapping and refresher against a recording fake Graph: no network, frozen clock."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from prometheus_client import generate_latest

from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.probe import ProbeApp
from mspwatch.exporters.graph.client import Record, RequestStats
from mspwatch.exporters.graph.errors import GraphError, Reason
from mspwatch.exporters.m365.client import M365Client
from mspwatch.exporters.m365.config import SIGNALS, Refresh
from mspwatch.exporters.m365.main import M365App
from mspwatch.exporters.m365.mapping import canonical_status
from mspwatch.exporters.m365.refresher import TenantRefresher
from mspwatch.inventory import M365Tenant

from .helpers import Clock


class FakeGraph:
    """Canned collections by path; remembers what was asked; can be told to fail."""

    def __init__(self, data: dict[str, list[Record]]) -> None:
        self.data = data
        self.asked: list[tuple[str, dict[str, str]]] = []
        self.fail: dict[str, GraphError] = {}

    async def list(
        self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None
    ) -> list[Record]:
        self.asked.append((path, dict(params or {})))
        if path in self.fail:
            raise self.fail[path]
        return self.data.get(path, [])

    async def get(self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None) -> Record:
        return {"value": await self.list(path, deadline, params)}


HEALTH = "admin/serviceAnnouncement/healthOverviews"
ISSUES = "admin/serviceAnnouncement/issues"
DATA: dict[str, list[Record]] = {
    HEALTH: [
        {"id": "Exchange", "service": "Exchange Online", "status": "SERVICEDEGRADATION"},
        {"id": "Teams", "service": "Microsoft Teams", "status": "somethingNew"},
        {"id": "SharePoint", "service": "SharePoint Online", "status": "serviceOperational"},
    ],
    ISSUES: [
        {
            "id": "EX1",
            "service": "Exchange Online",
            "classification": "Incident",
            "isResolved": False,
            "startDateTime": "2026-11-02T06:00:00Z",
            "title": "Mail is slow for everyone",
        },
        {"id": "EX0", "service": "Exchange Online", "classification": "advisory", "isResolved": True},
    ],
    "subscribedSkus": [
        {
            "skuId": "s1",
            "skuPartNumber": "SPE_E3",
            "consumedUnits": 25,
            "prepaidUnits": {"enabled": 20, "suspended": 0, "warning": 5, "lockedOut": 0},
        },
    ],
    "security/secureScores": [
        {"currentScore": 41.5, "maxScore": 72, "createdDateTime": "2026-11-02T00:00:00Z"}
    ],
    "reports/authenticationMethods/userRegistrationDetails": [
        {"id": "u1", "isAdmin": True, "isMfaRegistered": True},
        {"id": "u2", "isAdmin": True, "isMfaRegistered": False},
        {"id": "u3", "isAdmin": False, "isMfaRegistered": True},
    ],
}


def _collector(graph: FakeGraph, clock: Clock) -> TenantRefresher:
    tenant = M365Tenant(name="acme", tenant_id="acme.onmicrosoft.com")
    return TenantRefresher(tenant, M365Client(graph), RequestStats(), Refresh(), SIGNALS, clock=clock)


class _OneTenant(M365App):
    """The exporter's scrape and the probe core over one refresher, without a config file."""

    def __init__(self, refresher: TenantRefresher) -> None:
        ProbeApp.__init__(self)
        self._refresher = refresher

    def target(self, params: Mapping[str, str]) -> TenantRefresher:
        return self._refresher


async def _text(collector: TenantRefresher) -> str:
    registry = await _OneTenant(collector).probe({}, Deadline.after(5))
    return generate_latest(registry).decode()


def test_status_is_compared_case_insensitively() -> None:
    assert canonical_status("ServiceDegradation") == "serviceDegradation"
    assert canonical_status("servicedegradation") == "serviceDegradation"
    assert canonical_status("unknownFutureValue") == "unknown"
    assert canonical_status("") == "unknown"


async def test_one_series_per_state_counts_and_no_free_text() -> None:
    graph = FakeGraph(DATA)
    collector = _collector(graph, Clock())
    await collector.refresh_due(force=True)
    text = await _text(collector)
    assert 'm365_service_status{service="Exchange Online",status="serviceDegradation"} 1.0' in text
    assert 'm365_service_status{service="Exchange Online",status="serviceOperational"} 0.0' in text
    assert 'm365_service_status{service="Microsoft Teams",status="unknown"} 1.0' in text
    assert text.count('m365_service_status{service="Microsoft Teams"') == 18
    assert 'm365_service_degraded{service="Exchange Online"} 1.0' in text
    assert 'm365_service_degraded{service="Microsoft Teams"} 0.0' in text
    # zero rather than nothing: every service x classification
    assert 'm365_issues_open{classification="advisory",service="SharePoint Online"} 0.0' in text
    assert 'm365_issues_open{classification="incident",service="Exchange Online"} 1.0' in text
    assert 'm365_issue_info{classification="incident",issue_id="EX1",service="Exchange Online"} 1.0' in text
    assert "EX0" not in text  # resolved issues are not open issues
    assert "Mail is slow" not in text  # titles never become labels
    assert 'm365_issue_start_timestamp_seconds{issue_id="EX1"} 1.7935992e+09' in text
    assert 'm365_license_prepaid_units{sku="SPE_E3",state="warning"} 5.0' in text
    assert 'm365_license_consumed_units{sku="SPE_E3"} 25.0' in text
    assert "m365_secure_score_current 41.5" in text
    assert 'm365_users{group="admins"} 2.0' in text
    assert 'm365_mfa_registered_users{group="all"} 2.0' in text
    assert "u1" not in text  # counts, never per-user series
    # what was asked: registration details trimmed to the fields counted, one score
    asked = dict(graph.asked)
    assert asked["reports/authenticationMethods/userRegistrationDetails"] == {
        "$select": "id,isAdmin,isMfaRegistered"
    }
    assert asked["security/secureScores"] == {"$top": "1"}


async def test_a_failed_refresh_keeps_the_last_data_and_its_age() -> None:
    graph = FakeGraph(DATA)
    clock = Clock()
    collector = _collector(graph, clock)
    await collector.refresh_due(force=True)
    clock.advance(3600)
    graph.fail["subscribedSkus"] = GraphError(Reason.UNAVAILABLE, "HTTP 503", status=503)
    await collector.refresh("licences")
    text = await _text(collector)
    assert 'm365_signal_up{signal="licences"} 0.0' in text
    assert 'm365_signal_data_age_seconds{signal="licences"} 3600.0' in text
    assert 'm365_license_prepaid_units{sku="SPE_E3",state="enabled"} 20.0' in text  # last good data
    assert 'm365_scrape_error{reason="unavailable"} 1.0' in text
    assert "m365_up 0.0" in text
    # retried after refresh.retry (1m), not after the licences interval (1h)
    assert collector._signals["licences"].next_due == clock.now + 60.0


async def test_each_signal_on_its_own_interval() -> None:
    graph = FakeGraph(DATA)
    clock = Clock()
    collector = _collector(graph, clock)
    await collector.refresh_due(force=True)
    graph.asked.clear()
    clock.advance(120)
    await collector.refresh_due()
    assert [p for p, _ in graph.asked] == [HEALTH]
    graph.asked.clear()
    clock.advance(180)  # 300 s: issues due as well as health
    await collector.refresh_due()
    assert sorted(p for p, _ in graph.asked) == [HEALTH, ISSUES]


async def test_before_the_first_refresh() -> None:
    collector = _collector(FakeGraph(DATA), Clock())
    text = await _text(collector)
    assert "m365_up 0.0" in text
    assert 'm365_signal_data_age_seconds{signal="health"} +Inf' in text
    assert "m365_service_status" not in text  # no data yet is not "all zero"


class HangingGraph(FakeGraph):
    """Registration details never answer; everything else does."""

    def __init__(self, data: dict[str, list[Record]]) -> None:
        super().__init__(data)
        self.release = asyncio.Event()

    async def list(
        self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None
    ) -> list[Record]:
        if path == "reports/authenticationMethods/userRegistrationDetails":
            await self.release.wait()
        return await super().list(path, deadline, params)


async def test_background_loop_runs_signals_side_by_side() -> None:
    graph = HangingGraph(DATA)
    collector = _collector(graph, Clock())
    loop = asyncio.ensure_future(collector.run())
    try:
        for _ in range(100):  # let the loop start everything that is due
            await asyncio.sleep(0)
            if collector.view().signals["licences"].ok:
                break
        view = collector.view()
        assert view.signals["health"].ok and view.signals["licences"].ok
        assert not view.signals["mfa"].attempted  # still inside Graph, not holding the rest
        graph.release.set()
        for _ in range(100):
            await asyncio.sleep(0)
            if collector.view().signals["mfa"].ok:
                break
        assert collector.view().signals["mfa"].ok
    finally:
        loop.cancel()
        collector.cancel()


async def test_one_tenant_holds_at_most_its_share_of_slots() -> None:
    class AllHang(FakeGraph):
        async def list(
            self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None
        ) -> list[Record]:
            self.asked.append((path, dict(params or {})))
            await asyncio.Event().wait()
            return []

    graph = AllHang(DATA)
    shared = asyncio.Semaphore(10)
    tenant = M365Tenant(name="acme", tenant_id="acme.onmicrosoft.com")
    collector = TenantRefresher(
        tenant,
        M365Client(graph),
        RequestStats(),
        Refresh(),
        SIGNALS,
        clock=Clock(),
        slots=shared,
        per_tenant=2,
    )
    task = asyncio.ensure_future(collector.refresh_due(force=True))
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(graph.asked) == 2  # five signals due, two in Graph
    assert shared._value == 8  # the other tenants still have eight slots
    task.cancel()
    collector.cancel()
