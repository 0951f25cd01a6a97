"""Scale-out with real processes (tests/stack/scalekit.py): two hashmod Prometheus shards split
the demo estate's targets (compose/targets/*.json) with no overlap and no gap, both
remote-write to one VictoriaMetrics, and two Alertmanager peers turn one alert, sent by a
shard to both, into one notification.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mspwatch.common.procs import wait_until
from tests.conftest import require_tool
from tests.stack.scalekit import COMPOSE, CannedExporter, Stack, http_json, query, scale_stack

CANNED = "# TYPE scale_test_value gauge\nscale_test_value 1\n"
ALERT = {
    "groups": [
        {
            "name": "scale-test",
            "rules": [{"alert": "ScaleTestAlert", "expr": "vector(1)", "labels": {"severity": "warning"}}],
        }
    ]
}


@pytest.fixture(scope="module")
def exporter() -> Iterator[CannedExporter]:
    with CannedExporter(CANNED) as canned:
        yield canned


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, exporter: CannedExporter) -> Iterator[Stack]:
    for tool in ("prometheus", "prometheus-alertmanager", "victoria-metrics"):
        require_tool(tool)
    work = tmp_path_factory.mktemp("scale")
    targets = work / "targets"
    shutil.copytree(COMPOSE / "targets", targets)
    rules = work / "alert.yml"
    rules.write_text(yaml.safe_dump(ALERT))
    # The alert only on shard 0: one alert, sent to both peers.
    with scale_stack(work, targets_dir=targets, exporter=exporter, shard_rules={0: [str(rules)]}) as s:
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
    # 38 estate targets, 5 exporter jobs and 2 Alertmanagers, plus each shard's own job.
    wait_until("all targets", lambda: sum(len(active(u)) for u in stack.prometheus) >= 38 + 7 + 2, 30)
    per_shard = [
        {
            (t["labels"]["job"], t["labels"]["instance"])
            for t in active(u)
            if t["labels"]["job"] != "prometheus"
        }
        for u in stack.prometheus
    ]
    estate = expected_targets()
    assert len(estate) == 38
    assert per_shard[0] & per_shard[1] == set()
    # Every device and source of the estate, and every platform job, on exactly one shard.
    union = per_shard[0] | per_shard[1]
    assert {t for t in union if t[0] in {"snmp", "icmp", "backup", "m365", "patch"}} == estate
    assert {job for job, _ in union} == jobs - {"prometheus"}
    assert per_shard[0] and per_shard[1]
    # A device's ICMP and SNMP targets hash alike, so its rules see both on one shard.
    for shard in per_shard:
        icmp = {i for j, i in shard if j == "icmp"}
        assert icmp and icmp == {i.rsplit(":", 1)[0] for j, i in shard if j == "snmp"}


def test_victoriametrics_receives_every_series_from_both_shards(stack: Stack) -> None:
    total = len(expected_targets()) + 5 + 2  # file_sd targets, 5 exporter jobs, 2 alertmanagers

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


def test_two_alertmanager_peers_send_one_notification_for_one_alert(
    stack: Stack, exporter: CannedExporter
) -> None:
    for am in stack.alertmanagers:
        wait_until(
            f"{am} in a 2-peer cluster",
            lambda a=am: len(http_json(f"{a}/api/v2/status")["cluster"]["peers"]) == 2,
            30,
        )
    # Both peers hold the alert: the shard sent it to each.
    for am in stack.alertmanagers:
        wait_until(
            f"{am} holds the alert",
            lambda a=am: http_json(f"{a}/api/v2/alerts?filter=alertname%3D%22ScaleTestAlert%22"),
            60,
        )
    wait_until("a notification", lambda: exporter.notifications, 60)
    # Each peer checks the notification log before it sends (the second after waiting
    # peer-timeout, by which time the first peer's entry has been gossiped to it): once both
    # have checked, a duplicate would already have been counted.
    wait_until(
        "both peers' dedup check",
        lambda: all(metric(a, "alertmanager_nflog_queries_total") >= 1 for a in stack.alertmanagers),
        30,
    )
    time.sleep(1)  # the webhook POST of a duplicate follows its check within milliseconds
    assert (
        sum(metric(a, 'alertmanager_notifications_total{integration="webhook"}') for a in stack.alertmanagers)
        == 1
    )
    sent = [n for n in exporter.notifications if n["groupLabels"].get("alertname") == "ScaleTestAlert"]
    assert len(sent) == 1
    assert [a["labels"]["shard"] for a in sent[0]["alerts"]] == ["0"]
    # Both peers settled into one cluster (the dedup above relied on it).
    for am in stack.alertmanagers:
        assert http_json(f"{am}/api/v2/status")["cluster"]["status"] == "ready"
