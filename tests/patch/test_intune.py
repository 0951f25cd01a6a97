"""Intune through the Graph simulator over TLS with msal: managed devices, Defender state,
the OS-revision check; faults of the Graph path."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest

from mspwatch.common.secrets import Secret
from mspwatch.exporters.graph.auth import MsalTokenProvider
from mspwatch.exporters.graph.client import GraphClient, RequestStats, make_http_client
from mspwatch.exporters.graph.config import GraphApp, GraphOptions
from mspwatch.exporters.patch.intune import IntuneClient, QualityUpdate, lacking_update
from mspwatch.exporters.patch.policy import parse_iso
from mspwatch.exporters.patch.records import Classification
from mspwatch.exporters.patch.scrape import scrape_source
from tests.conftest import assert_golden, promtool_check_metrics
from tests.m365.conftest import MSP_CLIENT_ID, MSP_SECRET
from tests.m365.conftest import Sim as GraphSim
from tests.m365.conftest import _start as start_graph

from .conftest import LONDON, lines_of, probe, value
from .test_policy import Policy

GOLDEN = Path(__file__).parent / "golden"
TENANT = "0a1c3e5f-0000-4000-8000-00000000ac3e"
NOW = parse_iso("2026-02-02T09:00:00Z")
UPDATES = {"10.0.26100": (QualityUpdate(revision=2894, released=date(2026, 1, 13)),)}


@pytest.fixture(scope="session")
def _intune_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphSim]:
    yield from start_graph(tmp_path_factory.mktemp("graph-intune"), "intune")


@pytest.fixture
def intune_sim(_intune_sim: GraphSim) -> GraphSim:
    _intune_sim.reset()
    return _intune_sim


class Intune:
    """An Intune client on the real Graph stack (msal tokens, shared pool)."""

    def __init__(
        self,
        sim: GraphSim,
        secret: str = MSP_SECRET,
        tenant: str = TENANT,
        updates: Mapping[str, Sequence[QualityUpdate]] = UPDATES,
    ) -> None:
        self.options = GraphOptions(url=sim.url, authority_host=sim.url, ca_file=sim.ca_file)
        app = GraphApp(client_id=MSP_CLIENT_ID, client_secret=Secret(secret))
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="msal-test")
        self.http = make_http_client(self.options)
        self.stats = RequestStats()
        tokens = MsalTokenProvider(tenant, app, self.options, self.pool)
        graph = GraphClient(self.http, tokens, self.options, self.stats)
        self.client = IntuneClient("acme-intune", graph, self.stats, updates)

    async def scrape(self, budget: float = 30.0) -> str:
        return await probe(
            lambda deadline: scrape_source(
                "acme-intune", self.client, Policy(), LONDON, deadline, lambda: NOW
            ),
            budget,
        )

    async def close(self) -> None:
        await self.http.aclose()
        self.pool.shutdown(wait=True)


@pytest.fixture
async def intune(intune_sim: GraphSim) -> AsyncIterator[Intune]:
    made = Intune(intune_sim)
    yield made
    await made.close()


async def test_intune_golden(intune: Intune, intune_sim: GraphSim, update_goldens: bool) -> None:
    text = await intune.scrape()
    assert promtool_check_metrics(text) == ""
    assert_golden(GOLDEN / "intune-acme.prom", text, update_goldens)
    firing = sorted(
        ln.split("{", 1)[1].split("}")[0]
        for ln in lines_of(text, "patch_device_noncompliant")
        if ln.endswith(" 1.0")
    )
    assert firing == [
        'device="ACME-LT-02",reason="missing_critical"',
        'device="ACME-LT-03",reason="av_off"',
        'device="ACME-LT-04",reason="av_outdated"',
        'device="ACME-LT-05",reason="not_reporting"',
    ]
    # Two pages of devices, then one Defender call per Windows device.
    endpoints = [r["endpoint"] for r in intune_sim.requests() if r["endpoint"] != "token"]
    assert endpoints.count("managedDevices") == 2
    assert endpoints.count("windowsProtectionState") == 6


async def test_protection_state_is_cached(intune: Intune, intune_sim: GraphSim) -> None:
    await intune.scrape()
    seen = len(intune_sim.requests())
    text = await intune.scrape()
    endpoints = [r["endpoint"] for r in intune_sim.requests()[seen:]]
    assert endpoints == ["managedDevices"] * 2
    assert value(text, "patch_scrape_requests") == 2.0
    assert value(text, 'patch_device_av_enabled{device="ACME-LT-01"}') == 1.0


async def test_bad_secret(intune_sim: GraphSim, caplog: pytest.LogCaptureFixture) -> None:
    client = Intune(intune_sim, secret="wrong-intune-secret")
    try:
        with caplog.at_level(logging.DEBUG):
            text = await client.scrape(budget=10)
    finally:
        await client.close()
    assert value(text, "patch_up") == 0.0
    assert value(text, 'patch_scrape_error{reason="auth"}') == 1.0
    assert "wrong-intune-secret" not in text + caplog.text


async def test_permission_missing(intune_sim: GraphSim) -> None:
    client = Intune(intune_sim, tenant="0a1c3e5f-0000-4000-8000-0000000000d1")
    try:
        text = await client.scrape(budget=10)
    finally:
        await client.close()
    assert value(text, "patch_up") == 0.0
    assert value(text, 'patch_scrape_error{reason="forbidden"}') == 1.0


async def test_throttled_page_and_a_503_within_the_deadline(intune_sim: GraphSim) -> None:
    client = Intune(intune_sim, tenant="0a1c3e5f-0000-4000-8000-0000000000d2")
    try:
        text = await client.scrape(budget=20)
    finally:
        await client.close()
    assert value(text, "patch_up") == 1.0
    assert value(text, "patch_scrape_retries") == 2.0
    assert len(lines_of(text, "patch_device_compliant")) == 2
    statuses = [(r["endpoint"], r["status"]) for r in intune_sim.requests() if r["tenant"] == "throttled"]
    assert statuses.count(("managedDevices", 429)) == 1
    assert statuses.count(("windowsProtectionState", 503)) == 1


def test_a_device_months_behind_is_due_from_the_first_update_it_lacks() -> None:
    table = {
        "10.0.26100": (
            QualityUpdate(2314, date(2025, 11, 11)),
            QualityUpdate(2605, date(2025, 12, 9)),
            QualityUpdate(2894, date(2026, 1, 13)),
        )
    }
    noon = "T12:00:00Z"
    assert lacking_update("10.0.26100.2894", table) is None
    assert lacking_update("10.0.22631.1000", table) is None  # a build not listed: not judged
    assert lacking_update("10.0.26100", table) is None  # no revision
    behind_one = lacking_update("10.0.26100.2605", table)
    assert behind_one is not None and behind_one.detected == parse_iso("2026-01-13" + noon)
    behind_two = lacking_update("10.0.26100.2400", table)
    assert behind_two is not None and behind_two.detected == parse_iso("2025-12-09" + noon)
    assert behind_two.classification is Classification.SECURITY


@pytest.mark.parametrize("start", ["2026-12-01T09:00:00Z", "2026-12-08T10:00:00Z"])
async def test_the_demo_intune_tenant_tells_the_same_story_any_day(tmp_path: Path, start: str) -> None:
    """The demo's bolt-intune source: the Graph estate (times relative to its start) judged
    against the table the demo writes (dated on the latest two Patch Tuesdays), three weeks
    after a Patch Tuesday and on the Patch Tuesday itself."""
    from mspwatch.demo.kit import Ports
    from mspwatch.demo.patch import exporter_config
    from mspwatch.exporters.patch.config import IntuneSettings

    now = parse_iso(start)
    table = IntuneSettings.model_validate(exporter_config(Ports(), now)["intune"]).table()
    sims = start_graph(tmp_path, "estate", start)
    sim = next(sims)
    made = Intune(sim, tenant="boltlogistics.onmicrosoft.com", updates=table)
    try:
        text = await probe(
            lambda deadline: scrape_source(
                "bolt-intune", made.client, Policy(), LONDON, deadline, lambda: now
            ),
            30.0,
        )
    finally:
        await made.close()
        sims.close()
    assert value(text, "patch_up") == 1.0
    assert len(lines_of(text, "patch_device_compliant")) == 7
    firing = sorted(
        ln.split("{", 1)[1].split("}")[0]
        for ln in lines_of(text, "patch_device_noncompliant")
        if ln.endswith(" 1.0")
    )
    assert firing == [
        'device="BOLT-LT-03",reason="missing_critical"',
        'device="BOLT-LT-04",reason="av_off"',
        'device="BOLT-LT-05",reason="not_reporting"',
    ]
    assert value(text, "patch_quality_updates_missed_patch_tuesdays") == 0.0
