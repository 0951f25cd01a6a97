"""Mapping edge cases without HTTP: repeated device names, devices without antivirus data,
a source that could not be read."""

from __future__ import annotations

from mspwatch.exporters.core.http import RequestStats
from mspwatch.exporters.patch.mapping import SourceScrape, map_source, unique_names
from mspwatch.exporters.patch.ninjaone import build_devices
from mspwatch.exporters.patch.policy import parse_iso
from mspwatch.exporters.patch.records import Antivirus, SourceData, SourceReason

from .conftest import LONDON, render, value
from .test_policy import NOW, Policy, device


def scrape_of(data: SourceData | None, reason: SourceReason | None = None) -> str:
    fields = {
        "data": data,
        "reason": reason,
        "duration": 0.0,
        "now": NOW,
        "policy": Policy(),
        "zone": LONDON,
        "stats": RequestStats(),
    }
    # The outcome (up, reason, duration) moves to the probe core: pass what the dataclass has.
    wanted = SourceScrape.__dataclass_fields__
    return render(map_source(SourceScrape(**{k: v for k, v in fields.items() if k in wanted})))  # type: ignore[arg-type]


def test_repeated_names_get_the_id() -> None:
    devices = [device(id="1", name="ws-1"), device(id="2", name="ws-1"), device(id="3", name="ws-2")]
    assert unique_names(devices) == ["ws-1", "ws-1#2", "ws-2"]
    text = scrape_of(SourceData(devices=devices))
    assert 'patch_device_compliant{device="ws-1#2"} 1.0' in text


def test_antivirus_series_only_where_the_source_says() -> None:
    devices = [
        device(
            id="1", name="with-av", antivirus=Antivirus(enabled=True, realtime=None, signatures_current=False)
        ),
        device(id="2", name="without-av"),
    ]
    text = scrape_of(SourceData(devices=devices))
    assert 'patch_device_av_enabled{device="with-av"} 1.0' in text
    assert 'patch_device_av_signatures_current{device="with-av"} 0.0' in text
    assert "without-av" not in "".join(ln for ln in text.splitlines() if ln.startswith("patch_device_av_"))
    assert "patch_device_av_realtime_enabled" not in text  # nobody said: no bare HELP/TYPE


def test_a_source_down_states_the_policy_but_no_devices() -> None:
    text = scrape_of(None, SourceReason.AUTH)
    assert "patch_device_" not in text
    assert "patch_scrape_requests 0.0" in text
    assert "patch_policy_target_compliance_ratio 0.95" in text


def test_ninjaone_rows_join_on_device_id() -> None:
    """Rejected updates do not count; unknown statuses count as pending; the reboot waits
    since the first install after the last boot."""
    devices = build_devices(
        devices=[
            {"id": 7, "displayName": "pc7", "nodeClass": "WINDOWS_WORKSTATION", "lastContact": NOW - 60}
        ],
        oses=[
            {
                "deviceId": 7,
                "name": "Windows 11 Pro",
                "buildNumber": "10.0.26100.2605",
                "lastBootTime": NOW - 9 * 86400,
                "needsReboot": True,
            }
        ],
        patches=[
            {
                "deviceId": 7,
                "type": "SECURITY_UPDATES",
                "severity": "CRITICAL",
                "status": "REJECTED",
                "timestamp": NOW,
            },
            {
                "deviceId": 7,
                "type": "security updates",
                "severity": "Important",
                "status": "PENDING_SOMETHING",
                "timestamp": NOW,
            },
            {"deviceId": 99, "type": "SECURITY_UPDATES", "status": "MANUAL"},  # another org's device
        ],
        installs=[
            {"deviceId": 7, "type": "DRIVER_UPDATES", "status": "INSTALLED", "installedAt": NOW - 10 * 86400},
            {"deviceId": 7, "type": "DRIVER_UPDATES", "status": "INSTALLED", "installedAt": NOW - 8 * 86400},
            {"deviceId": 7, "type": "DRIVER_UPDATES", "status": "FAILED", "installedAt": NOW - 3 * 86400},
        ],
        avs=[{"deviceId": 7, "productState": "on", "definitionStatus": "Out-of-Date"}],
    )
    (pc7,) = devices
    assert [(u.classification.value, u.severity.value, u.failed) for u in pc7.updates] == [
        ("security", "important", False)
    ]
    assert pc7.reboot_pending and pc7.reboot_pending_since == NOW - 8 * 86400
    assert [a.ok for a in pc7.installs] == [True, True, False]
    assert pc7.antivirus == Antivirus(enabled=True, realtime=None, signatures_current=False)
    assert (pc7.name, pc7.os_version, pc7.last_boot) == ("pc7", "10.0.26100.2605", NOW - 9 * 86400)


def _table_scrape(table: dict[str, float] | None, now: str) -> str:
    wanted = SourceScrape.__dataclass_fields__
    fields = {"data": SourceData(devices=[], update_table=table), "now": parse_iso(now)}
    fields |= {"policy": Policy(), "zone": LONDON, "stats": RequestStats()}
    return render(map_source(SourceScrape(**{k: v for k, v in fields.items() if k in wanted})))  # type: ignore[arg-type]


def test_a_quality_update_table_goes_stale_on_patch_tuesday() -> None:
    """January's table is current until February's Patch Tuesday begins in the customer's
    zone (London: 10 February 00:00 GMT), then one Patch Tuesday behind, two in March."""
    table = {"10.0.26100": parse_iso("2026-01-13T12:00:00Z"), "10.0.22631": parse_iso("2025-12-09T12:00:00Z")}
    missed = "patch_quality_updates_missed_patch_tuesdays"
    assert value(_table_scrape(table, "2026-02-09T23:59:59Z"), missed) == 0.0
    assert value(_table_scrape(table, "2026-02-10T00:00:00Z"), missed) == 1.0
    text = _table_scrape(table, "2026-03-10T00:00:00Z")
    assert value(text, missed) == 2.0
    assert value(text, 'patch_quality_update_released_timestamp_seconds{build="10.0.22631"}') == 1765281600.0
    # No table (a NinjaOne source), or an empty one: no series (an empty table judges no
    # update at all; docs/patch-metrics.md says so).
    assert "patch_quality" not in _table_scrape(None, "2026-02-10T00:00:00Z")
    assert "patch_quality" not in _table_scrape({}, "2026-02-10T00:00:00Z")
