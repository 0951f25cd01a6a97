"""What every area of ``mspwatch demo`` shares: ports, processes, waiting, querying.

An area (SNMP, backup, ...) is a :class:`DemoArea`: it starts its simulators and exporters,
contributes its scrape jobs to the demo's Prometheus, and with ``--check`` waits until
Prometheus has scraped all of its targets and prints a summary. ``mspwatch/demo/main.py`` lists
the areas and runs them in order.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from mspwatch.common.net import split_host_port
from mspwatch.common.procs import stop_process, wait_until
from mspwatch.inventory import Device, Inventory, VeeamSource, load_inventory

from .runner import DemoError, Runner, Stopped

ROOT = Path(__file__).resolve().parents[2]
ESTATE = ROOT / "simulators" / "estate"
COMPOSE = ROOT / "compose"
ALERTRULES = ROOT / "alertrules"


SNMP_AGENT_PORT = 1161  # the estate inventory's devices' UDP port


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
    inventory_exporter: int = 9821
    # One NinjaOne instance: an organisation per customer.
    ninjaone_simulator: int = 9820
    alertmanager: int = 9093
    # The demo's stand-in for the paging, PSA and chat webhooks Alertmanager notifies.
    alert_receiver: int = 9097
    # Each simulated device has its own loopback address, all on this UDP port.
    snmp_agent: int = SNMP_AGENT_PORT

    def shifted(self, offset: int) -> Ports:
        return Ports(**{f.name: getattr(self, f.name) + offset for f in fields(self)})

    def all(self) -> list[int]:
        return [getattr(self, f.name) for f in fields(self)]

    @property
    def offset(self) -> int:
        return self.snmp_agent - SNMP_AGENT_PORT


def estate_inventory(raw: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """The estate inventory (parsed YAML) with every port moved to the demo's ports: the
    devices', the Veeam and the NinjaOne simulators'.

    >>> raw = {"customers": [{"sites": [{"devices": [{"address": "127.0.10.1:1161"}]}],
    ...        "backup_sources": [{"kind": "veeam", "url": "http://127.0.10.50:9419"}]}]}
    >>> moved = estate_inventory(raw, Ports().shifted(100))["customers"][0]
    >>> moved["sites"][0]["devices"][0]["address"], moved["backup_sources"][0]["url"]
    ('127.0.10.1:1261', 'http://127.0.10.50:9519')
    """
    for customer in raw.get("customers", []):
        for site in customer.get("sites", []):
            for device in site.get("devices", []):
                host, port = split_host_port(device["address"])
                device["address"] = f"{host}:{(port or 161) + ports.offset}"
        for source in customer.get("backup_sources", []):
            if source.get("kind") == "veeam":
                source["url"] = _with_port(source["url"], ports.veeam_simulator)
        for source in customer.get("patch_sources", []):
            if source.get("kind") == "ninjaone":
                source["url"] = _with_port(source["url"], ports.ninjaone_simulator)
    return raw


def _with_port(url: str, port: int) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=f"{parts.hostname}:{port}").geturl()


def write_estate_inventory(path: Path, ports: Ports) -> Inventory:
    """Write the demo's own copy of the estate inventory (ports moved); return it, loaded."""
    raw = yaml.safe_load((ESTATE / "inventory.yml").read_text(encoding="utf-8"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(estate_inventory(raw, ports), sort_keys=False), encoding="utf-8")
    return load_inventory(path)


def free_offset(inventory: Inventory, start: int | None = None) -> int:
    """A ``--port-offset`` that leaves every demo port free, the devices' UDP ports included.

    The search starts at a random offset: two runs on one machine (a developer's demo and a
    ``--check``) should not pick the same range.
    """
    first: int = random.randrange(21000, 40000) if start is None else start  # noqa: S311 - not crypto
    offsets: list[int] = [*range(first, 40000, 137), *range(21000, first, 137)]
    for offset in offsets:
        ports = Ports().shifted(offset)
        tcp = [("127.0.0.1", p) for p in ports.all() if p not in (ports.snmp_agent, ports.veeam_simulator)]
        tcp += [
            (urllib.parse.urlsplit(s.url).hostname or "", ports.veeam_simulator) for s in _veeam(inventory)
        ]
        udp = [(split_host_port(d.address)[0], ports.snmp_agent) for d in _all_devices(inventory)]
        if all(_free(socket.SOCK_STREAM, a) for a in tcp) and all(_free(socket.SOCK_DGRAM, a) for a in udp):
            return offset
    raise DemoError("no free range of ports found for the demo on 127.0.0.0/8")


def _free(kind: int, address: tuple[str, int]) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(address)
        except OSError:
            return False
    return True


def _all_devices(inventory: Inventory) -> list[Device]:
    return [d for c in inventory.customers for s in c.sites for d in s.devices]


def _veeam(inventory: Inventory) -> list[VeeamSource]:
    return [s for c in inventory.customers for s in c.backup_sources if isinstance(s, VeeamSource)]


@dataclass
class Demo:
    """One run of the demo: where it keeps its files, its ports, the estate, its processes."""

    work: Path
    ports: Ports
    inventory: Inventory
    targets_dir: Path
    procs: Runner
    env: dict[str, str]
    started: float = field(default_factory=time.time)  # a process started before is not ours

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"


class DemoArea:
    """One area of the estate. Subclasses override what they need; the defaults do nothing."""

    name = "area"

    def start(self, demo: Demo) -> None:
        """Write the area's files and add its simulators and exporters to ``demo.procs``.

        Nothing runs yet: every process starts at once when the runner runs.
        """

    def attach(self, demo: Demo) -> None:
        """Read back what :meth:`start` wrote, for a ``--check`` of a demo another process runs
        (``demo`` is that demo's data dir and ports; nothing is started)."""

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
        """Return once the area's processes answer as themselves (not just something on the port)."""

    def links(self, demo: Demo) -> list[tuple[str, str]]:
        """(what, where) rows of the table the demo prints once it runs: URLs, files."""
        return []

    def check(self, demo: Demo) -> bool:
        """Wait until Prometheus has scraped the area's targets; print a summary; True if all up."""
        return True

    def tick(self, demo: Demo) -> None:
        """Called about once a second while the demo runs."""


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DemoError(f"{name} not found; run `make deps` first")
    return path


def get_json(url: str, context: ssl.SSLContext | None = None) -> Any:
    with urllib.request.urlopen(url, timeout=5, context=context) as resp:  # noqa: S310 - loopback URL we built
        return json.load(resp)


def wait_http(
    url: str,
    procs: Runner,
    timeout: float,
    context: ssl.SSLContext | None = None,
    expect: Callable[[bytes], str | None] | None = None,
) -> bytes:
    """Wait until ``url`` answers 200 and ``expect(body)`` finds nothing wrong; return the body.

    ``context``: the CA an https:// URL is checked against. ``expect`` returns None when the
    body shows our process answered, else what is wrong (the last such is in the error).
    """
    wrong = "no answer"

    def answered() -> tuple[bytes] | None:
        nonlocal wrong
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310
                body: bytes = resp.read()
        except OSError as exc:
            wrong = str(exc)
            return None
        problem = expect(body) if expect is not None else None
        if problem is not None:
            wrong = problem
            return None
        return (body,)  # a tuple: an empty body is an answer too

    try:
        (body,) = wait_until(
            url, answered, timeout, interval=0.25, alive=procs.check_alive, sleep=procs.sleep
        )
    except TimeoutError:
        raise DemoError(
            f"{url} did not answer as the demo's own process within {timeout:.0f}s: {wrong}"
        ) from None
    return body


def own_pid(pid: int | None) -> Callable[[bytes], str | None]:
    """An ``expect`` for identity endpoints answering ``{"pid": N, ...}``: N must be ours."""

    def check(body: bytes) -> str | None:
        try:
            answered = json.loads(body).get("pid")
        except (ValueError, AttributeError):
            return "not an identity answer"
        return None if answered == pid else f"answered by pid {answered}, not ours ({pid})"

    return check


def own_metrics(build_info: str, started: float) -> Callable[[bytes], str | None]:
    """An ``expect`` for /metrics: ``build_info`` is there and the process started after us.

    >>> check = own_metrics("prometheus_build_info", 1000.0)
    >>> check(b'prometheus_build_info{version="2.42.0"} 1\\nprocess_start_time_seconds 1000.5\\n')
    >>> check(b'prometheus_build_info 1\\nprocess_start_time_seconds 900\\n')
    'a process that started 100s before the demo'
    """

    def check(body: bytes) -> str | None:
        text = body.decode("utf-8", "replace")
        if not re.search(rf"^{re.escape(build_info)}[{{ ]", text, re.M):
            return f"no {build_info}"
        m = re.search(r"^process_start_time_seconds ([0-9.e+]+)$", text, re.M)
        if m is None:
            return "no process_start_time_seconds"
        # Go reports its start time to the second (boot time + clock ticks): allow that.
        if float(m.group(1)) < started - 2:
            return f"a process that started {started - float(m.group(1)):.0f}s before the demo"
        return None

    return check


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    result: list[dict[str, Any]] = get_json(url)["data"]["result"]
    return result


def wait_all_up(
    prometheus: str, procs: Runner, promql: str, expected: int, timeout: float
) -> list[dict[str, Any]]:
    """Wait until ``promql`` returns at least ``expected`` series, all of value 1; return them."""
    result: list[dict[str, Any]] = []

    def all_up() -> bool:
        nonlocal result
        result = []  # an unanswered query leaves nothing up
        result = query(prometheus, promql)
        return len(result) >= expected and all(s["value"][1] == "1" for s in result)

    with contextlib.suppress(TimeoutError):
        wait_until(promql, all_up, timeout, interval=1, alive=procs.check_alive, sleep=procs.sleep)
    return result  # on a timeout the caller reports what is still down


def start_exporter(demo: Demo, command: str, config: Path, port: int) -> None:
    """Add one of our exporters (``snmp-exporter``, ...) on 127.0.0.1:port."""
    demo.procs.add(
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


def wait_exporter(demo: Demo, namespace: str, port: int) -> None:
    """Wait until our exporter answers on 127.0.0.1:port (its build_info, started by us)."""
    wait_http(
        f"http://127.0.0.1:{port}/metrics",
        demo.procs,
        60,
        expect=own_metrics(f"{namespace}_exporter_build_info", demo.started),
    )


# compose/prometheus.yml's host names (the compose services) -> the demo's Ports field.
SERVICES = {
    "snmp-exporter": "snmp_exporter",
    "blackbox": "blackbox",
    "backup-exporter": "backup_exporter",
    "m365-exporter": "m365_exporter",
    "patch-exporter": "patch_exporter",
    "inventory-exporter": "inventory_exporter",
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


# --- one-shot steps (the history, the reports) ---------------------------------------------


class Interrupted(DemoError):
    """SIGINT or SIGTERM arrived while the demo ran a one-shot step before its processes."""

    def __init__(self, signame: str) -> None:
        super().__init__(f"{signame} received")
        self.signame = signame


def raise_on_signals() -> dict[int, Any]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` in the main thread (a background job
    starts with SIGINT ignored: Ctrl-C and kill must still stop it); return the old handlers."""

    def handler(signum: int, _frame: Any) -> None:
        raise Interrupted(signal.Signals(signum).name)

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def run_step(args: list[str], procs: Runner | None = None, env: dict[str, str] | None = None) -> int:
    """Run a one-shot child (``python -m ...``) to its end and return its exit code.

    The child runs in its own session, so stopping it stops what it started too (promtool,
    a Prometheus for the rules): on :class:`Interrupted` (before the runner runs) or when
    ``procs`` is stopping (a step of the runner), its process group gets SIGTERM, then SIGKILL
    after 5 s, and the exception goes on. Its output goes to the demo's own stdout.
    """
    sys.stdout.flush()
    child = subprocess.Popen(args, start_new_session=True, env=env)
    try:
        while True:
            try:
                return child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                if procs is not None and procs.stopping:
                    raise Stopped("the demo is stopping") from None
    except BaseException:
        stop_group(child)
        raise


def stop_group(child: subprocess.Popen[Any]) -> None:
    """SIGTERM to the child's process group, SIGKILL after 5 s; reap the child."""
    stop_process(child, grace=5.0)
    print(
        f"stopped {Path(child.args[0]).name if isinstance(child.args, list) else 'step'} "
        f"(pid {child.pid}) and its children",
        flush=True,
    )


# --- checks shared by the areas -------------------------------------------------------------


def alert_rules_line(demo: Demo, area: str) -> tuple[str, int]:
    """``<area> alert rules: N loaded; pending or firing: ...`` for alertrules/<area>.yml, and N."""
    groups = get_json(f"{demo.prometheus_url}/api/v1/rules?type=alert")["data"]["groups"]
    rules = [r for g in groups if Path(g["file"]).name == f"{area}.yml" for r in g["rules"]]
    # Every rule waits (`for:`) before firing: right after start they are pending.
    active = sorted({r["name"] for r in rules if r.get("alerts")})
    return (
        f"{area} alert rules: {len(rules)} loaded; pending or firing: {', '.join(active) or 'none yet'}",
        len(rules),
    )


def check_sources(
    demo: Demo,
    area: str,
    up_query: str,
    expected: int,
    noun: str,
    summary: Callable[[list[dict[str, Any]]], list[str]],
    timeout: float = 120,
) -> bool:
    """Wait until ``up_query`` has ``expected`` series at 1, print ``summary(up)`` (one line per
    customer), ``N of M <noun> up`` and the area's alert rules; True if all up and rules loaded."""
    up = wait_all_up(demo.prometheus_url, demo.procs, up_query, expected, timeout)
    for line in summary(up):
        print(line)
    n_up = sum(1 for s in up if s["value"][1] == "1")
    print(f"{n_up} of {max(len(up), expected)} {noun} up")
    line, rules = alert_rules_line(demo, area)
    print(line)
    return n_up >= expected and len(up) >= expected and rules > 0
