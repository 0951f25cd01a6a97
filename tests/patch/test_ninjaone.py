"""The NinjaOne client over real HTTP against the simulator: goldens, paging, the
scenarios' cases over time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import assert_golden, promtool_check_metrics

from .conftest import Sim, lines_of, ninja_client, scrape, value

GOLDEN = Path(__file__).parent / "golden"


def check(name: str, text: str, update: bool) -> None:
    assert promtool_check_metrics(text) == ""
    assert_golden(GOLDEN / f"{name}.prom", text, update)


async def test_fleet_golden(fleet: Sim, update_goldens: bool) -> None:
    """One device per case: compliant, missing critical 20 days after Patch Tuesday, reboot
    pending 8 days, stopped reporting (and scanning), AV outdated, AV off, failed install,
    unknown enums, patch scans stopped nine days ago."""
    text = await scrape(fleet)
    check("ninjaone-fleet", text, update_goldens)
    noncompliant = sorted(
        ln.split("{", 1)[1].split("}")[0]
        for ln in lines_of(text, "patch_device_noncompliant")
        if ln.endswith(" 1.0")
    )
    assert noncompliant == [
        'device="acme-fs1",reason="reboot_pending"',
        'device="acme-lt-07",reason="not_reporting"',
        'device="acme-lt-07",reason="not_scanned"',
        'device="acme-sql1",reason="missing_critical"',
        'device="acme-ws-02",reason="av_outdated"',
        'device="acme-ws-03",reason="av_off"',
        'device="acme-ws-04",reason="failed_install"',
        'device="acme-ws-06",reason="not_scanned"',
    ]


async def test_failed_install_retries(fleet: Sim) -> None:
    """After the retry succeeds the device is compliant; its reboot is pending, not overdue."""
    client = ninja_client(fleet)
    try:
        before = await scrape(fleet, client)
        fleet.advance("3h")
        after = await scrape(fleet, client)
    finally:
        await client.aclose()
    dev = 'device="acme-ws-04"'
    assert value(before, f"patch_device_compliant{{{dev}}}") == 0.0
    assert value(before, f"patch_device_failed_updates{{{dev}}}") == 1.0
    assert value(after, f"patch_device_compliant{{{dev}}}") == 1.0
    assert value(after, f"patch_device_failed_updates{{{dev}}}") == 0.0
    assert value(after, f'patch_device_install_attempts{{{dev},result="installed"}}') == 1.0
    assert value(after, f'patch_device_install_attempts{{{dev},result="failed"}}') == 1.0
    assert value(after, f"patch_device_reboot_pending{{{dev}}}") == 1.0
    assert value(after, f"patch_device_reboot_pending_since_timestamp_seconds{{{dev}}}") == fleet.now() - 3600


async def test_three_pages_of_devices(fleet: Sim) -> None:
    """250 devices at 100 a page: three pages by ``after``, every device mapped."""
    client = ninja_client(fleet, organization="Big Fleet")
    try:
        text = await scrape(fleet, client)
    finally:
        await client.aclose()
    assert len(lines_of(text, "patch_device_compliant")) == 250
    pages = [r["query"] for r in fleet.requests() if r["path"] == "/v2/devices"]
    assert pages == [
        {"df": "org = 2", "pageSize": "100"},
        {"df": "org = 2", "pageSize": "100", "after": "110"},
        {"df": "org = 2", "pageSize": "100", "after": "210"},
    ]
    # Ids 11..260 (the first organisation holds 1..10). Each query: two full pages, a short
    # one, then the empty page that ends the cursor.
    patches = [r for r in fleet.requests() if r["path"] == "/v2/queries/operating-systems"]
    assert len(patches) == 4


async def test_patch_scans_are_read_once_then_incrementally(fleet: Sim) -> None:
    """The activity log, newest first: the first scrape pages back ``scan_lookback`` by
    ``olderThan``; the next asks only for what is newer than the newest id it saw."""
    client = ninja_client(fleet, organization="Big Fleet")
    try:
        first = await scrape(fleet, client)
        fleet.advance("1h")
        second = await scrape(fleet, client)
    finally:
        await client.aclose()
    scans = [r["query"] for r in fleet.requests() if r["path"] == "/v2/activities"]
    common = {"class": "DEVICE", "type": "PATCH_MANAGEMENT", "status": "PATCH_MANAGEMENT_SCAN_COMPLETED"}
    after = str(int(fleet.now() - 3600 - 14 * 86400))
    # 250 scans at 100 a page (the server filters the "started" activities out).
    assert [{k: v for k, v in q.items() if k not in ("olderThan",)} for q in scans[:3]] == [
        {**common, "df": "org = 2", "pageSize": "100", "after": after}
    ] * 3
    older = [int(q["olderThan"]) for q in scans[1:3]]
    assert "olderThan" not in scans[0] and older[0] > older[1]
    # 562 activities in all (a started and a completed one per scan), the newest Big Fleet's
    assert scans[3] == {**common, "df": "org = 2", "pageSize": "100", "newerThan": "562"}
    assert len(scans) == 4
    six_hours_ago = fleet.now() - 3600 - 6 * 3600
    for text in (first, second):
        stamps = lines_of(text, "patch_device_last_scan_timestamp_seconds")
        assert len(stamps) == 250
        assert {float(ln.rsplit(" ", 1)[1]) for ln in stamps} == {six_hours_ago}


async def test_an_empty_activity_log_is_read_again_by_time(fleet: Sim) -> None:
    """No scan at all in ``scan_lookback``: every device is not scanned (0), and the next
    scrape asks by time again, not for everything newer than id 0."""
    fleet.fault(path="/v2/activities", status=200, body='{"lastActivityId": 0, "activities": []}')
    client = ninja_client(fleet)
    try:
        first = await scrape(fleet, client)
        second = await scrape(fleet, client)
    finally:
        await client.aclose()
    dev = 'device="acme-dc1"'
    assert value(first, f"patch_device_last_scan_timestamp_seconds{{{dev}}}") == 0.0
    assert value(first, f'patch_device_noncompliant{{{dev},reason="not_scanned"}}') == 1.0
    assert value(second, f'patch_device_noncompliant{{{dev},reason="not_scanned"}}') == 0.0
    reads = [r["query"] for r in fleet.requests() if r["path"] == "/v2/activities"]
    assert [("after" in q, "newerThan" in q) for q in reads] == [(True, False), (True, False)]


async def test_month_rolls_over(rollover: Sim) -> None:
    """The day before February's Patch Tuesday: compliant, nothing missing. After it:
    February's update is missing but within its deadline. Past 24 February: overdue."""
    client = ninja_client(rollover)
    dev = 'device="acme-dc1"'
    missing = f'patch_device_missing_updates{{classification="security",{dev}}}'
    try:
        before = await scrape(rollover, client)
        rollover.set_clock("2026-02-11T09:00:00Z")
        after = await scrape(rollover, client)
        rollover.set_clock("2026-02-24T00:00:01Z")
        late = await scrape(rollover, client)
    finally:
        await client.aclose()
    assert value(before, missing) == 0.0
    assert value(before, "patch_policy_patch_tuesday_timestamp_seconds") == 1768262400.0  # 13 Jan
    assert value(before, f"patch_device_compliant{{{dev}}}") == 1.0
    assert value(after, missing) == 1.0
    assert value(after, "patch_policy_patch_tuesday_timestamp_seconds") == 1770681600.0  # 10 Feb
    assert value(after, f"patch_device_compliant{{{dev}}}") == 1.0
    assert value(late, f'patch_device_noncompliant{{{dev},reason="missing_critical"}}') == 1.0
    assert value(late, f'patch_device_overdue_updates{{deadline="security",{dev}}}') == 1.0


@pytest.mark.parametrize(
    ("organization", "expected"),
    [
        (
            "Acme Dental",
            [
                'device="acme-dc1",reason="missing_critical"',
                'device="acme-lt-surgeon",reason="not_reporting"',
                'device="acme-lt-surgeon",reason="not_scanned"',
            ],
        ),
        (
            "Bolt Logistics",
            ['device="bolt-dc1",reason="reboot_pending"', 'device="bolt-ws-dispatch",reason="av_outdated"'],
        ),
    ],
)
async def test_estate_scenario(estate: Sim, organization: str, expected: list[str]) -> None:
    """The demo's organisations, one per customer, each with something to show."""
    client = ninja_client(
        estate, organization=organization, secret="Demo-Ninja-Secret", client_id="mspwatch-demo"
    )
    try:
        text = await scrape(estate, client)
    finally:
        await client.aclose()
    assert value(text, "patch_up") == 1.0
    firing = sorted(
        ln.split("{", 1)[1].split("}")[0]
        for ln in lines_of(text, "patch_device_noncompliant")
        if ln.endswith(" 1.0")
    )
    assert firing == expected


def test_every_metric_is_documented() -> None:
    """Each family in the goldens has a row in docs/patch-metrics.md, and each row a family."""
    import re

    doc = (Path(__file__).parents[2] / "docs" / "patch-metrics.md").read_text(encoding="utf-8")
    emitted = set()
    for path in GOLDEN.glob("*.prom"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# TYPE "):
                emitted.add(line.split()[2])
    documented = set(re.findall(r"^\| `(patch_[a-z_]+)` \|", doc, flags=re.M))
    assert emitted == documented
