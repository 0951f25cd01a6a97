"""Maintenance windows, business hours and the customer's time zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mspwatch.inventory import Customer, MaintenanceWindow, is_in_maintenance, load_inventory

HERE = Path(__file__).parent
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def _spans(window: MaintenanceWindow, zone: ZoneInfo, start: datetime, end: datetime) -> list[str]:
    return [f"{a:%Y-%m-%d %H:%M}/{b:%Y-%m-%d %H:%M}" for a, b in window.occurrences(zone, start, end)]


def _weekly(days: list[str], start: str, end: str) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(
        {"name": "w", "weekly": {"days": days, "start": start, "end": end}}
    )


def test_weekly_window_moves_in_utc_when_the_clocks_change() -> None:
    # Sunday 02:00-04:00 London: 02:00-04:00 UTC in winter, 01:00-03:00 UTC in summer.
    window = _weekly(["sun"], "02:00", "04:00")
    assert _spans(window, LONDON, _utc(2026, 3, 20), _utc(2026, 4, 6)) == [
        "2026-03-22 02:00/2026-03-22 04:00",
        "2026-03-29 01:00/2026-03-29 03:00",  # BST from 01:00 UTC that morning
        "2026-04-05 01:00/2026-04-05 03:00",
    ]
    assert _spans(window, LONDON, _utc(2026, 10, 24), _utc(2026, 11, 2)) == [
        "2026-10-25 02:00/2026-10-25 04:00",  # GMT again from 01:00 UTC
        "2026-11-01 02:00/2026-11-01 04:00",
    ]


def test_a_window_over_the_skipped_hour_is_shorter() -> None:
    # New York springs forward at 02:00 EST on 8 March 2026: 01:30-03:30 lasts 1 h of real time.
    window = _weekly(["sun"], "01:30", "03:30")
    assert _spans(window, NEW_YORK, _utc(2026, 3, 8), _utc(2026, 3, 9)) == [
        "2026-03-08 06:30/2026-03-08 07:30",
    ]


def test_a_window_over_the_repeated_hour_happens_twice() -> None:
    # New York falls back at 02:00 EDT on 1 November 2026: 01:00-01:30 local happens twice.
    window = _weekly(["sun"], "01:00", "01:30")
    assert _spans(window, NEW_YORK, _utc(2026, 11, 1), _utc(2026, 11, 2)) == [
        "2026-11-01 05:00/2026-11-01 05:30",
        "2026-11-01 06:00/2026-11-01 06:30",
    ]


def test_an_overnight_window_ends_the_next_day_and_is_clipped() -> None:
    window = _weekly(["sat"], "22:00", "03:00")
    assert _spans(window, SYDNEY, _utc(2026, 7, 4), _utc(2026, 7, 5)) == [
        "2026-07-04 12:00/2026-07-04 17:00",  # AEST = UTC+10
    ]
    assert _spans(window, SYDNEY, _utc(2026, 7, 4, 13), _utc(2026, 7, 4, 14)) == [
        "2026-07-04 13:00/2026-07-04 14:00",
    ]


def test_a_one_off_window_is_local_time() -> None:
    window = MaintenanceWindow.model_validate(
        {"name": "swap", "once": {"start": "2026-11-14T22:00", "end": "2026-11-15T01:00"}}
    )
    assert _spans(window, SYDNEY, _utc(2026, 11, 1), _utc(2026, 12, 1)) == [
        "2026-11-14 11:00/2026-11-14 14:00",  # AEDT = UTC+11
    ]
    assert _spans(window, SYDNEY, _utc(2026, 12, 1), _utc(2027, 1, 1)) == []


@pytest.mark.parametrize(
    ("zone", "day"),
    [(LONDON, _utc(2026, 3, 28)), (LONDON, _utc(2026, 10, 24)), (NEW_YORK, _utc(2026, 3, 7)),
     (NEW_YORK, _utc(2026, 10, 31)), (SYDNEY, _utc(2026, 4, 4)), (SYDNEY, _utc(2026, 10, 3))],
)  # fmt: skip
def test_is_open_agrees_with_occurrences_minute_by_minute(zone: ZoneInfo, day: datetime) -> None:
    """Two ways to the same answer: the wall clock at an instant, and the UTC spans."""
    windows = [
        _weekly(["sat", "sun"], "00:30", "03:30"),
        _weekly(["sun"], "23:00", "02:30"),
        _weekly(["sun"], "01:00", "24:00"),
        MaintenanceWindow.model_validate(
            {
                "name": "o",
                "once": {
                    "start": f"{day:%Y-%m-%d}T23:15",
                    "end": f"{day + timedelta(days=1):%Y-%m-%d}T02:45",
                },
            }
        ),
    ]
    end = day + timedelta(days=3)
    for window in windows:
        spans = window.occurrences(zone, day, end)
        ts = day
        while ts < end:
            inside = any(a <= ts < b for a, b in spans)
            assert window.is_open(zone, ts) == inside, (window, ts)
            ts += timedelta(minutes=5)


def test_is_in_maintenance_respects_sites_and_zone() -> None:
    inv = load_inventory(HERE / "inventory.yml")
    acme, bolt = inv.customer("acme-dental"), inv.customer("bolt-logistics")
    sunday_3am_london = _utc(2026, 7, 5, 2)  # BST
    assert is_in_maintenance(acme, "hq", sunday_3am_london)
    assert not is_in_maintenance(acme, "branch-leeds", sunday_3am_london)  # the window is hq's
    assert not is_in_maintenance(acme, None, sunday_3am_london)
    swap = _utc(2026, 11, 14, 23, 30)  # GMT: inside the one-off window, every site
    assert is_in_maintenance(acme, "branch-leeds", swap) and is_in_maintenance(acme, None, swap)
    assert is_in_maintenance(bolt, "depot", _utc(2026, 7, 5, 6, 59))  # 02:59 EDT, Sunday
    assert not is_in_maintenance(bolt, "depot", _utc(2026, 7, 5, 7, 0))


def test_measured_minutes_of_business_hours_across_the_clock_change() -> None:
    inv = load_inventory(HERE / "inventory.yml")
    acme = inv.customer("acme-dental")
    # March 2026 has 22 weekdays of 10 hours, whatever the clocks do on the 29th.
    assert acme.measured_minutes(_utc(2026, 3, 1), _utc(2026, 4, 1)) == 22 * 600
    # A week cut at 12:00 UTC on Monday in BST (13:00 local): 5 h of Monday, then 4 days.
    assert acme.measured_minutes(_utc(2026, 6, 1, 12), _utc(2026, 6, 8)) == 5 * 60 + 4 * 600
    # 24x7 counts every minute, also of a month with a 23-hour day.
    bolt = inv.customer("bolt-logistics")
    assert bolt.measured_minutes(_utc(2026, 3, 1), _utc(2026, 4, 1)) == 31 * 1440


def test_defaults_of_the_new_sections() -> None:
    customer = Customer(name="acme")
    assert customer.timezone == "UTC"
    assert (customer.contract.hours, customer.contract.availability_target) == ("24x7", 99.9)
    assert customer.contract.blip_threshold == 120.0
    policy = customer.patch_policy
    assert (policy.security_days, policy.other_days, policy.anchor) == (14, 30, "patch_tuesday")
    assert (policy.max_days_since_contact, policy.max_av_signature_age_days, policy.target_compliance) == (
        7,
        3,
        95.0,
    )
    assert customer.maintenance == [] and customer.alerting.receivers == []
