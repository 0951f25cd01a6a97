"""Grafana's dashboard-linter rules over every committed dashboard, each rule also shown to
catch a broken dashboard; every link resolves and every metric is catalogued."""

from __future__ import annotations

import copy
import doctest
import re
from pathlib import Path

import pytest
import yaml

from tests.dashboards import dashlint
from tests.dashboards.dashlint import ROOT

DASHBOARDS = dashlint.dashboards()
WALL_SCREEN = "noc/mspwatch-noc.json"


def _recorded() -> set[str]:
    names = set()
    for path in (ROOT / "alertrules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {r["record"] for r in group["rules"] if "record" in r}
    return names


def _catalogue() -> set[str]:
    names = set()
    for path in (ROOT / "docs").glob("*-metrics.md"):
        names |= set(re.findall(r"^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)`", path.read_text(), flags=re.M))
    return names


def test_the_dashboards_are_all_there() -> None:
    assert sorted(DASHBOARDS) == [
        "backup/mspwatch-backup.json",
        "m365/mspwatch-m365.json",
        "network/mspwatch-interface.json",
        "network/mspwatch-snmp.json",
        "noc/mspwatch-alerts.json",
        "noc/mspwatch-noc.json",
        "noc/mspwatch-status.json",
        "patch/mspwatch-patch.json",
        "platform/mspwatch-self.json",
        "sla/mspwatch-sla.json",
    ]


def test_lint_doctests() -> None:
    result = doctest.testmod(dashlint)
    assert result.attempted == 5 and result.failed == 0


@pytest.mark.parametrize("path", sorted(DASHBOARDS))
def test_settings_panels_and_grid(path: str) -> None:
    d = DASHBOARDS[path]
    problems = (
        dashlint.check_settings(d, path)
        + dashlint.check_panels(d)
        + dashlint.check_grid(d, wall_screen=path == WALL_SCREEN)
    )
    for title, expr in dashlint.exprs(d):
        problems += [f"{title}: {p}" for p in dashlint.check_rate_interval(expr)]
        problems += [f"{title}: {p}" for p in dashlint.check_counters_under_rate(expr)]
    assert problems == []


@pytest.mark.parametrize(
    ("break_it", "problem"),
    [
        (lambda d: d.update(editable=True), "editable is not false"),
        (lambda d: d.update(uid="other"), "uid 'other' is not fixed to the file name"),
        (lambda d: d["templating"]["list"].pop(0), "no `datasource` variable of type prometheus"),
        (lambda d: d["panels"][0].update(description=""), "Critical alerts: no description"),
        (lambda d: d["panels"][0]["fieldConfig"]["defaults"].pop("unit"), "Critical alerts: no unit"),
        (
            lambda d: d["panels"][0]["datasource"].update(uid="prom"),
            "Critical alerts: panel datasource is not ${datasource}",
        ),
        (lambda d: d["panels"][0].update(targets=[]), "Critical alerts: no query"),
        (lambda d: d["panels"][1]["gridPos"].update(x=3), "Sites down overlaps Critical alerts"),
        (
            lambda d: d["panels"][3]["gridPos"].update(w=7),
            "Scrapes failing: outside the 24-column grid (18+7)",
        ),
        (
            lambda d: d["panels"][-1]["gridPos"].update(h=20),
            "wall screen is 32 grid units tall; 1080 px fit 27",
        ),
    ],
)
def test_each_rule_catches_a_broken_wall_screen(break_it: object, problem: str) -> None:
    d = copy.deepcopy(DASHBOARDS[WALL_SCREEN])
    break_it(d)  # type: ignore[operator]
    found = (
        dashlint.check_settings(d, WALL_SCREEN)
        + dashlint.check_panels(d)
        + dashlint.check_grid(d, wall_screen=True)
    )
    assert problem in found


def test_chained_variables_are_checked() -> None:
    d = copy.deepcopy(DASHBOARDS["network/mspwatch-snmp.json"])
    site = next(v for v in d["templating"]["list"] if v["name"] == "site")  # type: ignore[index,union-attr]
    site["query"] = "label_values(probe_success, site)"
    assert "variable site is not chained to $customer" in dashlint.check_settings(
        d, "network/mspwatch-snmp.json"
    )


def test_every_link_resolves_to_a_dashboard() -> None:
    uids = {str(d["uid"]) for d in DASHBOARDS.values()}
    for path, d in DASHBOARDS.items():
        assert dashlint.linked_uids(d) <= uids, path


def test_every_wall_screen_tile_links_to_its_detail() -> None:
    tiles = [p for p in dashlint.panels(DASHBOARDS[WALL_SCREEN]) if p["type"] == "stat"]
    assert len(tiles) == 8
    for tile in tiles:
        links = tile["fieldConfig"]["defaults"]["links"]  # type: ignore[index]
        assert len(links) == 1 and links[0]["url"].startswith("/d/mspwatch-"), tile["title"]
        steps = tile["fieldConfig"]["defaults"]["thresholds"]["steps"]  # type: ignore[index]
        assert steps == [{"color": "green", "value": None}, {"color": "red", "value": 1}], tile["title"]
        assert tile["options"]["colorMode"] == "background"  # type: ignore[index]


def test_every_metric_is_catalogued_or_recorded() -> None:
    known = _catalogue() | _recorded()
    for path, d in DASHBOARDS.items():
        for title, expr in dashlint.exprs(d):
            for name in dashlint.metric_names(expr):
                if name.startswith("~"):
                    assert any(re.fullmatch(name[1:], k) for k in known), f"{path} {title}: {name}"
                else:
                    assert name in known, f"{path} / {title}: {name} is in no catalogue or recording rule"


def test_the_catalogue_check_catches_an_unknown_metric() -> None:
    assert "snmp_interface_bogus" not in _catalogue() | _recorded()
    assert dashlint.metric_names('rate(snmp_interface_bogus{job="snmp"}[$__rate_interval])') == {
        "snmp_interface_bogus"
    }


def test_wall_screen_figures_are_recording_rules() -> None:
    recorded = _recorded()
    for title, expr in dashlint.exprs(DASHBOARDS[WALL_SCREEN]):
        assert expr in recorded, f"{title}: {expr} is not a recording rule"


def test_provisioning_points_at_the_json_folders() -> None:
    prov = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/mspwatch.yaml").read_text())
    (provider,) = prov["providers"]
    assert provider["options"]["foldersFromFilesStructure"] is True
    assert provider["allowUiUpdates"] is False
    ds = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/prometheus.yaml").read_text())
    assert [d["type"] for d in ds["datasources"]] == ["prometheus"]
    assert {Path(p).parent.name for p in DASHBOARDS} == {
        "noc", "network", "backup", "patch", "m365", "sla", "platform",
    }  # fmt: skip


def _alert_rules() -> list[dict[str, object]]:
    rules = []
    for path in sorted((ROOT / "alertrules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: str(r["alert"]))
def test_every_alert_links_the_dashboard_that_explains_it(rule: dict[str, object]) -> None:
    uids = {str(d["uid"]) for d in DASHBOARDS.values()}
    url = rule["annotations"]["dashboard_url"]  # type: ignore[index]
    match = re.fullmatch(r"/d/([a-z0-9-]+)", str(url))
    assert match and match.group(1) in uids, f"{rule['alert']}: {url}"
