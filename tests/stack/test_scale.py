"""Scale-out with real processes (tests/stack/scalekit.py): two hashmod Prometheus shards split
the demo estate's targets (compose/targets/*.json) with no overlap and no gap, both
remote-write to one VictoriaMetrics, and two Alertmanager peers turn one alert, sent by a
shard (or by vmalert) to both, into one notification. The shards run the per-target rule groups and vmalert
the estate-wide ones (compose/scale/rules/, ``mspwatch.targets.rulesplit``); every series
vmalert records, and the monthly report's figures read from VictoriaMetrics, equal those of
one plain Prometheus given the same targets and every rule file.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser as pp
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from mspwatch.common.procs import wait_until
from mspwatch.exporters.inventory.mapping import families
from mspwatch.exporters.inventory.state import inventory_state
from mspwatch.inventory import load_inventory
from mspwatch.reports import availability as av
from mspwatch.reports import frames
from mspwatch.reports.contract import Month
from mspwatch.reports.query import Prometheus
from mspwatch.targets import rulesplit
from mspwatch.targets.shards import ALERTMANAGERS, SCALE_TARGETS, SELF_JOBS
from tests.conftest import ROOT, require_tool
from tests.stack.scalekit import (
    COMPOSE,
    CannedExporter,
    Stack,
    http_json,
    query,
    scale_stack,
    with_interval,
)

SPLIT = COMPOSE / "scale" / "rules"
# Devices that answer neither ping nor SNMP: a whole site of acme-dental (branch-york) and one
# firewall of bolt-logistics, on both shards, so no shard alone has the estate's count.
DOWN = {"127.0.10.6", "127.0.10.7", "127.0.20.3"}


ESTATE_INVENTORY = load_inventory(ROOT / "simulators" / "estate" / "inventory.yml")
# The inventory exporter's answer at a fixed Tuesday noon: no maintenance window open, every
# contract measuring, whenever the test runs.
INVENTORY_AT = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def inventory_text() -> str:
    """The real inventory exporter's series for the estate (exporters/inventory)."""

    class Collector:
        def collect(self) -> list[Metric]:
            return families(inventory_state(ESTATE_INVENTORY, INVENTORY_AT))

    registry = CollectorRegistry()
    registry.register(Collector())  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def canned(path: str, target: str) -> str:
    """What every exporter answers for ``target``: reachable unless its host is in DOWN; the
    inventory exporter's path answers with the estate's inventory series."""
    if path == "/inventory":
        return inventory_text()
    up = 0 if target.rsplit(":", 1)[0] in DOWN else 1
    return (
        "# TYPE scale_test_value gauge\nscale_test_value 1\n"
        f"# TYPE probe_success gauge\nprobe_success {up}\n# TYPE snmp_up gauge\nsnmp_up {up}\n"
    )


ALERT = {
    "groups": [
        {
            "name": "scale-test",
            "rules": [{"alert": "ScaleTestAlert", "expr": "vector(1)", "labels": {"severity": "warning"}}],
        }
    ]
}


# vmalert's: true only on the whole estate (each shard alone counts 1 or 2 of the 3).
ESTATE_ALERT = {
    "groups": [
        {
            "name": "scale-test-estate",
            "rules": [
                {
                    "alert": "ScaleTestEstateAlert",
                    "expr": 'count(probe_success{job="icmp"} == 0) == 3',
                    "labels": {"severity": "warning"},
                }
            ],
        }
    ]
}
# Scrape interval and timeout: three Prometheus servers scrape one Python exporter, on a
# shared 2-core machine; a scrape timing out makes the compared figures differ for a while.
INTERVAL = "5s"


@pytest.fixture(scope="module")
def exporter() -> Iterator[CannedExporter]:
    with CannedExporter(canned) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, exporter: CannedExporter) -> Iterator[Stack]:
    for tool in ("prometheus", "prometheus-alertmanager", "victoria-metrics", "vmalert"):
        require_tool(tool)
    work = tmp_path_factory.mktemp("scale")
    targets = work / "targets"
    shutil.copytree(COMPOSE / "targets", targets)
    alert = work / "alert.yml"
    alert.write_text(yaml.safe_dump(ALERT))
    estate_alert = work / "estate-alert.yml"
    estate_alert.write_text(yaml.safe_dump(ESTATE_ALERT))
    # The committed split, at the test's pace; the reference Prometheus runs every rule file.
    shard = with_interval(sorted((SPLIT / "shard").glob("*.yml")), work / "shard-rules", INTERVAL)
    estate = with_interval(sorted((SPLIT / "estate").glob("*.yml")), work / "estate-rules", INTERVAL)
    whole = with_interval(sorted((ROOT / "alertrules").glob("*.yml")), work / "all-rules", INTERVAL)
    # The test alert only on shard 0: one alert, sent to both peers.
    with scale_stack(
        work,
        targets_dir=targets,
        exporter=exporter,
        shard_rules={0: [*shard, str(alert)], 1: shard},
        estate_rules=[*estate, str(estate_alert)],
        reference_rules=[*whole, str(alert)],
        interval=INTERVAL,
    ) as s:
        yield s


def expected_targets() -> set[tuple[str, str]]:
    """(job, instance) of every file_sd target of the estate."""
    cfg = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    out = set()
    for job in cfg["scrape_configs"]:
        for sd in job.get("file_sd_configs", []):
            for f in sd["files"]:
                for group in json.loads((COMPOSE / "targets" / Path(f).name).read_text()):
                    out |= {(job["job_name"], t) for t in group["targets"]}
    return out


def platform_targets() -> int:
    """Fixed targets of every shard-split job: each exporter's own, both Alertmanager peers,
    and the scale profile's engines (VictoriaMetrics, vmalert)."""
    cfg = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    n = len(SCALE_TARGETS)
    for job in cfg["scrape_configs"]:
        if job["job_name"] in SELF_JOBS:
            continue
        if job["job_name"] == "alertmanager":
            n += len(ALERTMANAGERS)  # shard_config lists every peer
            continue
        n += sum(len(sc["targets"]) for sc in job.get("static_configs", []))
    return n


def active(url: str) -> list[dict[str, Any]]:
    return list(http_json(f"{url}/api/v1/targets?state=active")["data"]["activeTargets"])


def metric(url: str, series: str) -> float:
    """One sample of a server's own /metrics, by its exact series text."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:  # noqa: S310 (loopback)
        for line in resp.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
    raise KeyError(series)


def test_the_shards_split_every_target_with_no_overlap_and_no_gap(stack: Stack) -> None:
    jobs = {j["job_name"] for j in yaml.safe_load((COMPOSE / "prometheus.yml").read_text())["scrape_configs"]}
    per_shard = []
    for url in stack.prometheus:
        # Discovery is asynchronous: wait until the shard has applied its file_sd files.
        targets = wait_until(
            f"{url} targets", lambda u=url: [t for t in active(u) if t["labels"]["job"] != "prometheus"], 30
        )
        per_shard.append({(t["labels"]["job"], t["labels"]["instance"]) for t in targets})
    # The estate's targets, the platform's (each exporter, 2 Alertmanagers), each shard's own.
    want = len(expected_targets()) + platform_targets() + 2
    wait_until("all targets", lambda: sum(len(active(u)) for u in stack.prometheus) >= want, 30)
    per_shard = [
        {
            (t["labels"]["job"], t["labels"]["instance"])
            for t in active(u)
            if t["labels"]["job"] != "prometheus"
        }
        for u in stack.prometheus
    ]
    estate = expected_targets()
    assert len(estate) == 39  # 15 devices x (icmp, snmp), 4 backup, 2 m365, 3 patch sources
    assert per_shard[0] & per_shard[1] == set()
    # Every device and source of the estate, and every platform job, on exactly one shard.
    union = per_shard[0] | per_shard[1]
    assert {t for t in union if t[0] in {"snmp", "icmp", "backup", "m365", "patch"}} == estate
    assert {job for job, _ in union} == (jobs | set(SCALE_TARGETS)) - {"prometheus"}
    assert per_shard[0] and per_shard[1]
    # A device's ICMP and SNMP targets hash alike, so its rules see both on one shard.
    for shard in per_shard:
        icmp = {i for j, i in shard if j == "icmp"}
        assert icmp and icmp == {i.rsplit(":", 1)[0] for j, i in shard if j == "snmp"}


def test_victoriametrics_receives_every_series_from_both_shards(stack: Stack) -> None:
    total = len(expected_targets()) + platform_targets()

    def counts() -> dict[str, int] | None:
        got = {r["metric"]["shard"]: int(r["value"][1]) for r in query(stack.vm, "count by (shard) (up)")}
        selfs = {r["metric"]["shard"] for r in query(stack.vm, 'up{job="prometheus"}')}
        ours = sum(got.values()) - len(selfs)
        return got if ours == total and selfs == {"0", "1"} else None

    got = wait_until("every shard's series in VictoriaMetrics", counts, 60)
    assert set(got) == {"0", "1"}
    # The canned exporter's own series arrived through remote write, labelled by target.
    values = query(stack.vm, 'count(scale_test_value{job="snmp"})')
    assert int(values[0]["value"][1]) == 15


def test_the_shards_watch_victoriametrics_and_vmalert(stack: Stack) -> None:
    """The scale profile's engines are scraped (one shard each) and alertrules/scale.yml runs
    on the shards, every alert reading series the real engines expose."""

    def both_up() -> list[dict[str, Any]] | None:
        got = query(stack.vm, 'up{job=~"victoriametrics|vmalert"} == 1')
        return got if len(got) == 2 else None

    ups = wait_until("VictoriaMetrics and vmalert scraped up", both_up, 90)
    assert {r["metric"]["job"] for r in ups} == set(SCALE_TARGETS)
    # One series each: one shard scrapes each engine (hashmod, as every other target).
    counts = query(stack.vm, 'count by (job) (up{job=~"victoriametrics|vmalert"})')
    assert {r["metric"]["job"]: r["value"][1] for r in counts} == {"victoriametrics": "1", "vmalert": "1"}
    rules = yaml.safe_load((ROOT / "alertrules" / "scale.yml").read_text())["groups"][0]["rules"]
    for rule in rules:
        names = sorted(rulesplit.series_read(str(rule["expr"])))

        def found(names: list[str] = names) -> list[str] | None:
            return [n for n in names if query(stack.vm, f"count({n})")] or None

        # Alternatives joined by `or` (vmalert's two versions' names): at least one exists.
        # Waited for: `up` and the scraped series reach VictoriaMetrics in separate
        # remote-write batches (one per queue shard, each flushed on its own deadline).
        wait_until(f"{rule['alert']}: one of {names} in what the shards scraped", found, 60, interval=1)
    for url in stack.prometheus:
        groups = http_json(f"{url}/api/v1/rules")["data"]["groups"]
        [group] = [g for g in groups if g["name"] == "mspwatch-scale"]
        assert sorted(r["name"] for r in group["rules"]) == sorted(str(r["alert"]) for r in rules)
        assert {r["health"] for r in group["rules"]} <= {"ok", "unknown"}, group["rules"]


def test_two_alertmanager_peers_send_one_notification_for_one_alert(
    stack: Stack, exporter: CannedExporter
) -> None:
    """A shard's alert and vmalert's, each sent to both peers, each notified once."""
    for am in stack.alertmanagers:
        wait_until(
            f"{am} in a 2-peer cluster",
            lambda a=am: len(http_json(f"{a}/api/v2/status")["cluster"]["peers"]) == 2,
            30,
        )
    names = ("ScaleTestAlert", "ScaleTestEstateAlert")
    # Both peers hold both alerts: the shard and vmalert sent each to both.
    for am in stack.alertmanagers:
        for name in names:
            wait_until(
                f"{am} holds {name}",
                lambda a=am, n=name: http_json(f"{a}/api/v2/alerts?filter=alertname%3D%22{n}%22"),
                60,
            )

    def sent(name: str) -> list[dict[str, Any]]:
        return [n for n in exporter.notifications if n["groupLabels"].get("alertname") == name]

    for name in names:
        wait_until(f"a notification of {name}", lambda n=name: sent(n), 60)
    # Each peer checks the notification log before it sends (the second after waiting
    # peer-timeout, by which time the first peer's entry has been gossiped to it): once both
    # have checked for both groups, a duplicate would already have been counted.
    wait_until(
        "both peers' dedup checks",
        lambda: all(metric(a, "alertmanager_nflog_queries_total") >= 2 for a in stack.alertmanagers),
        30,
    )
    time.sleep(1)  # the webhook POST of a duplicate follows its check within milliseconds
    assert (
        sum(metric(a, 'alertmanager_notifications_total{integration="webhook"}') for a in stack.alertmanagers)
        == 2
    )
    assert [len(sent(n)) for n in names] == [1, 1]
    assert [a["labels"]["shard"] for a in sent("ScaleTestAlert")[0]["alerts"]] == ["0"]
    # vmalert's alert says no shard: it is the estate's.
    assert [a["labels"].get("shard") for a in sent("ScaleTestEstateAlert")[0]["alerts"]] == [None]
    # Both peers settled into one cluster (the dedup above relied on it).
    for am in stack.alertmanagers:
        assert http_json(f"{am}/api/v2/status")["cluster"]["status"] == "ready"


def matrix_selectors(expr: str) -> list[pp.MatrixSelector]:
    found: list[pp.MatrixSelector] = []
    pp.walk(pp.parse(expr), lambda n: found.append(n) if isinstance(n, pp.MatrixSelector) else None)
    return found


def estate_records() -> tuple[list[str], list[str]]:
    """Every series name a vmalert group records, as (compared by value, compared by label
    set only). Not at all: those counting alerts (an alert fires after its ``for:``, counted
    from its first evaluation, which vmalert reaches later, its inputs being rules of its own).
    By label set only: averages over 5 minutes or more of a series vmalert records (the SLO
    burn windows), as vmalert's chained rules read their inputs back from VictoriaMetrics:
    the first evaluation after vmalert starts finds none, and that point stays in the window
    (docs/scale-out.md)."""
    rules = [
        r
        for path in (SPLIT / "estate").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for r in group["rules"]
        if "record" in r
    ]
    recorded = {r["record"] for r in rules}
    by_value, by_labels = set(), set()
    alerts = {r["record"] for r in rules if "ALERTS" in rulesplit.series_read(r["expr"])}
    for rule in rules:
        long = [
            w
            for w in matrix_selectors(rule["expr"])
            if w.vector_selector.name in recorded and w.range.total_seconds() >= 300
        ]
        (by_labels if long else by_value).add(rule["record"])
    return sorted(by_value - alerts - by_labels), sorted(by_labels - alerts)


def record_values(base: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every series of ``name`` (labels without ``shard``) and its current value."""
    out = {}
    for r in query(base, name):
        labels = tuple(sorted((k, v) for k, v in r["metric"].items() if k not in ("shard", "__name__")))
        out[labels] = float(r["value"][1])
    return out


def test_vmalert_records_what_a_single_prometheus_records(stack: Stack) -> None:
    assert stack.reference is not None and stack.vmalert is not None
    names, windowed = estate_records()
    assert {"fleet:devices_down:count", "customer_site:reachable:max", "customer:availability:ratio"} <= set(
        names
    )
    assert "customer:slo_errors:ratio_rate1h" in windowed

    def equal(a: dict[Any, float], b: dict[Any, float]) -> bool:
        # VictoriaMetrics answers with 12 significant digits.
        return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9) for k in a)

    def same() -> bool:
        ref = stack.reference or ""
        return all(equal(record_values(stack.vm, n), record_values(ref, n)) for n in names) and all(
            record_values(stack.vm, n).keys() == record_values(ref, n).keys() for n in windowed
        )

    try:
        wait_until("every estate record equal in VictoriaMetrics and the reference", same, 120)
    except TimeoutError:
        diff = {n: (record_values(stack.vm, n), record_values(stack.reference, n)) for n in names}
        pytest.fail(f"differ: { {n: d for n, d in diff.items() if not equal(*d)} }")
    assert record_values(stack.vm, "fleet:devices_down:count") == {(): 3.0}
    site = (("customer", "acme-dental"), ("site", "branch-york"))
    assert record_values(stack.vm, "customer_site:reachable:max")[site] == 0.0
    assert record_values(stack.vm, "fleet:sites_down:count") == {(): 1.0}
    # The SLO's device-minutes of this minute: the inventory exporter's devices (on one
    # shard) joined with every shard's reachability.
    acme, bolt = (("customer", "acme-dental"),), (("customer", "bolt-logistics"),)
    assert record_values(stack.vm, "customer:availability_counted_devices:sum") == {acme: 7.0, bolt: 8.0}
    assert record_values(stack.vm, "customer:availability_up_devices:sum") == {acme: 5.0, bolt: 7.0}
    # The same count on one shard is only that shard's part: why vmalert runs it.
    parts = [int(query(p, 'count(probe_success{job="icmp"} == 0)')[0]["value"][1]) for p in stack.prometheus]
    assert sum(parts) == 3 and all(0 < n < 3 for n in parts), parts


def test_the_report_from_victoriametrics_equals_the_report_from_one_prometheus(stack: Stack) -> None:
    """The report's availability pipeline (frames -> per-minute states -> figures) for one
    customer over a few whole minutes that both servers have fully scraped."""
    assert stack.reference is not None
    inventory = load_inventory(ROOT / "simulators" / "estate" / "inventory.yml")
    customer = next(c for c in inventory.customers if c.name == "bolt-logistics")
    # Two minutes (on the report's grid, which starts where the window does) that begin once
    # both have scraped every target, a few intervals after the stack started.
    start = math.ceil(stack.started + 15)
    end = start + 2 * 60
    wait_until("the window to pass", lambda: time.time() > end + 5, end - time.time() + 30)
    month = Month("2026-12", customer.timezone, start, end)

    def figures(url: str) -> dict[str, Any]:
        with Prometheus(url) as prom:
            batch = frames.Batch(prom, month, [customer.name])
            devices = batch.discover_devices(customer.name)
            states = batch.device_states(customer.name, devices)
        contract = av.contract_mask(month, customer)
        occs = av.occurrences(customer, month)
        return {
            "devices": devices,
            "states": {k: v.tolist() for k, v in states.items()},
            "figures": {
                f"{d.site}/{d.device}": av.figures(
                    states[(d.site, d.device)], contract, av.maintenance_mask(month, occs, d.site), 0
                )
                for d in devices
            },
        }

    sharded, single = figures(stack.vm), figures(stack.reference)
    assert sharded == single
    assert len(sharded["devices"]) == 8
    # Exact: the down firewall is down every minute, every other device up every minute.
    for (site, device), minutes in sharded["states"].items():
        expected = av.DOWN if (site, device) == ("depot", "fw1") else av.UP
        assert minutes == [expected] * 2, (site, device)
