"""The scale-out stack on loopback, real processes: two hashmod Prometheus shards (configs
from ``mspwatch.targets.shards`` applied to the canonical ``compose/prometheus.yml``), both
remote-writing to VictoriaMetrics and alerting to a two-peer Alertmanager gossip cluster.

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
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from mspwatch.common.procs import Processes, free_port, wait_for_port
from mspwatch.targets.shards import shard_config
from tests.conftest import ROOT

COMPOSE = ROOT / "compose"
SHARDS = 2


class CannedExporter:
    """Answers every GET with ``text`` (any path, any ``?target=``); records webhook POSTs."""

    def __init__(self, text: str) -> None:
        self.text = text.encode()
        self.notifications: list[dict[str, Any]] = []
        kit = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(kit.text)))
                self.end_headers()
                self.wfile.write(kit.text)

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


@dataclass
class Stack:
    vm: str
    prometheus: list[str]
    alertmanagers: list[str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)


@contextlib.contextmanager
def scale_stack(
    work: Path,
    *,
    targets_dir: Path,
    exporter: CannedExporter,
    shard_rules: dict[int, list[str]],
    interval: str = "2s",
    group_wait: str = "1s",
    peer_timeout: str = "2s",
) -> Iterator[Stack]:
    """Start VictoriaMetrics, two Alertmanager peers and two Prometheus shards; stop them by PID."""
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
                    "route": {
                        "receiver": "webhook",
                        "group_by": ["alertname"],
                        "group_wait": group_wait,
                        "group_interval": "10m",
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {
                            "name": "webhook",
                            "webhook_configs": [{"url": f"http://{exporter.address}/webhook"}],
                        }
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
        for i in range(SHARDS):
            base = loopback_base(targets_dir, exporter.address, shard_rules.get(i, []), interval)
            cfg = shard_config(
                base,
                i,
                SHARDS,
                remote_write_url=f"http://127.0.0.1:{vm_port}/api/v1/write",
                alertmanagers=[f"127.0.0.1:{p}" for p in am_web],
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
        for i in range(SHARDS):
            wait_for_port(
                prom_ports[i],
                timeout=60,
                proc=procs.procs[f"prometheus-{i}"],
                log=procs.log(f"prometheus-{i}"),
            )
        yield Stack(
            vm=f"http://127.0.0.1:{vm_port}",
            prometheus=[f"http://127.0.0.1:{p}" for p in prom_ports],
            alertmanagers=[f"http://127.0.0.1:{p}" for p in am_web],
            procs=procs.procs,
        )
    finally:
        procs.stop_all()
