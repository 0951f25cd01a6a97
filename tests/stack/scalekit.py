"""The scale-out stack on loopback, real processes: two hashmod Prometheus shards (configs
from ``mspwatch.targets.shards`` applied to the canonical ``compose/prometheus.yml``), both
remote-writing to VictoriaMetrics and alerting to a two-peer Alertmanager gossip cluster;
optionally vmalert evaluating the estate-wide rules on VictoriaMetrics (the shards scrape it
and VictoriaMetrics, as the scale profile's do), and one plain
Prometheus scraping the same targets (the reference a sharded answer must equal).

Used by tests/stack/test_scale.py (small, fast) and benchmarks/scale_bench.py (a synthetic
estate of thousands of devices, to measure ingest rate and memory). Every exporter address
is replaced by one canned exporter (a thread serving a fixed /metrics text), so what is
measured is Prometheus, VictoriaMetrics and Alertmanager, not our exporters.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from mspwatch.common.procs import Processes, free_port, wait_for_port, wait_until
from mspwatch.targets.shards import shard_config
from tests.conftest import ROOT

COMPOSE = ROOT / "compose"
SHARDS = 2


class CannedExporter:
    """Answers every GET with ``text`` (any path), or with ``text(path, target)`` for the
    request's path and ``?target=`` ("" when there is none); records webhook POSTs."""

    def __init__(self, text: str | Callable[[str, str], str]) -> None:
        self.text = text
        self.notifications: list[dict[str, Any]] = []
        kit = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                target = urllib.parse.parse_qs(url.query).get("target", [""])[0]
                body = (kit.text if isinstance(kit.text, str) else kit.text(url.path, target)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                kit.notifications.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CannedExporter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def loopback_base(targets_dir: Path, exporter: str, rules: list[str], interval: str) -> dict[str, Any]:
    """compose/prometheus.yml with loopback addresses, local paths and a short interval."""
    cfg: dict[str, Any] = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    cfg["global"].update(scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval)
    cfg["rule_files"] = rules
    for job in cfg["scrape_configs"]:
        job.pop("scrape_interval", None)
        job.pop("scrape_timeout", None)
        for sd in job.get("file_sd_configs", []):
            sd["files"] = [str(targets_dir / Path(f).name) for f in sd["files"]]
        for step in job.get("relabel_configs", []):
            if step.get("target_label") == "__address__":
                step["replacement"] = exporter
        for static in job.get("static_configs", []):
            static["targets"] = [exporter for _ in static["targets"]]
    return cfg


def http_json(url: str, data: bytes | None = None) -> Any:
    with urllib.request.urlopen(url, data=data, timeout=10) as resp:  # noqa: S310 (loopback)
        return json.loads(resp.read())


def query(base: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    answer = http_json(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    return list(answer["data"]["result"])


def with_interval(rule_files: list[Path], out: Path, interval: str) -> list[str]:
    """Copies of rule files with every group's own ``interval`` set to ``interval`` (as the
    stack's scrape and evaluation intervals are shortened); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for src in rule_files:
        doc = yaml.safe_load(src.read_text())
        for group in doc.get("groups") or []:
            if "interval" in group:
                group["interval"] = interval
        dst = out / src.name
        dst.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths.append(str(dst))
    return paths


@dataclass
class Stack:
    vm: str
    prometheus: list[str]
    alertmanagers: list[str]
    vmalert: str | None = None
    reference: str | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Unix time when every server of the stack was listening.
    started: float = 0.0


def _all_scraped(stack: Stack) -> bool:
    """Every active target of every Prometheus scraped at least once, and VictoriaMetrics
    holding an ``up`` of each shard's targets."""
    servers = [*stack.prometheus, *([stack.reference] if stack.reference else [])]
    shard_targets = 0
    for i, url in enumerate(servers):
        targets = http_json(f"{url}/api/v1/targets?state=active")["data"]["activeTargets"]
        if not targets or any(t["health"] == "unknown" for t in targets):
            return False
        if i < len(stack.prometheus):
            shard_targets += len(targets)
    got = query(stack.vm, "count(up)")
    return bool(got) and int(got[0]["value"][1]) == shard_targets


@contextlib.contextmanager
def scale_stack(
    work: Path,
    *,
    targets_dir: Path,
    exporter: CannedExporter,
    shard_rules: dict[int, list[str]],
    estate_rules: list[str] | None = None,
    reference_rules: list[str] | None = None,
    interval: str = "2s",
    group_wait: str = "1s",
    peer_timeout: str = "2s",
) -> Iterator[Stack]:
    """Start VictoriaMetrics, two Alertmanager peers and two Prometheus shards; with
    ``estate_rules`` vmalert on them, with ``reference_rules`` one unsharded Prometheus
    (no remote write, no alerting) on the same targets, both evaluating from the moment every
    target has been scraped once. Stop them all by PID."""
    procs = Processes(work, cwd=work)
    try:
        vm_port = free_port()
        procs.start(
            "victoriametrics",
            [
                shutil.which("victoria-metrics") or "victoria-metrics",
                f"-storageDataPath={work / 'vm-data'}",
                f"-httpListenAddr=127.0.0.1:{vm_port}",
                "-search.latencyOffset=0s",
                "-selfScrapeInterval=0",
                "-retentionPeriod=1d",
            ],
        )
        am_web = [free_port() for _ in range(2)]
        am_cluster = [free_port() for _ in range(2)]
        am_cfg = work / "alertmanager.yml"
        am_cfg.write_text(
            yaml.safe_dump(
                {
                    # Only the tests' own alerts reach the webhook: the real rule files the
                    # stack may run alert on the canned data too.
                    "route": {
                        "receiver": "none",
                        "group_by": ["alertname"],
                        "group_wait": group_wait,
                        "group_interval": "10m",
                        "repeat_interval": "1h",
                        "routes": [{"receiver": "webhook", "matchers": ['alertname=~"ScaleTest.*"']}],
                    },
                    "receivers": [
                        {"name": "none"},
                        {
                            "name": "webhook",
                            "webhook_configs": [{"url": f"http://{exporter.address}/webhook"}],
                        },
                    ],
                }
            )
        )
        for i in range(2):
            procs.start(
                f"alertmanager-{i}",
                [
                    shutil.which("prometheus-alertmanager") or "prometheus-alertmanager",
                    f"--config.file={am_cfg}",
                    f"--storage.path={work / f'am-{i}'}",
                    f"--web.listen-address=127.0.0.1:{am_web[i]}",
                    f"--cluster.listen-address=127.0.0.1:{am_cluster[i]}",
                    f"--cluster.peer=127.0.0.1:{am_cluster[1 - i]}",
                    f"--cluster.peer-timeout={peer_timeout}",
                    "--cluster.settle-timeout=5s",
                    "--cluster.gossip-interval=100ms",
                ],
            )
        for i, port in enumerate([vm_port, *am_web]):
            name = "victoriametrics" if i == 0 else f"alertmanager-{i - 1}"
            wait_for_port(port, timeout=60, proc=procs.procs[name], log=procs.log(name))
        prom_ports = [free_port() for _ in range(SHARDS)]
        # Chosen now: the shards scrape vmalert (alertrules/scale.yml), which starts last.
        vmalert_port = free_port()
        engines = {"victoriametrics": f"127.0.0.1:{vm_port}", "vmalert": f"127.0.0.1:{vmalert_port}"}
        for i in range(SHARDS):
            base = loopback_base(targets_dir, exporter.address, shard_rules.get(i, []), interval)
            cfg = shard_config(
                base,
                i,
                SHARDS,
                remote_write_url=f"http://127.0.0.1:{vm_port}/api/v1/write",
                alertmanagers=[f"127.0.0.1:{p}" for p in am_web],
                rule_files=shard_rules.get(i, []),
                scale_targets=engines,
            )
            # Ship small batches quickly so what VictoriaMetrics holds follows the scrapes.
            cfg["remote_write"][0]["queue_config"] = {"batch_send_deadline": "1s"}
            # Each shard scrapes itself at its own port, not the canned exporter.
            for job in cfg["scrape_configs"]:
                if job["job_name"] == "prometheus":
                    job["static_configs"] = [{"targets": [f"127.0.0.1:{prom_ports[i]}"]}]
            path = work / f"prometheus-shard-{i}.yml"
            path.write_text(yaml.safe_dump(cfg, sort_keys=False))
            procs.start(
                f"prometheus-{i}",
                [
                    shutil.which("prometheus") or "prometheus",
                    f"--config.file={path}",
                    f"--storage.tsdb.path={work / f'prom-{i}'}",
                    f"--web.listen-address=127.0.0.1:{prom_ports[i]}",
                    "--rules.alert.resend-delay=1s",
                ],
            )
        stack = Stack(
            vm=f"http://127.0.0.1:{vm_port}",
            prometheus=[f"http://127.0.0.1:{p}" for p in prom_ports],
            alertmanagers=[f"http://127.0.0.1:{p}" for p in am_web],
            procs=procs.procs,
        )
        for i, port in enumerate(prom_ports):
            wait_for_port(
                port, timeout=60, proc=procs.procs[f"prometheus-{i}"], log=procs.log(f"prometheus-{i}")
            )
        reference_cfg: dict[str, Any] = {}
        if reference_rules is not None:
            port = free_port()
            reference_cfg = loopback_base(targets_dir, exporter.address, [], interval)
            reference_cfg.pop("alerting", None)
            for job in reference_cfg["scrape_configs"]:
                if job["job_name"] == "prometheus":
                    job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
            path = work / "prometheus-reference.yml"
            path.write_text(yaml.safe_dump(reference_cfg, sort_keys=False))
            procs.start(
                "prometheus-reference",
                [
                    shutil.which("prometheus") or "prometheus",
                    f"--config.file={path}",
                    f"--storage.tsdb.path={work / 'prom-reference'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--web.enable-lifecycle",
                ],
            )
            stack.reference = f"http://127.0.0.1:{port}"
            wait_for_port(
                port,
                timeout=60,
                proc=procs.procs["prometheus-reference"],
                log=procs.log("prometheus-reference"),
            )
        if estate_rules is not None or reference_rules is not None:
            # Rules that compare start on complete data: a first evaluation over a part of the
            # targets would stay in every *_over_time window after it (the SLO burn rates).
            wait_until("every target scraped once, everywhere", lambda: _all_scraped(stack), 120)
        if reference_rules is not None:
            reference_cfg["rule_files"] = reference_rules
            (work / "prometheus-reference.yml").write_text(yaml.safe_dump(reference_cfg, sort_keys=False))
            reload = urllib.request.Request(f"{stack.reference}/-/reload", method="POST")  # noqa: S310
            with urllib.request.urlopen(reload, timeout=30):  # noqa: S310 (loopback)
                pass
        if estate_rules is not None:
            port = vmalert_port
            # As compose/compose.yaml's vmalert service, on loopback and at the test's pace.
            procs.start(
                "vmalert",
                [
                    shutil.which("vmalert") or "vmalert",
                    f"-datasource.url={stack.vm}",
                    f"-remoteWrite.url={stack.vm}",
                    f"-remoteRead.url={stack.vm}",
                    *(f"-notifier.url={a}" for a in stack.alertmanagers),
                    *(f"-rule={r}" for r in estate_rules),
                    f"-evaluationInterval={interval}",
                    "-remoteWrite.flushInterval=1s",
                    f"-httpListenAddr=127.0.0.1:{port}",
                ],
            )
            stack.vmalert = f"http://127.0.0.1:{port}"
            wait_for_port(port, timeout=60, proc=procs.procs["vmalert"], log=procs.log("vmalert"))
        stack.started = time.time()
        yield stack
    finally:
        procs.stop_all()
