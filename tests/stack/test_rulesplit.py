"""The rule split of the ``scale`` profile (``mspwatch.targets.rulesplit``): which groups the
Prometheus shards evaluate and which vmalert evaluates on VictoriaMetrics.

The committed compose/scale/rules/ is what the generator writes from alertrules/; every group
is on exactly one side; every rule on the shards passes the per-target test, which is itself
tested on expressions of each kind; the real tools accept both sides. That the split gives
the whole estate's answers is tested with real processes in test_scale.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mspwatch.targets import rulesplit
from mspwatch.targets.shards import SHARD_RULES
from tests.conftest import ROOT, assert_golden, require_tool
from tests.stack.test_compose import docker_compose

SPLIT = ROOT / "compose" / "scale" / "rules"
CONFIG = ROOT / "compose" / "prometheus.yml"


def groups(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, g) for p in sorted(paths) for g in yaml.safe_load(p.read_text())["groups"]]


def test_the_committed_split_is_what_the_generator_writes(update_goldens: bool) -> None:
    files = rulesplit.generate(ROOT / "alertrules", CONFIG)
    committed = {f"{p.parent.name}/{p.name}" for p in SPLIT.glob("*/*.yml")}
    assert committed == set(files), (
        "run: python -m mspwatch.targets.rulesplit --rules=alertrules --config=compose/prometheus.yml"
        " --out=compose/scale/rules"
    )
    for rel, text in files.items():
        assert_golden(SPLIT / rel, text, update_goldens)


def test_every_group_of_every_rule_file_is_on_exactly_one_side() -> None:
    source = groups(list((ROOT / "alertrules").glob("*.yml")))
    split = groups(list(SPLIT.glob("*/*.yml")))
    key = lambda fg: (fg[0], fg[1]["name"], json.dumps(fg[1], sort_keys=True))  # noqa: E731
    assert sorted(map(key, split)) == sorted(map(key, source))
    assert groups(list((SPLIT / "shard").glob("*.yml"))) and groups(list((SPLIT / "estate").glob("*.yml")))


def test_every_rule_on_the_shards_keeps_the_targets_apart() -> None:
    """The line itself: a shard rule aggregates and joins only by labels that name a target,
    and reads nothing vmalert records."""
    estate_series = {
        r["record"]
        for _, g in groups(list((SPLIT / "estate").glob("*.yml")))
        for r in g["rules"]
        if "record" in r
    }
    static = rulesplit.static_jobs(yaml.safe_load(CONFIG.read_text()))
    for name, group in groups(list((SPLIT / "shard").glob("*.yml"))):
        for rule in group["rules"]:
            what = f"{name} {group['name']} {rule.get('alert') or rule.get('record')}"
            assert rulesplit.why_not_local(rule["expr"], static) == [], what
            assert not rulesplit.series_read(rule["expr"]) & estate_series, what


def test_the_fleet_and_slo_figures_run_in_vmalert() -> None:
    estate = {g["name"] for _, g in groups(list((SPLIT / "estate").glob("*.yml")))}
    shard = {g["name"] for _, g in groups(list((SPLIT / "shard").glob("*.yml")))}
    assert {"mspwatch-fleet", "mspwatch-slo", "mspwatch-slo-targets", "patch-fleet"} <= estate
    assert {"snmp-devices", "snmp-interfaces", "backup-jobs", "m365-tenants", "mspwatch-platform"} <= shard


@pytest.mark.parametrize(
    ("expr", "reasons"),
    [
        # one target at a time
        ('snmp_up{job="snmp"} == 0', []),
        ("rate(snmp_interface_in_errors_total[5m]) > 1", []),
        ("max by (customer, site, device, role) (probe_success)", []),
        ("max by (job, instance, source_kind) (backup_up)", []),
        ("sum without (le) (x_bucket)", []),
        ("a and on (instance, if_index) b", []),
        ("a unless on (customer, site, device) b", []),
        ("a * on (job, instance) group_left (os) b", []),
        ("a or b", []),
        ("a * ignoring (reason) b", []),
        ("vector(1)", []),
        ('label_replace(a, "device", "$1", "instance", "(.*)")', []),
        ('inventory_maintenance_active{job="inventory"} == 1', []),
        # across targets
        ("max by (customer, site) (probe_success)", ["`max by (customer, site)` merges targets"]),
        ("count(up == 0)", ["`count` without `by` merges targets"]),
        ("sum without (instance) (a)", ["`sum without (instance)` merges targets"]),
        ("a > on (customer) b", ["`> on (customer)` joins targets"]),
        ("a / ignoring (instance) b", ["`/ ignoring (instance)` joins targets"]),
        ('absent(up{job="snmp"})', ["`absent()` on one shard does not see the others"]),
        ("a > scalar(b)", ["`scalar()` of a vector merges targets"]),
        (
            'a unless on (customer, site, device) inventory_device_info{job="inventory"}',
            ["`unless` joins series of job inventory (one target, on one shard)"],
        ),
        (
            'label_replace(a, "instance", "x", "", "")',
            ["`label_replace()` rewrites the target label instance"],
        ),
        (
            'count(ALERTS{alertstate="firing"}) or vector(0)',
            [
                "`count` without `by` merges targets",
                "reads ALERTS (vmalert's alerts are not on the shards)",
            ],
        ),
    ],
)
def test_the_per_target_test(expr: str, reasons: list[str]) -> None:
    assert rulesplit.why_not_local(expr, frozenset({"inventory"})) == reasons


def test_the_fixed_target_jobs_come_from_the_canonical_config() -> None:
    jobs = rulesplit.static_jobs(yaml.safe_load(CONFIG.read_text()))
    assert {"snmp-exporter", "alertmanager"} <= jobs
    assert not jobs & {"snmp", "icmp", "backup", "m365", "patch", "prometheus"}


def test_a_group_follows_the_series_it_reads_and_constants_are_recorded_once() -> None:
    files = {
        "a.yml": {
            "groups": [
                {"name": "per-device", "rules": [{"alert": "A", "expr": "fleet:x:count > 1"}]},
                {"name": "fleet", "rules": [{"record": "fleet:x:count", "expr": "count(up)"}]},
                {"name": "targets", "rules": [{"record": "c:t:ratio", "expr": "vector(0.99)"}]},
                {"name": "local", "rules": [{"alert": "B", "expr": "up == 0"}]},
            ]
        }
    }
    placed = {p.group["name"]: p for p in rulesplit.split(files)}
    assert {n for n, p in placed.items() if p.estate} == {"per-device", "fleet", "targets"}
    assert placed["per-device"].reasons == ["A: reads fleet:x:count, recorded in vmalert"]
    assert placed["targets"].reasons == ["c:t:ratio: a constant, recorded once rather than once per shard"]


def test_promtool_accepts_the_shard_rules_and_vmalert_the_estate_rules() -> None:
    promtool = require_tool("promtool")
    shard = sorted(str(p) for p in (SPLIT / "shard").glob("*.yml"))
    proc = subprocess.run([promtool, "check", "rules", *shard], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    vmalert = require_tool("vmalert")
    # -dryRun parses every expression and template, then exits (255 on any error).
    proc = subprocess.run(
        [vmalert, "-dryRun", f"-rule={SPLIT / 'estate'}/*.yml"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_mounts_the_split_where_the_shards_and_vmalert_read_it() -> None:
    proc = docker_compose("config", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    rules_dir = str(Path(SHARD_RULES).parent)
    for name in ("prometheus", "prometheus-shard-1"):
        mounts = {v["target"]: v["source"] for v in services[name]["volumes"]}
        assert mounts[rules_dir] == str(SPLIT / "shard"), name
    for i in range(2):
        cfg = yaml.safe_load((ROOT / "compose" / "scale" / f"prometheus-shard-{i}.yml").read_text())
        assert cfg["rule_files"] == [SHARD_RULES]
    vmalert = services["vmalert"]
    assert vmalert["profiles"] == ["scale"]
    mounts = {v["target"]: v["source"] for v in vmalert["volumes"]}
    flags = dict(a.lstrip("-").split("=", 1) for a in vmalert["command"])
    assert mounts[str(Path(flags["rule"]).parent)] == str(SPLIT / "estate")
    notifiers = [a.split("=", 1)[1] for a in vmalert["command"] if a.startswith("-notifier.url=")]
    assert notifiers == ["http://alertmanager:9093", "http://alertmanager-2:9093"]
    assert flags["datasource.url"] == flags["remoteWrite.url"] == "http://victoriametrics:8428"
