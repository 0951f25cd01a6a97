"""What every area of ``mspwatch demo`` shares: ports, processes, waiting, querying.

An area (SNMP, backup, ...) is a :class:`DemoArea`: it starts its simulators and exporters,
contributes its scrape jobs to the demo's Prometheus, and with ``--check`` waits until
Prometheus has scraped all of its targets and prints a summary. ``mspwatch/demo/main.py`` lists
the areas and runs them in order.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from mspwatch.common.net import split_host_port
from mspwatch.inventory import Inventory

ROOT = Path(__file__).resolve().parents[2]
ESTATE = ROOT / "simulators" / "estate"
COMPOSE = ROOT / "compose"
ALERTRULES = ROOT / "alertrules"


@dataclass
class Ports:
    """Every port the demo listens on; ``--port-offset`` adds to all of them."""

    prometheus: int = 9090
    snmp_exporter: int = 9816
    blackbox: int = 9115
    backup_exporter: int = 9817
    # Each customer's simulated VBR server has its own loopback address, all on this port.
    veeam_simulator: int = 9419
    m365_exporter: int = 9818
    graph_simulator: int = 9443
    patch_exporter: int = 9819
    # One NinjaOne instance: an organisation per customer.
    ninjaone_simulator: int = 9820
    alertmanager: int = 9093
    # The demo's stand-in for the paging, PSA and chat webhooks Alertmanager notifies.
    alert_receiver: int = 9097

    def shifted(self, offset: int) -> Ports:
        return Ports(**{f.name: getattr(self, f.name) + offset for f in fields(self)})

    def all(self) -> list[int]:
        return [getattr(self, f.name) for f in fields(self)]


@dataclass
class Processes:
    """Processes the demo started; stopped by PID in reverse order."""

    log_dir: Path
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append((name, proc))
        print(f"started {name} (pid {proc.pid}), log: {self.log_dir / (name + '.log')}")
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}; see its log")

    def stop_all(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@dataclass
class Demo:
    """One run of the demo: where it keeps its files, its ports, the estate, its processes."""

    work: Path
    ports: Ports
    inventory: Inventory
    targets_dir: Path
    procs: Processes
    env: dict[str, str]

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"


class DemoArea:
    """One area of the estate. Subclasses override what they need; the defaults do nothing."""

    name = "area"

    def start(self, demo: Demo) -> None:
        """Start the area's simulators and exporters (before Prometheus)."""

    def scrape_configs(self, ports: Ports, targets_dir: Path) -> list[dict[str, Any]]:
        """The area's jobs of compose/prometheus.yml (:func:`demo_jobs`), its exporters' own included."""
        return []

    def rule_files(self) -> list[Path]:
        """Alert rule files the demo's Prometheus loads for the area."""
        return []

    def alertmanagers(self, ports: Ports) -> list[str]:
        """host:port of Alertmanagers the demo's Prometheus sends its alerts to."""
        return []

    def wait_ready(self, demo: Demo) -> None:
        """Return once the area's exporters answer (after Prometheus has started)."""

    def banner(self, demo: Demo) -> list[str]:
        """Lines that tell the user where to look."""
        return []

    def check(self, demo: Demo) -> bool:
        """Wait until Prometheus has scraped the area's targets; print a summary; True if all up."""
        return True

    def tick(self, demo: Demo) -> None:
        """Called about once a second while the demo runs."""


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"error: {name} not found; run `make deps` first")
    return path


def get_json(url: str, context: ssl.SSLContext | None = None) -> Any:
    with urllib.request.urlopen(url, timeout=5, context=context) as resp:  # noqa: S310 - loopback URL we built
        return json.load(resp)


def wait_udp(endpoint: str, procs: Processes, timeout: float) -> None:
    """Wait until something has bound the UDP endpoint (snmpsim indexes recordings first)."""
    host, port = split_host_port(endpoint)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        procs.check_alive()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((host, port or 161))
            except OSError:
                return
        time.sleep(0.25)
    raise RuntimeError(f"nothing listens on {endpoint} after {timeout:.0f}s")


def wait_http(url: str, procs: Processes, timeout: float, context: ssl.SSLContext | None = None) -> None:
    """Wait until ``url`` answers (``context``: the CA an https:// URL is checked against)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        procs.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2, context=context):  # noqa: S310
                return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    result: list[dict[str, Any]] = get_json(url)["data"]["result"]
    return result


def wait_all_up(
    prometheus: str, procs: Processes, promql: str, expected: int, timeout: float
) -> list[dict[str, Any]]:
    """Wait until ``promql`` returns at least ``expected`` series, all of value 1; return them."""
    end = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < end:
        procs.check_alive()
        try:
            result = query(prometheus, promql)
        except OSError:
            result = []
        if len(result) >= expected and all(s["value"][1] == "1" for s in result):
            return result
        time.sleep(1)
    return result  # the caller reports what is still down


def start_exporter(demo: Demo, command: str, config: Path, port: int) -> None:
    """Start one of our exporters (``snmp-exporter``, ...) on 127.0.0.1:port."""
    demo.procs.start(
        command,
        [
            sys.executable,
            "-m",
            "mspwatch.cli",
            command,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        env=demo.env,
    )


# compose/prometheus.yml's host names (the compose services) -> the demo's Ports field.
SERVICES = {
    "snmp-exporter": "snmp_exporter",
    "blackbox": "blackbox",
    "backup-exporter": "backup_exporter",
    "m365-exporter": "m365_exporter",
    "patch-exporter": "patch_exporter",
    "alertmanager": "alertmanager",
    "localhost": "prometheus",
}
TARGETS_MOUNT = "/etc/prometheus/targets/"


def canonical_prometheus() -> dict[str, Any]:
    """compose/prometheus.yml, the one scrape config the demo adapts."""
    config: dict[str, Any] = yaml.safe_load((COMPOSE / "prometheus.yml").read_text(encoding="utf-8"))
    return config


def demo_address(address: str, ports: Ports) -> str:
    """A compose service's ``host:port`` as the demo runs it: ``127.0.0.1:<its demo port>``."""
    host, _ = split_host_port(address)
    if host not in SERVICES:
        raise ValueError(f"compose/prometheus.yml names {address!r}, which the demo does not run")
    return f"127.0.0.1:{getattr(ports, SERVICES[host])}"


def demo_jobs(
    names: list[str], ports: Ports, targets_dir: Path, overrides: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The named jobs of compose/prometheus.yml, pointed at the demo's processes and files.

    Only addresses, file_sd paths and what ``overrides[job]`` sets (the demo's shorter
    intervals) change; relabelling, paths and parameters stay as the stack has them.
    """
    jobs = {job["job_name"]: job for job in canonical_prometheus()["scrape_configs"]}
    out = []
    for name in names:
        job = dict(jobs[name])
        for sd in job.get("file_sd_configs", []):
            sd["files"] = [str(targets_dir / f.removeprefix(TARGETS_MOUNT)) for f in sd["files"]]
        for static in job.get("static_configs", []):
            static["targets"] = [demo_address(t, ports) for t in static["targets"]]
        for rule in job.get("relabel_configs", []):
            if rule.get("target_label") == "__address__" and "replacement" in rule:
                rule["replacement"] = demo_address(rule["replacement"], ports)
        job.update((overrides or {}).get(name, {}))
        out.append(job)
    return out
