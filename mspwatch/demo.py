"""``mspwatch demo``: the stack on the built-in simulated customer estate.

Starts, on loopback only: snmpsim with real device recordings (one address per device),
the SNMP exporter, blackbox_exporter for ping, and Prometheus scraping them through file_sd
targets written from ``simulators/estate/inventory.yml``. Everything is stopped by PID on
Ctrl-C. ``--check`` waits until every target has been scraped, prints a summary and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simulators.snmp import prepare_data_dir, snmpsim_command, snmpsim_env, wait_until_serving

from .inventory import load_inventory, split_host_port, write_targets

ESTATE = Path(__file__).resolve().parent.parent / "simulators" / "estate"
COMPOSE = Path(__file__).resolve().parent.parent / "compose"
DEMO_V3_AUTH = "demo-auth-key-1"  # the simulated estate's own keys, not anyone's secret
DEMO_V3_PRIV = "demo-priv-key-1"


@dataclass
class Ports:
    prometheus: int = 9090
    snmp_exporter: int = 9816
    blackbox: int = 9115

    def shifted(self, offset: int) -> Ports:
        return Ports(*(p + offset for p in (self.prometheus, self.snmp_exporter, self.blackbox)))


@dataclass
class Processes:
    """Processes the demo started; stopped by PID in reverse order."""

    log_dir: Path
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.log_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append((name, proc))
        print(f"started {name} (pid {proc.pid}), log: {self.log_dir / (name + '.log')}")

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


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"error: {name} not found; run `make deps` first")
    return path


def prometheus_config(ports: Ports, targets_dir: Path) -> dict[str, Any]:
    """Scrape config as an MSP would write it: file_sd targets carry customer and site."""
    return {
        "global": {"scrape_interval": "15s", "scrape_timeout": "10s", "evaluation_interval": "15s"},
        "scrape_configs": [
            {
                "job_name": "snmp",
                "metrics_path": "/snmp",
                "file_sd_configs": [{"files": [str(targets_dir / "snmp.json")]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": f"127.0.0.1:{ports.snmp_exporter}"},
                ],
            },
            {
                "job_name": "icmp",
                "metrics_path": "/probe",
                "params": {"module": ["icmp"]},
                "file_sd_configs": [{"files": [str(targets_dir / "icmp.json")]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": f"127.0.0.1:{ports.blackbox}"},
                ],
            },
            {
                "job_name": "mspwatch-exporters",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{ports.snmp_exporter}", f"127.0.0.1:{ports.blackbox}"]}
                ],
            },
        ],
    }


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback URL we built
        return json.load(resp)


def _wait_udp(endpoint: str, procs: Processes, timeout: float) -> None:
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


def _wait_http(url: str, procs: Processes, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        procs.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    result: list[dict[str, Any]] = _get_json(url)["data"]["result"]
    return result


def wait_scraped(prometheus: str, procs: Processes, expected: int, timeout: float) -> list[dict[str, Any]]:
    """Wait until Prometheus has scraped every SNMP target up; return snmp_up as it stands."""
    end = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < end:
        procs.check_alive()
        try:
            result = query(prometheus, "snmp_up")
        except OSError:
            result = []
        if len(result) >= expected and all(s["value"][1] == "1" for s in result):
            return result
        time.sleep(1)
    return result  # the caller reports what is still down


def run(args: argparse.Namespace) -> int:
    work: Path = args.data_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    ports = Ports().shifted(args.port_offset)
    inventory = load_inventory(ESTATE / "inventory.yml")
    targets = work / "targets"
    write_targets(inventory, targets)
    devices = [d for c in inventory.customers for s in c.sites for d in s.devices]
    endpoints = sorted({d.address for d in devices})
    for address in endpoints:
        split_host_port(address)
    procs = Processes(work / "logs")
    env = {**os.environ, "MSPWATCH_DEMO_V3_AUTH": DEMO_V3_AUTH, "MSPWATCH_DEMO_V3_PRIV": DEMO_V3_PRIV}
    try:
        data = prepare_data_dir(work / "snmpsim" / "data")
        procs.start(
            "snmpsim",
            snmpsim_command(data, work / "snmpsim" / "cache", endpoints, DEMO_V3_AUTH, DEMO_V3_PRIV),
            env=snmpsim_env(),
        )
        print("waiting for snmpsim to open every recording (a minute on first start) ...")
        snmpsim_proc = procs.procs[-1][1]
        communities = sorted({p.stem for p in data.glob("*.snmprec")})
        _wait_udp(endpoints[0], procs, 120)
        wait_until_serving(snmpsim_proc, endpoints[0], communities, timeout=300)
        procs.start(
            "snmp-exporter",
            [
                sys.executable,
                "-m",
                "mspwatch.cli",
                "snmp-exporter",
                f"--config.file={ESTATE / 'snmp.yml'}",
                f"--web.listen-address=127.0.0.1:{ports.snmp_exporter}",
            ],
            env=env,
        )
        procs.start(
            "blackbox",
            [
                _tool("prometheus-blackbox-exporter"),
                f"--config.file={COMPOSE / 'blackbox.yml'}",
                f"--web.listen-address=127.0.0.1:{ports.blackbox}",
            ],
        )
        prom_cfg = work / "prometheus.yml"
        prom_cfg.write_text(yaml.safe_dump(prometheus_config(ports, targets), sort_keys=False))
        procs.start(
            "prometheus",
            [
                _tool("prometheus"),
                f"--config.file={prom_cfg}",
                f"--storage.tsdb.path={work / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{ports.prometheus}",
                "--storage.tsdb.retention.time=45d",
            ],
        )
        prometheus = f"http://127.0.0.1:{ports.prometheus}"
        _wait_http(f"{prometheus}/-/ready", procs, 60)
        _wait_http(f"http://127.0.0.1:{ports.snmp_exporter}/-/healthy", procs, 60)
        print(f"\nPrometheus:    {prometheus}")
        print(
            f"SNMP exporter: http://127.0.0.1:{ports.snmp_exporter}/snmp?target=127.0.10.1:1161&auth=acme-core-v3"
        )
        print(f"{len(devices)} simulated devices for {len(inventory.customers)} customers\n")
        if args.check:
            up = wait_scraped(prometheus, procs, sum(1 for d in devices if d.snmp_auth), 240)
            for series in sorted(up, key=lambda s: (s["metric"]["customer"], s["metric"]["device"])):
                m = series["metric"]
                where = f"customer={m['customer']}, site={m['site']}, device={m['device']}"
                print(f"snmp_up{{{where}}} = {series['value'][1]}")
            down = [s for s in up if s["value"][1] != "1"]
            print(f"\n{len(up) - len(down)} of {len(up)} devices up")
            return 1 if down else 0
        print("Ctrl-C stops everything.")
        stop = {"flag": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
        try:
            while not stop["flag"]:
                procs.check_alive()
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        procs.stop_all()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo",
        help="run the stack on the built-in simulated customer estate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data.dir",
        dest="data_dir",
        type=Path,
        default=Path("demo-data"),
        help="where the demo keeps its data and logs (default: ./demo-data)",
    )
    p.add_argument(
        "--port-offset",
        type=int,
        default=0,
        help="add this to every listening port (Prometheus 9090, SNMP exporter 9816, blackbox 9115)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="wait until every device has been scraped, print a summary and exit",
    )
    p.set_defaults(func=run)
