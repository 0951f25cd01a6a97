"""`make demo` runs: the stack comes up on the simulated estate and Prometheus sees every
device, every backup source and every Microsoft 365 tenant with its customer (and site)
labels; Alertmanager is ready to route what fires."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from honcho.printer import Message

from mspwatch.demo.alerting import alertmanager_config, count_notifications, webhook_receivers
from mspwatch.demo.kit import Demo, free_offset, own_metrics, own_pid, wait_http, write_estate_inventory
from mspwatch.demo.m365 import exporter_config
from mspwatch.demo.main import Ports, areas, prometheus_config
from mspwatch.demo.past import (
    STAMP,
    Stamp,
    last_month,
    prepare_history,
    read_stamp,
    stale_because,
    write_stamp,
)
from mspwatch.demo.receiver import make_handler
from mspwatch.demo.runner import DemoError, Runner
from mspwatch.inventory import load_inventory, write_targets
from mspwatch.simulators.graph.scenario import SCENARIOS_DIR, load_scenario
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]


DEMO = [sys.executable, "-m", "mspwatch.cli", "demo"]


def history_days(now: float | None = None) -> int:
    """A short history that still holds last month's last day (the PDFs are last month's:
    ``mspwatch report`` refuses a month that has not ended, and one without data), whatever
    today's date: 2 days on the 1st, a day more for each day of the month. Only the module's
    one complete demo (``running_demo``) writes PDFs; the demos that stop before reuse its history.

    >>> history_days(dt.datetime(2026, 12, 1, 14, tzinfo=dt.UTC).timestamp())
    2
    >>> history_days(dt.datetime(2026, 12, 20, tzinfo=dt.UTC).timestamp())
    21
    """
    today = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    return max(2, today.day + 1)


HISTORY = f"--history-days={history_days()}"
STALE = '{"receiver": "stale-from-an-old-run", "status": "firing", "alerts": []}\n'
ESTATE_INVENTORY = ROOT / "simulators" / "estate" / "inventory.yml"


def alert_count(area: str) -> int:
    """The alerts in ``alertrules/<area>.yml``: the demo must load every one."""
    groups = yaml.safe_load((ROOT / "alertrules" / f"{area}.yml").read_text(encoding="utf-8"))["groups"]
    return sum(1 for g in groups for r in g["rules"] if "alert" in r)


def _pids(output: str) -> dict[str, int]:
    """{name: pid} of every process the demo said it started."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^started (\S+) \(pid (\d+)\)", output, re.M)}


def _gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return True


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"{what} not within {timeout:.0f}s")
        time.sleep(0.2)


class Background:
    """``mspwatch demo ... &`` from a non-interactive shell, as a user starts it in the
    background (SIGINT ignored, stdin /dev/null); the shell waits for it and reaps it."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.out = cwd / "demo.out"
        cmd = shlex.join([*DEMO, *args])
        self.shell = subprocess.Popen(
            ["sh", "-c", f"{cmd} >{shlex.quote(str(self.out))} 2>&1 & echo $!; wait $!"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.shell.stdout is not None
        self.pid = int(self.shell.stdout.readline())

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def wait_output(self, text: str, timeout: float) -> None:
        _wait_for(lambda: text in self.output() or self.shell.poll() is not None, timeout, repr(text))
        assert text in self.output(), self.output()[-3000:]

    def stop(self, sig: signal.Signals) -> int:
        """Send ``sig`` to the demo (not the shell); return the demo's exit code."""
        os.kill(self.pid, sig)
        return self.shell.wait(timeout=60)

    def kill(self) -> None:
        if self.shell.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            self.shell.wait(timeout=60)


@pytest.fixture(scope="module")
def running_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Background, Path, int]]:
    """A plain ``mspwatch demo`` (./demo-data, ports moved) with a notification of an old run
    in its data dir, running in the background until the SIGTERM test stops it; the module's
    one complete demo (``test_demo_check`` checks it)."""
    cwd = tmp_path_factory.mktemp("demo")
    (cwd / "demo-data").mkdir()
    (cwd / "demo-data" / "notifications.jsonl").write_text(STALE)
    offset = free_offset(load_inventory(ESTATE_INVENTORY))
    demo = Background(cwd, f"--port-offset={offset}", HISTORY)
    try:
        demo.wait_output("Ctrl-C stops everything.", 1200)
        yield demo, cwd, offset
    finally:
        demo.kill()


def test_the_demo_inventory_carries_the_moved_ports(running_demo: tuple[Background, Path, int]) -> None:
    demo, cwd, offset = running_demo
    inventory = load_inventory(cwd / "demo-data" / "estate" / "inventory.yml")
    devices = [d for c in inventory.customers for s in c.sites for d in s.devices]
    assert {d.address.rsplit(":", 1)[1] for d in devices} == {str(1161 + offset)}
    snmp_targets = json.loads((cwd / "demo-data" / "targets" / "snmp.json").read_text())
    assert {t.rsplit(":", 1)[1] for g in snmp_targets for t in g["targets"]} == {str(1161 + offset)}
    assert f"/snmp?target=127.0.10.1:{1161 + offset}&auth=acme-core-v3" in demo.output()
    # snmpsim logs (errors only) to a file in the data dir, like every other process.
    assert (cwd / "demo-data" / "logs" / "snmpsim.log").exists()


def test_a_second_demo_on_the_same_data_dir_is_refused(running_demo: tuple[Background, Path, int]) -> None:
    demo, cwd, _ = running_demo
    proc = subprocess.run([*DEMO], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert proc.stdout == (
        f"error: {cwd / 'demo-data'} is in use by a running demo (pid {demo.pid}); "
        "stop it, or pass another --data.dir\n"
    )
    assert proc.stderr == ""


def test_demo_check(running_demo: tuple[Background, Path, int]) -> None:
    """``--check`` in the directory of a running demo, with no options, checks THAT demo (its
    ./demo-data, ports, history and month) as it runs: every area, the history, continuity,
    deliveries and PDFs; it starts and stops nothing and the demo runs on."""
    demo, cwd, offset = running_demo
    proc = subprocess.run(
        [*DEMO, "--check"], cwd=cwd, capture_output=True, text=True, timeout=2400, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    work = re.search(r"^data and logs: (\S+) \(ports moved by (\d+)\)$", proc.stdout, re.M)
    assert work, proc.stdout[:2000]
    assert (Path(work.group(1)), int(work.group(2))) == ((cwd / "demo-data").resolve(), offset)
    assert (
        f"checking the demo running there (pid {demo.pid}) as it runs: nothing is started or stopped"
    ) in proc.stdout
    assert "15 of 15 devices up" in proc.stdout
    assert "snmp_up{customer=acme-dental, site=hq, device=core-sw1} = 1" in proc.stdout
    # One summary line per customer once every backup source has been scraped up; the
    # simulators run on the real clock, so only the stable parts are pinned.
    for customer in ("acme-dental", "bolt-logistics"):
        line = re.search(rf"^backup {customer}: 2 of 2 sources up, 7 jobs \(.*\).*$", proc.stdout, re.M)
        assert line, proc.stdout[-3000:]
        assert "1 failed" in line.group(0) or "2 failed" in line.group(0)
        assert "newest restore test" in line.group(0)
    assert f"backup alert rules: {alert_count('backup')} loaded" in proc.stdout
    # Microsoft 365: every tenant refreshed (up), one line per customer with what the
    # estate scenario serves at its start (the timelines change things only minutes later).
    assert "2 of 2 Microsoft 365 tenants up" in proc.stdout
    assert (
        "m365 acme-dental (tenant acme): up, 6 services (2 degraded), 1 open incident, "
        "3 open advisories, licences O365_BUSINESS_PREMIUM 9/10, SPE_E3 42/40 (+5 warning), "
        "Secure Score 38.5 of 74 (52%), MFA 44 of 57 users, 3 of 4 admins"
    ) in proc.stdout
    assert (
        "m365 bolt-logistics (tenant bolt): up, 4 services (0 degraded), 0 open incidents, "
        "1 open advisory, licences EXCHANGESTANDARD 14/20, SPB 96/100, "
        "Secure Score 47.25 of 76 (62%), MFA 97 of 112 users, 3 of 3 admins"
    ) in proc.stdout
    assert f"m365 alert rules: {alert_count('m365')} loaded" in proc.stdout
    # Patching: one NinjaOne organisation per customer and Bolt's Intune tenant; the
    # scenarios' times are relative to their start and the demo dates the quality-update
    # table on the latest Patch Tuesdays, so which devices fail does not depend on the day.
    assert "3 of 3 patch sources up" in proc.stdout
    assert (
        "patch acme-dental (acme-ninja): up, 7 devices, 5 compliant (71%, target 95%); "
        "not compliant: missing_critical 1, not_reporting 1, not_scanned 1"
    ) in proc.stdout
    assert (
        "patch bolt-logistics (bolt-ninja): up, 9 devices, 7 compliant (78%, target 90%); "
        "not compliant: av_outdated 1, reboot_pending 1"
    ) in proc.stdout
    assert (
        "patch bolt-logistics (bolt-intune): up, 7 devices, 4 compliant (57%, target 90%); "
        "not compliant: av_off 1, missing_critical 1, not_reporting 1"
    ) in proc.stdout
    assert f"patch alert rules: {alert_count('patch')} loaded" in proc.stdout
    # Availability: the inventory exporter scraped, every device of the estate counted.
    assert "inventory exporter: 1 target up, 15 devices counted by the SLO rules" in proc.stdout
    # Alertmanager: ready (its URL is a row of the table below), counting per receiver.
    assert "Alertmanager ready, Prometheus sends to it: " in proc.stdout
    # The running demo's own notification log: the old run's line in it too.
    assert re.search(
        r"^notifications so far: dead-mans-switch \d+, msp-paging \d+, msp-ticketing \d+, platform-team \d+, "
        r"acme-dental-escalation \d+, stale-from-an-old-run 1$",
        proc.stdout,
        re.M,
    ), proc.stdout[-3000:]
    # The past: history for every customer on each of the last days (up to 30), Prometheus
    # restored the alerts the history left firing, so each area with a failing live scenario
    # had one delivered within minutes (not after its hour of `for:`), and last month's PDFs.
    span = min(history_days(), 30)
    for customer in ("acme-dental", "bolt-logistics"):
        assert f"history {customer}: samples on {span} of the last {span} days" in proc.stdout
    # The agents' uptimes and traffic counters run on from the history as one series each.
    meets = re.search(
        r"^history meets live: (\d+) uptimes and (\d+) byte counters run on .*, 0 reset at the start$",
        proc.stdout,
        re.M,
    )
    # (The byte counters are judged only when the interface walks beat the scrape deadline:
    # on a loaded machine they do not, see SnmpProfileFailing.)
    assert meets and meets.group(1) == "15", proc.stdout[-3000:]
    # The inventory exporter's series too: the history carries the live scrape's instance.
    assert (
        "history meets live: 15 of 15 inventory devices one series each "
        f"(instance 127.0.0.1:{Ports().inventory_exporter + int(work.group(2))})"
    ) in proc.stdout, proc.stdout[-3000:]
    delivered = dict(re.findall(r"^alerts delivered: (\S+) (.*)$", proc.stdout, re.M))
    assert set(delivered) == {"backup", "m365", "patch"}, proc.stdout[-3000:]
    assert "BackupJobFailed (msp-ticketing)" in delivered["backup"], delivered
    assert "M365ServiceDegraded" in delivered["m365"] and "PatchCriticalUpdateOverdue" in delivered["patch"]
    month = last_month(time.time())
    for customer in ("acme-dental", "bolt-logistics"):
        line = re.search(
            rf"^report {customer} {month}: (\S+) \(([\d,]+) bytes, names the customer: True\)$",
            proc.stdout,
            re.M,
        )
        assert line and int(line.group(2).replace(",", "")) > 10_000, proc.stdout[-3000:]
    assert re.search(rf"^report summary {month}: \S+summary\.pdf \([\d,]+ bytes\)$", proc.stdout, re.M)
    # One table of where everything is.
    for row in (
        "Prometheus",
        "Alertmanager",
        "SNMP exporter",
        "Backup exporter",
        "Patch exporter",
        "Inventory exporter",
        "Microsoft 365 exporter",
        "NinjaOne simulator",
        "Graph simulator",
        "webhook receiver",
        "notifications (its log)",
        "data dir and logs",
        f"reports {month}",
    ):
        assert re.search(rf"^│ {re.escape(row)}[^│]*│ \S", proc.stdout, re.M), row  # "(3 sources)"
    # The check started nothing and left the running demo's 14 processes as they were.
    assert _pids(proc.stdout) == {}
    pids = _pids(demo.output())
    assert len(pids) == 14 and not any(_gone(pid) for pid in pids.values()), pids
    assert demo.shell.poll() is None and "received: stopping" not in demo.output()
    assert (cwd / "demo-data" / "running.json").exists()


def test_a_check_of_a_running_demo_takes_its_settings(running_demo: tuple[Background, Path, int]) -> None:
    """The running demo's history, ports and month are its own: a --check that asks for
    others says so and checks nothing (the data dir is given as a path this time)."""
    demo, cwd, _ = running_demo
    other = history_days() + 1
    proc = subprocess.run(
        [*DEMO, "--check", f"--history-days={other}", f"--data.dir={cwd / 'demo-data'}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    data = (cwd / "demo-data").resolve()
    assert (proc.returncode, proc.stderr) == (1, "")
    assert proc.stdout == (
        f"error: --history-days={other}, but the demo running in {data} (pid {demo.pid}) runs with "
        f"{history_days()}: drop --history-days to check it, or pass another --data.dir\n"
    )


def _query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _snmpget(endpoint: str, community: str, *oids: str) -> list[int]:
    out = subprocess.run(
        [require_tool("snmpget"), "-v2c", "-c", community, "-t", "30", "-r", "1", "-Oqvt", endpoint, *oids],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return [int(v) for v in out.split()]


def test_the_estate_lives(running_demo: tuple[Background, Path, int]) -> None:
    """Interfaces that are up count traffic, each at its own rate; uptimes count on; no
    device reboots when the demo starts; the APC UPS is on mains."""
    _, cwd, offset = running_demo
    recording = (cwd / "demo-data" / "snmpsim" / "data" / "switch-hpe-procurve.snmprec").read_text()
    moving = re.findall(r"^(1\.3\.6\.1\.2\.1\.31\.1\.1\.1\.6\.\d+)\|70:numeric\|", recording, re.M)
    assert len(moving) >= 2
    oids = [*moving[:2], "1.3.6.1.2.1.1.3.0"]
    sw1 = f"127.0.10.7:{1161 + offset}"  # acme-dental, branch-york, sw1
    first = _snmpget(sw1, "switch-hpe-procurve", *oids)
    time.sleep(2)  # let the wall clock move; no timing is asserted
    second = _snmpget(sw1, "switch-hpe-procurve", *oids)
    assert all(b > a for a, b in zip(first, second, strict=True)), (first, second)
    assert second[0] - first[0] != second[1] - first[1]  # two interfaces, two rates
    prometheus = f"http://127.0.0.1:{Ports().shifted(offset).prometheus}"
    apc = 'snmp_ups_on_battery{customer="acme-dental", device="ups1"}'
    _wait_for(lambda: bool(_query(prometheus, apc)), 600, "the APC UPS scraped")
    assert [s["value"][1] for s in _query(prometheus, apc)] == ["0"]
    assert _query(prometheus, 'resets(snmp_device_uptime_seconds{job="snmp"}[15m]) > 0') == []


def test_every_dashboard_query_returns_data_on_the_running_demo(
    running_demo: tuple[Background, Path, int],
) -> None:
    """The dashboards' query test (tests/dashboards/test_queries.py) can only ask the
    backfilled history for what it holds; the running demo, history and live together, must
    answer every panel's query with data, the 13 panels on metrics the history does not
    write (interface errors and status, CPU, repository fill, Prometheus' own...) included.
    A filtered query ("... == 0") may be empty when the same query unfiltered has data."""
    from tests.dashboards.test_queries import _FILTER, CASES, _fill

    _, _, offset = running_demo
    prometheus = f"http://127.0.0.1:{Ports().shifted(offset).prometheus}"

    def answers(query: str) -> bool:
        now = time.time()
        got = httpx.get(
            f"{prometheus}/api/v1/query_range",
            params={"query": query, "start": now - 900, "end": now, "step": "60"},
            timeout=60,
        ).json()
        assert got["status"] == "success", (query, got.get("error"))
        return bool(got["data"]["result"])

    def empty() -> list[str]:
        out = []
        for path, title, expr in CASES:
            query = _fill(expr, {"customer": ".*", "site": ".*", "device": ".*"})
            if answers(query):
                continue
            if _FILTER.search(query) and answers(_FILTER.sub(")" if query.endswith(")") else "", query)):
                continue
            out.append(f"{path} / {title}: {query}")
        return out

    # Rates need two scrapes inside their window: wait (bounded) for the live part to grow.
    missing = empty()
    deadline = time.monotonic() + 600
    while missing and time.monotonic() < deadline:
        time.sleep(15)
        missing = empty()
    assert not missing, "\n".join(missing)


def test_sigterm_stops_every_process_of_a_background_demo(running_demo: tuple[Background, Path, int]) -> None:
    demo, _, _ = running_demo
    pids = _pids(demo.output())
    assert len(pids) == 14, pids
    assert demo.stop(signal.SIGTERM) == 0
    out = demo.output()
    assert "SIGTERM received: stopping every process the demo started" in out
    assert "stopped 14 processes after SIGTERM" in out
    assert {name for name in pids if f"stopped {name} (pid {pids[name]})" in out} == set(pids)
    assert [name for name, pid in pids.items() if not _gone(pid)] == []
    assert "Traceback" not in out


@pytest.fixture(scope="module")
def stopped_demo(running_demo: tuple[Background, Path, int]) -> tuple[Path, int]:
    """The data dir and port offset of ``running_demo`` once it has stopped (the SIGTERM test
    above stops it): its history is fresh for a demo on those ports, so a demo started on a
    copy (:func:`history_of`) reuses it and starts its processes at once."""
    demo, cwd, offset = running_demo
    demo.kill()  # stopped already when the SIGTERM test ran
    return cwd / "demo-data", offset


def history_of(stopped: tuple[Path, int], data: Path) -> list[str]:
    """A data dir holding a copy of the stopped demo's history (its blocks, its record and the
    estate's epoch), and the options that start a demo on it with the same ports and days."""
    source, offset = stopped
    shutil.copytree(source / "prometheus", data / "prometheus")
    shutil.copy2(source / STAMP, data / STAMP)
    (data / "snmpsim").mkdir()
    shutil.copy2(source / "snmpsim" / "epoch", data / "snmpsim" / "epoch")
    return [f"--port-offset={offset}", f"--data.dir={data}", HISTORY]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_starting_stops_everything(
    tmp_path: Path, sig: signal.Signals, stopped_demo: tuple[Path, int]
) -> None:
    """Before anything is ready (snmpsim still opening its recordings) a signal stops every
    process; SIGINT too, although a background job starts with SIGINT ignored. (The history
    is a copy of the module's demo's, reused: the backfill's own signal test is above.)"""
    demo = Background(tmp_path, *history_of(stopped_demo, tmp_path / "data"))
    try:
        _wait_for(lambda: len(_pids(demo.output())) == 14, 120, "14 processes started")
        pids = _pids(demo.output())
        assert demo.stop(sig) == 0
    finally:
        demo.kill()
    assert "history: reusing the " in demo.output(), demo.output()[-2000:]
    assert len(pids) == 14, pids
    assert [name for name, pid in pids.items() if not _gone(pid)] == []
    assert f"stopped 14 processes after {sig.name}" in demo.output()


def test_a_process_that_cannot_bind_fails_the_start_with_its_log(
    tmp_path: Path, stopped_demo: tuple[Path, int]
) -> None:
    """The demo exits 1 with the last lines of the process's log, and every process it started
    is gone. (On a copy of the module's demo's history, reused, as the signal tests above.)"""
    options = history_of(stopped_demo, tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", Ports().shifted(stopped_demo[1]).prometheus))
        taken.listen()
        proc = subprocess.run(
            [*DEMO, *options],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    log = tmp_path / "logs" / "prometheus.log"
    head, _, tail = proc.stdout.partition(f"error: prometheus exited with code 1; the last lines of {log}:\n")
    assert "bind: address already in use" in tail, proc.stdout[-3000:]
    assert "history: reusing the " in head
    assert [name for name, pid in _pids(head).items() if not _gone(pid)] == []


def test_port_offset_moves_every_port(tmp_path: Path) -> None:
    assert Ports().shifted(100).all() == [p + 100 for p in Ports().all()]
    assert Ports().backup_exporter == 9817
    assert Ports().shifted(100).snmp_agent == 1261
    inventory = write_estate_inventory(tmp_path / "inventory.yml", Ports().shifted(7))
    devices = [d for c in inventory.customers for s in c.sites for d in s.devices]
    assert len(devices) == 15 and {d.address.rsplit(":", 1)[1] for d in devices} == {"1168"}
    assert {s.url for c in inventory.customers for s in c.backup_sources if s.kind == "veeam"} == {
        "http://127.0.10.50:9426",
        "http://127.0.20.50:9426",
    }
    write_targets(inventory, tmp_path / "targets")
    groups = json.loads((tmp_path / "targets" / "snmp.json").read_text())
    assert len(groups) == 15 and all(g["targets"][0].endswith(":1168") for g in groups)


def test_readiness_refuses_a_process_that_is_not_ours(tmp_path: Path) -> None:
    """Something else answering on the port does not count as our process being ready."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(tmp_path / "n.jsonl"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/-/identity"
        runner = Runner(tmp_path)
        with pytest.raises(DemoError, match=rf"answered by pid {os.getpid()}, not ours \(1\)"):
            wait_http(url, runner, 1, expect=own_pid(1))
        assert wait_http(url, runner, 1, expect=own_pid(os.getpid())) == f'{{"pid": {os.getpid()}}}'.encode()
    finally:
        server.shutdown()
        server.server_close()
    old = b"prometheus_build_info 1\nprocess_start_time_seconds 900\n"
    assert own_metrics("prometheus_build_info", 1000)(old) == "a process that started 100s before the demo"
    assert own_metrics("alertmanager_build_info", 800)(old) == "no alertmanager_build_info"


def test_runner_stops_every_process_when_one_exits(tmp_path: Path) -> None:
    out = io.StringIO()
    runner = Runner(tmp_path, out)
    runner.add("sleeper", ["sleep", "60"])
    runner.add("failing", ["sh", "-c", "echo one; echo 'two: port taken'; exit 3"])
    assert runner.run(lambda: runner.sleep(60) or 0) == 1
    assert runner.exited.keys() == {"sleeper", "failing"} and runner.exited["failing"] == 3
    assert (tmp_path / "failing.log").read_text() == "one\ntwo: port taken\n"
    lines = out.getvalue().splitlines()
    assert lines[-3:] == [
        f"error: failing exited with code 3; the last lines of {tmp_path / 'failing.log'}:",
        "  one",
        "  two: port taken",
    ]
    assert f"stopped sleeper (pid {runner.pids['sleeper']})" in lines
    assert all(_gone(pid) for pid in runner.pids.values())


def test_runner_takes_a_signal_that_lands_while_it_writes(tmp_path: Path) -> None:
    """honcho's signal handler reports "SIGINT received" through write() on the main thread,
    possibly while that thread is inside write(): the runner must not deadlock there."""
    runner = Runner(tmp_path, io.StringIO())

    def signal_inside_write() -> None:
        with runner._lock:  # the main thread is writing a line when the signal lands
            runner.write(Message("line", "SIGINT received\n", None, "honcho", None))

    thread = threading.Thread(target=signal_inside_write, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "write() deadlocked on its own lock"
    assert runner.signal == "SIGINT" and runner.stopping


def test_runner_stops_every_process_when_the_steps_end(tmp_path: Path) -> None:
    runner = Runner(tmp_path, io.StringIO())
    runner.add("a", ["sleep", "60"])
    runner.add("b", ["sleep", "60"])
    assert runner.run(lambda: 7) == 7
    assert set(runner.exited) == {"a", "b"} and runner.failed is None
    assert all(_gone(pid) for pid in runner.pids.values())


def test_backup_scrape_job_follows_the_multi_target_pattern(tmp_path: Path) -> None:
    config = prometheus_config(Ports().shifted(5), tmp_path, areas())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert list(jobs) == [
        "snmp",
        "icmp",
        "snmp-exporter",
        "blackbox",
        "backup",
        "backup-exporter",
        "m365",
        "m365-exporter",
        "patch",
        "patch-exporter",
        "inventory",
        "inventory-exporter",
        "alertmanager",
        "prometheus",
    ]
    backup = jobs["backup"]
    assert backup["metrics_path"] == "/backup"
    assert backup["file_sd_configs"] == [{"files": [str(tmp_path / "backup.json")]}]
    assert backup["relabel_configs"][:2] == jobs["snmp"]["relabel_configs"][:2]
    assert backup["relabel_configs"][2] == {"target_label": "__address__", "replacement": "127.0.0.1:9822"}
    assert jobs["backup-exporter"]["static_configs"] == [{"targets": ["127.0.0.1:9822"]}]
    assert [Path(p).name for p in config["rule_files"]] == [
        "snmp.yml",
        "backup.yml",
        "m365.yml",
        "patch.yml",
        "availability.yml",
        "recording.yml",
        "slo.yml",
        "slo-targets.yml",
    ]
    m365 = jobs["m365"]
    assert m365["metrics_path"] == "/m365"
    assert m365["file_sd_configs"] == [{"files": [str(tmp_path / "m365.json")]}]
    assert m365["relabel_configs"][:2] == jobs["snmp"]["relabel_configs"][:2]
    assert m365["relabel_configs"][2] == {"target_label": "__address__", "replacement": "127.0.0.1:9823"}
    assert jobs["m365-exporter"]["static_configs"] == [{"targets": ["127.0.0.1:9823"]}]
    patch = jobs["patch"]
    assert patch["metrics_path"] == "/patch"
    assert patch["file_sd_configs"] == [{"files": [str(tmp_path / "patch.json")]}]
    assert patch["relabel_configs"][2] == {"target_label": "__address__", "replacement": "127.0.0.1:9824"}
    assert jobs["patch-exporter"]["static_configs"] == [{"targets": ["127.0.0.1:9824"]}]
    assert jobs["icmp"]["relabel_configs"][2] == {
        "target_label": "__address__",
        "replacement": "127.0.0.1:9120",
    }
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:9095"]}]
    assert config["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:9098"]}]}]}
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = subprocess.run(
        [require_tool("promtool"), "check", "config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_m365_inventory_scenario_and_config_agree() -> None:
    """Each demo customer has a tenant the estate scenario serves (same name and tenant id),
    and the demo's exporter config reads the inventory's tenants with the scenario's app."""
    inventory = load_inventory(ROOT / "simulators" / "estate" / "inventory.yml")
    scenario = {t.name: t for t in load_scenario(SCENARIOS_DIR / "estate.yaml").tenants}
    tenants = {t.name: t for c in inventory.customers for t in c.m365_tenants}
    assert {c.name: [t.name for t in c.m365_tenants] for c in inventory.customers} == {
        "acme-dental": ["acme"],
        "bolt-logistics": ["bolt"],
    }
    for name, tenant in tenants.items():
        assert scenario[name].tenant_id == tenant.tenant_id
    config = exporter_config(Ports().shifted(7))
    assert config["inventory"] == "inventory.yml" and "tenants" not in config
    assert config["graph"]["url"] == config["graph"]["authority_host"] == "https://127.0.0.1:9450"
    client_ids = {c.client_id for name in tenants for c in scenario[name].clients}
    assert client_ids == {config["apps"]["msp"]["client_id"]}


def test_patch_config_and_intune_tenant_agree() -> None:
    """bolt-intune reads a tenant the Graph estate serves with managed devices, through the
    Microsoft 365 app; the demo's patch.yml has the Graph port and a table dated on the
    latest two Patch Tuesdays (on 1 December 2026: 10 November and 13 October)."""
    from mspwatch.demo.patch import exporter_config as patch_config
    from mspwatch.inventory import IntuneSource

    inventory = load_inventory(ROOT / "simulators" / "estate" / "inventory.yml")
    intune = {c.name: s for c in inventory.customers for s in c.patch_sources if isinstance(s, IntuneSource)}
    assert {c: s.name for c, s in intune.items()} == {"bolt-logistics": "bolt-intune"}
    scenario = {t.name: t for t in load_scenario(SCENARIOS_DIR / "estate.yaml").tenants}
    assert len(scenario[intune["bolt-logistics"].tenant].managed_devices or []) == 7
    config = patch_config(Ports().shifted(7), dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC).timestamp())
    assert config["graph"]["url"] == config["graph"]["authority_host"] == "https://127.0.0.1:9450"
    assert config["graph"]["ca_file"] == "graph-tls/ca.pem"  # the m365 area's, beside it
    assert config["apps"] == exporter_config(Ports())["apps"]
    assert config["intune"]["quality_updates"] == [
        {"build": "10.0.26100", "revision": 7171, "released": "2026-10-13"},
        {"build": "10.0.26100", "revision": 7462, "released": "2026-11-10"},
    ]


def test_alertmanager_demo_config_keeps_the_routing(tmp_path: Path) -> None:
    """Only the webhook URLs and token files differ from the committed config."""
    committed = yaml.safe_load((ROOT / "compose" / "alertmanager.yml").read_text())
    demo = alertmanager_config(Ports().shifted(3), tmp_path / "token")
    for key in ("route", "inhibit_rules", "time_intervals"):
        assert demo[key] == committed[key]
    assert webhook_receivers(demo) == [
        "dead-mans-switch",  # the Watchdog heartbeat reaches the demo receiver too
        "msp-paging",
        "msp-ticketing",
        "platform-team",
        "acme-dental-escalation",
    ]
    for receiver in demo["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            assert hook["url"] == f"http://127.0.0.1:9100/hook/{receiver['name']}"
            assert hook["http_config"]["authorization"]["credentials_file"] == str(tmp_path / "token")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(demo, sort_keys=False))
    proc = subprocess.run(
        [require_tool("amtool"), "check-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notes = tmp_path / "notifications.jsonl"
    notes.write_text('{"receiver": "msp-ticketing"}\n{"receiver": "msp-ticketing"}\n{"receiver": "msp-pa')
    assert count_notifications(notes) == {"msp-ticketing": 2}


def test_demo_receiver_appends_each_notification(tmp_path: Path) -> None:
    output = tmp_path / "notifications.jsonl"
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(output))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for receiver in ("msp-ticketing", "msp-paging", "msp-ticketing"):
            body = {"receiver": receiver, "status": "firing", "alerts": []}
            assert httpx.post(f"{url}/hook/{receiver}", json=body, timeout=5).status_code == 200
        assert httpx.get(f"{url}/-/healthy", timeout=5).status_code == 200
        assert httpx.post(f"{url}/hook/x", content=b"not json", timeout=5).status_code == 400
    finally:
        server.shutdown()
        server.server_close()
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["receiver"] for line in lines] == ["msp-ticketing", "msp-paging", "msp-ticketing"]
    assert count_notifications(output) == {"msp-ticketing": 2, "msp-paging": 1}


def _session(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _in_session(sid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _session(int(p.name)) == sid]


def _children(pid: int) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(proc.name))
        except (FileNotFoundError, IndexError, ValueError):
            continue
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def test_sigterm_during_the_backfill_stops_promtool(tmp_path: Path) -> None:
    """The history is written by a child in its own session; a signal stops it and every
    promtool it runs, and nothing of the stack starts."""
    offset = free_offset(load_inventory(ESTATE_INVENTORY))
    demo = Background(
        tmp_path, f"--port-offset={offset}", f"--data.dir={tmp_path / 'data'}", "--history-days=10"
    )
    try:
        sessions: set[int] = set()  # the history child's session: the child is its leader

        def promtool_runs() -> bool:
            sessions.update(_children(demo.pid))
            return any(_comm(p) == "promtool" for sid in sessions for p in _in_session(sid))

        _wait_for(lambda: promtool_runs() or demo.shell.poll() is not None, 600, "promtool backfilling")
        assert promtool_runs(), demo.output()[-2000:]
        assert demo.stop(signal.SIGTERM) == 0
    finally:
        demo.kill()
    out = demo.output()
    assert "SIGTERM received while preparing; nothing of the stack was started" in out, out[-2000:]
    assert [pid for sid in sessions for pid in _in_session(sid)] == []
    assert _pids(out) == {}
    assert "Traceback" not in out


def test_a_fresh_history_is_reused_and_a_stale_one_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = write_estate_inventory(tmp_path / "estate" / "inventory.yml", Ports())
    runner = Runner(tmp_path)
    demo = Demo(tmp_path, Ports(), inventory, tmp_path / "targets", runner, env=dict(os.environ))
    now = time.time()
    wanted = Stamp(end=int(now) - 7200, days=35, seed=1, inventory="i", generator="g")
    block = tmp_path / "prometheus" / "01BLOCK"
    block.mkdir(parents=True)
    assert (
        stale_because(None, wanted, tmp_path / "prometheus", now) == "no record of a history in this data dir"
    )
    assert (
        stale_because(wanted, wanted, tmp_path / "prometheus", now)
        == "the Prometheus data dir holds no blocks"
    )
    (block / "meta.json").write_text("{}")
    assert stale_because(wanted, wanted, tmp_path / "prometheus", now) is None
    assert (
        stale_because(wanted, Stamp(**{**vars(wanted), "days": 3}), tmp_path / "prometheus", now)
        == "the days changed"
    )
    assert (
        stale_because(wanted, wanted, tmp_path / "prometheus", now + 86400)
        == "it ended 1d ago (more than a day)"
    )
    # A stamp written by this demo's inventory and generator: reused, nothing is run.
    from mspwatch.demo.past import _digest, generator_digest

    fresh = Stamp(
        end=int(now) - 7200,
        days=35,
        seed=1,
        inventory=_digest(tmp_path / "estate" / "inventory.yml"),
        generator=generator_digest(),
    )
    write_stamp(tmp_path, fresh)
    assert prepare_history(demo, tmp_path / "estate" / "inventory.yml", 35) == fresh
    assert capsys.readouterr().out == (
        "history: reusing the 35 days written 2h ago (the time since, when the demo was not running, "
        "shows as no data)\n"
    )
    assert read_stamp(tmp_path) == fresh and (tmp_path / STAMP).exists() and block.exists()


def test_the_history_gives_the_inventory_series_the_live_scrape_instance(tmp_path: Path) -> None:
    """One series across the demo's start: the backfilled inventory series carry the
    ``instance`` the demo's Prometheus gives its scrape of job ``inventory``."""
    from mspwatch.demo.availability import AvailabilityArea, inventory_instance
    from mspwatch.simulators.history.demo import estate_history, load_estate
    from mspwatch.simulators.history.series import history_series

    ports = Ports().shifted(7)
    [job] = [j for j in AvailabilityArea().scrape_configs(ports, tmp_path) if j["job_name"] == "inventory"]
    live = job["static_configs"][0]["targets"]
    assert live == [inventory_instance(ports)] == ["127.0.0.1:9828"]
    assert "relabel_configs" not in job  # the target's address is its instance
    history = estate_history(
        load_estate(), 1_764_590_400, days=1, inventory_instance=inventory_instance(ports)
    )
    inventory = [s for s in history_series(history) if s.name.startswith("inventory_")]
    assert {s.name for s in inventory} == {
        "inventory_device_info",
        "inventory_contract_measuring",
        "inventory_maintenance_active",
    }
    assert {(dict(s.labels)["job"], dict(s.labels)["instance"]) for s in inventory} == {
        ("inventory", live[0])
    }
