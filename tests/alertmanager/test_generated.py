"""The Alertmanager config `mspwatch targets` generates from an inventory with maintenance
windows in two time zones (tests/inventory/inventory.yml: London and New York):

- amtool accepts it and routes every customer x site x severity to the receivers the
  routing table below says;
- the route an alert takes is muted by exactly the windows of its customer and site, and
  the generated time_intervals, read the way Alertmanager 0.25 reads them, are open exactly
  when the inventory's own `is_in_maintenance` says (every 15 minutes of a year with DST).
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from mspwatch.common.config import ConfigError
from mspwatch.inventory import Inventory, is_in_maintenance, load_inventory
from mspwatch.targets.alertmanager import render
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "tests" / "inventory" / "inventory.yml"
BASE = ROOT / "compose" / "alertmanager.base.yml"

SITES = {"acme-dental": ["hq", "branch-leeds", None], "bolt-logistics": ["depot", None], "zeta": ["x", None]}
SEVERITIES = ["critical", "warning", "info", "page-me"]
# Which windows mute an alert of that customer and site (None: an alert without a site).
WINDOWS = {
    ("acme-dental", "hq"): ["acme-dental/sunday-patching", "acme-dental/core-switch-swap"],
    ("acme-dental", "branch-leeds"): ["acme-dental/core-switch-swap"],
    ("acme-dental", None): ["acme-dental/core-switch-swap"],
    ("bolt-logistics", "depot"): ["bolt-logistics/saturday-night"],
    ("bolt-logistics", None): ["bolt-logistics/saturday-night"],
}


def expected_receivers(customer: str, severity: str) -> list[str]:
    """The routing table of docs/alerting.md."""
    if severity == "info":
        return ["null"]
    if severity == "critical":
        return (["acme-dental-escalation"] if customer == "acme-dental" else []) + ["msp-paging"]
    if severity == "warning":
        return ["msp-ticketing"]
    return ["platform-team"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    text = render(yaml.safe_load(BASE.read_text()), load_inventory(INVENTORY), str(BASE), str(INVENTORY))
    path = tmp_path_factory.mktemp("am") / "alertmanager.yml"
    path.write_text(text)
    return path, yaml.safe_load(text)


def test_amtool_accepts_it(generated: tuple[Path, dict[str, Any]]) -> None:
    path, _ = generated
    proc = subprocess.run(
        [require_tool("amtool"), "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


CASES = [(c, s, sev) for c, sites in SITES.items() for s in sites for sev in SEVERITIES]


@pytest.mark.parametrize(("customer", "site", "severity"), CASES, ids=[f"{c}-{s}-{v}" for c, s, v in CASES])
def test_amtool_routes_each_customer_site_and_severity(
    generated: tuple[Path, dict[str, Any]], customer: str, site: str | None, severity: str
) -> None:
    path, _ = generated
    expected = ",".join(expected_receivers(customer, severity))
    labels = {"alertname": "AnyAlert", "customer": customer, "severity": severity}
    if site is not None:
        labels["site"] = site
    proc = subprocess.run(
        [
            require_tool("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={path}",
            f"--verify.receivers={expected}",
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"{labels}: want {expected}, amtool: {proc.stdout.strip()} {proc.stderr}"


# Alertmanager's route matching (dispatch/route.go `Match`), enough for the generated tree.
def _matches(matchers: list[str], labels: dict[str, str]) -> bool:
    for text in matchers:
        found = re.fullmatch(r'([a-z_]+)(=~|=)"(.*)"', text)
        assert found, text
        name, op, value = found.groups()
        actual = labels.get(name, "")
        if (op == "=" and actual != value) or (op == "=~" and not re.fullmatch(value, actual)):
            return False
    return True


def _match(route: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    if not _matches(route.get("matchers", []), labels):
        return []
    found: list[dict[str, Any]] = []
    for child in route.get("routes", []):
        hits = _match(child, labels)
        found += hits
        if hits and not child.get("continue", False):
            break
    return found or [route]


@pytest.mark.parametrize(("customer", "site"), [(c, s) for c, sites in SITES.items() for s in sites])
def test_each_route_is_muted_by_its_customer_and_sites_windows(
    generated: tuple[Path, dict[str, Any]], customer: str, site: str | None
) -> None:
    _, config = generated
    for severity in ("critical", "warning"):
        labels = {"customer": customer, "severity": severity, **({"site": site} if site else {})}
        leaves = _match(config["route"], labels)
        assert [leaf["receiver"] for leaf in leaves] == expected_receivers(customer, severity)
        for leaf in leaves:
            assert leaf.get("mute_time_intervals", []) == WINDOWS.get((customer, site), []), labels


# Alertmanager 0.25's time intervals (timeinterval/timeinterval.go): every given field must
# match the time in `location`; times are [start, end) in minutes of the day.
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]


def _clock(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _interval_open(interval: dict[str, Any], ts: datetime) -> bool:
    local = ts.astimezone(ZoneInfo(interval.get("location", "UTC")))
    minute = local.hour * 60 + local.minute
    if "times" in interval and not any(
        _clock(t["start_time"]) <= minute < _clock(t["end_time"]) for t in interval["times"]
    ):
        return False
    if "weekdays" in interval and _DAYS[local.weekday()] not in interval["weekdays"]:
        return False
    if "days_of_month" in interval and str(local.day) not in interval["days_of_month"]:
        return False
    if "months" in interval and _MONTHS[local.month - 1] not in interval["months"]:
        return False
    return "years" not in interval or str(local.year) in interval["years"]


def test_time_intervals_are_open_exactly_in_the_inventorys_windows(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    _, config = generated
    named = {t["name"]: t["time_intervals"] for t in config["time_intervals"]}
    assert sorted(named) == sorted({n for names in WINDOWS.values() for n in names})
    inv = load_inventory(INVENTORY)
    ts, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    opened = 0
    while ts < end:
        for (customer, site), names in WINDOWS.items():
            muted = any(_interval_open(i, ts) for name in names for i in named[name])
            assert muted == is_in_maintenance(inv.customer(customer), site, ts), (customer, site, ts)
            opened += muted
        ts += timedelta(minutes=15)
    # Sanity: the windows do open (52 Sundays x 2 h, 52 Saturday nights x 5 h, one 3 h swap).
    assert opened > 52 * 8


def test_a_receiver_the_base_does_not_define_fails_naming_the_field() -> None:
    inv = Inventory.model_validate(
        {"customers": [{"name": "acme"}, {"name": "bolt", "alerting": {"receivers": ["bolt-pager"]}}]}
    )
    with pytest.raises(ConfigError) as err:
        render(yaml.safe_load(BASE.read_text()), inv, "base.yml", "inventory.yml")
    assert str(err.value) == (
        "inventory.yml: customers.1.alerting.receivers.0: unknown receiver 'bolt-pager' "
        "(receivers in base.yml: acme-dental-escalation, dead-mans-switch, msp-paging, msp-ticketing, null, "
        "platform-team)"
    )


def test_the_base_needs_exactly_one_placeholder() -> None:
    base = yaml.safe_load(BASE.read_text())
    base["route"]["routes"] = [r for r in base["route"]["routes"] if r != {"mspwatch": "customer-routes"}]
    with pytest.raises(ConfigError) as err:
        render(base, Inventory(customers=[]), "base.yml", "inventory.yml")
    assert str(err.value) == "base.yml: route.routes: want exactly one `- mspwatch: customer-routes` entry"
