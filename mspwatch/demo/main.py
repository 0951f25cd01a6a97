"""``mspwatch demo``: the stack on the built-in simulated customer estate.

Starts, on loopback only, area by area: snmpsim with real device recordings (one address
per device), the SNMP exporter and blackbox_exporter for ping; each customer's Veeam B&R
server (the Veeam simulator, clock running with real time), restic and drop-folder backup
files and the backup exporter; each customer's Microsoft 365 tenant (the Graph simulator,
HTTPS, clock running with real time) and the Microsoft 365 exporter; Alertmanager with the
committed routing, its webhooks sent to a receiver that writes notifications.jsonl; then
Prometheus scraping them all through file_sd targets written from
``simulators/estate/inventory.yml``, with the SNMP, backup and Microsoft 365 alert rules loaded
and its alerts sent to that Alertmanager. The processes run under honcho (``runner.py``):
Ctrl-C or SIGTERM stops every one of them, as does one of them exiting.
Before anything starts, the demo backfills ``--history-days`` (35) days of the estate's past
into Prometheus's data dir (reused on the next start while fresh, see ``past.py``); once every
area is ready it writes last month's PDFs with ``mspwatch report`` and prints one table of
where everything is.
``--check`` runs a demo of its own (a fresh data directory and free ports unless given), waits
until every target has been scraped, checks the history (30 days for each customer, the agents'
counters running on across the start), one delivered alert per area with a failing scenario
and the PDFs, prints a summary per area and exits. Aimed at the data dir of a demo that runs
(``--data.dir=D``, or ./demo-data when a demo holds it), ``--check`` checks THAT demo the same
way, with its ports, history and report month (``<data dir>/running.json``, written once it is
ready), and exits 0 or 1 without starting or stopping anything::

    $ mspwatch demo &          # ./demo-data
    $ mspwatch demo --check    # checks the demo above; it keeps running
    data and logs: <the current directory>/demo-data
    checking the demo running there (pid 4242) as it runs: nothing is started or stopped
    ...
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mspwatch.inventory import load_inventory, write_targets
from mspwatch.simulators.history.demo import LIVE_PROBLEMS

from .alerting import AlertingArea, area_alerts, check_delivered
from .availability import AvailabilityArea
from .backup import BackupArea
from .kit import (
    ESTATE,
    Demo,
    DemoArea,
    Interrupted,
    Ports,
    canonical_prometheus,
    demo_jobs,
    free_offset,
    own_metrics,
    raise_on_signals,
    tool,
    wait_http,
    write_estate_inventory,
)
from .m365 import M365Area
from .past import (
    HISTORY_DAYS,
    Stamp,
    check_continuity,
    check_history,
    check_inventory_series,
    check_reports,
    last_month,
    pdfs,
    prepare_history,
    read_stamp,
    reports_dir,
    write_reports,
)
from .patch import PatchArea
from .runner import DemoError, Runner
from .snmp import SnmpArea

__all__ = ["Ports", "areas", "prometheus_config", "register", "run"]

RESEND_DELAY = "5s"
# The alerts the history leaves firing are restored and sent within minutes; the others wait
# their `for:` (up to an hour) before anything is delivered.
DELIVERY_SECONDS = 900
DEFAULT_DATA = Path("demo-data")
RUNNING = "running.json"  # what a --check of the running demo reads, written once it is ready
READY_SECONDS = 3600  # how long a --check waits for a running demo that is still preparing


def areas() -> list[DemoArea]:
    """The demo's areas, in start order. A new area is a DemoArea subclass added here."""
    return [SnmpArea(), BackupArea(), M365Area(), PatchArea(), AvailabilityArea(), AlertingArea()]


def prometheus_config(
    ports: Ports, targets_dir: Path, demo_areas: list[DemoArea] | None = None
) -> dict[str, Any]:
    """compose/prometheus.yml as the demo runs it: the areas' jobs, rules and Alertmanager.

    Addresses, paths and intervals change (scrapes every 15 s, to answer sooner); the jobs,
    their relabelling and the rules are the stack's own.
    """
    demo_areas = areas() if demo_areas is None else demo_areas
    config = canonical_prometheus()
    # Rules every minute: Prometheus restores the alerts the history left firing at its second
    # evaluation, which must come after the exporters' first scrapes (seconds to a minute).
    config["global"] = {"scrape_interval": "15s", "scrape_timeout": "10s", "evaluation_interval": "1m"}
    rules = [str(path) for area in demo_areas for path in area.rule_files()]
    config.pop("rule_files", None)
    if rules:
        config["rule_files"] = rules
    alertmanagers = [a for area in demo_areas for a in area.alertmanagers(ports)]
    config.pop("alerting", None)
    jobs = [job for area in demo_areas for job in area.scrape_configs(ports, targets_dir)]
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}]}
        jobs += demo_jobs(["alertmanager"], ports, targets_dir)
    config["scrape_configs"] = [*jobs, *demo_jobs(["prometheus"], ports, targets_dir)]
    return config


def run(args: argparse.Namespace) -> int:
    """Run the demo (or ``--check``); expected failures are one line on stdout, no traceback."""
    handlers = raise_on_signals()  # until the runner installs honcho's
    running = _holder(args.data_dir or DEFAULT_DATA) if args.check else None
    try:
        if running is not None:
            return check_running(args, *running)
        with _data_dir(args) as data:
            data.passed = (rc := _run(args, data.path)) == 0
            return rc
    except Interrupted as exc:  # while preparing: what the step started is stopped already
        if running is not None:
            print(f"{exc.signame} received: the check stopped; the running demo is untouched", flush=True)
            return 130 if exc.signame == "SIGINT" else 143
        print(f"{exc.signame} received while preparing; nothing of the stack was started", flush=True)
        return (130 if exc.signame == "SIGINT" else 143) if args.check else 0
    except DemoError as exc:
        print(f"error: {exc}", flush=True)
        return 1
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _holder(data_dir: Path) -> tuple[Path, int] | None:
    """(the data dir, the pid) when a running demo holds ``data_dir``'s lock, else None."""
    work = data_dir.resolve()
    try:
        lock = (work / ".lock").open("r", encoding="utf-8")
    except OSError:  # no such dir or lock: no demo ran there
        return None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = lock.read().strip()
            return work, int(owner) if owner.isdigit() else 0
        fcntl.flock(lock, fcntl.LOCK_UN)  # nobody holds it: no demo runs there
    return None


def write_running(work: Path, offset: int, days: int, month: str) -> None:
    """``<data dir>/running.json``: what ``--check`` of this running demo needs to know."""
    state = {"pid": os.getpid(), "port_offset": offset, "history_days": days, "report_month": month}
    tmp = work / f"{RUNNING}.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    tmp.replace(work / RUNNING)


def _wait_running(work: Path, pid: int) -> dict[str, Any]:
    """The running demo's state once it is ready (its running.json names its pid)."""
    end = time.monotonic() + READY_SECONDS
    said = False
    while True:
        try:
            state: dict[str, Any] = json.loads((work / RUNNING).read_text(encoding="utf-8"))
            if state.get("pid") == pid:
                return state
        except (FileNotFoundError, ValueError):
            pass
        if _holder(work) is None:
            raise DemoError(f"the demo that ran in {work} (pid {pid}) stopped before it was ready")
        if time.monotonic() > end:
            raise DemoError(f"the demo running in {work} (pid {pid}) was not ready within {READY_SECONDS} s")
        if not said:
            print(f"waiting for the demo running in {work} (pid {pid}) to be ready ...", flush=True)
            said = True
        time.sleep(1)


def check_running(args: argparse.Namespace, work: Path, pid: int) -> int:
    """``--check`` of the demo that runs on ``work``: every area, the history, continuity,
    deliveries and PDFs, read from its processes and files; nothing is started or stopped."""
    state = _wait_running(work, pid)
    offset, days, month = state["port_offset"], state["history_days"], state["report_month"]
    for given, theirs, what in (
        (args.port_offset, offset, "--port-offset"),
        (args.history_days, days, "--history-days"),
        (args.report_month, month, "--report-month"),
    ):
        if given is not None and given != theirs:
            raise DemoError(
                f"{what}={given}, but the demo running in {work} (pid {pid}) runs with {theirs}: "
                f"drop {what} to check it, or pass another --data.dir"
            )
    stamp = read_stamp(work)
    if stamp is None:
        raise DemoError(f"the demo running in {work} (pid {pid}) has no {work / 'history.json'}")
    inventory_file = work / "estate" / "inventory.yml"
    demo = Demo(
        work,
        Ports().shifted(offset),
        load_inventory(inventory_file),
        work / "targets",
        Runner(work / "logs"),
        dict(os.environ),
    )
    demo_areas = areas()
    for area in demo_areas:
        area.attach(demo)
    print(f"data and logs: {work}" + (f" (ports moved by {offset})" if offset else ""), flush=True)
    print(
        f"checking the demo running there (pid {pid}) as it runs: nothing is started or stopped", flush=True
    )
    try:
        print_table(demo, demo_areas, month, pdfs(demo, month))
        return _check(demo, demo_areas, days, stamp, month)
    except OSError as exc:  # it stopped while we asked (Ctrl-C in its terminal)
        raise DemoError(f"the demo running in {work} (pid {pid}) stopped answering: {exc}") from None


def _check(demo: Demo, demo_areas: list[DemoArea], days: int, stamp: Stamp, month: str) -> int:
    """Every area reports, then the history, its meeting with the live part, the deliveries
    and the PDFs; 0 if all passed, else 1."""
    results = [area.check(demo) for area in demo_areas]
    results.append(check_history(demo, days))
    results.append(check_continuity(demo, stamp))
    results.append(check_inventory_series(demo, stamp))
    live = {problem[0] for problem in LIVE_PROBLEMS}
    failing = {a.name: names for a in demo_areas if (names := area_alerts(a.rule_files())) & live}
    results.append(check_delivered(demo, failing, DELIVERY_SECONDS))
    results.append(check_reports(demo, month))
    return 0 if all(results) else 1


@dataclass
class DataDir:
    path: Path
    passed: bool = False  # a fresh --check directory is removed only if the check passed


@contextlib.contextmanager
def _data_dir(args: argparse.Namespace) -> Iterator[DataDir]:
    """The data dir, locked for this run. ``--check`` without ``--data.dir`` gets a fresh one
    (so it reports only what its own run produced), removed afterwards if the check passed."""
    fresh = args.check and args.data_dir is None
    work = Path(tempfile.mkdtemp(prefix="mspwatch-demo-check-")) if fresh else (args.data_dir or DEFAULT_DATA)
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    with (work / ".lock").open("a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            owner = lock.read().strip() or "?"
            raise DemoError(
                f"{work} is in use by a running demo (pid {owner}); stop it, or pass another --data.dir"
            ) from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        data = DataDir(work)
        try:
            if args.check and not fresh and any(p.name != ".lock" for p in work.iterdir()):
                raise DemoError(
                    f"--check wants an empty --data.dir (it reports only its own run) "
                    f"or the data dir of a running demo: {work}"
                )
            yield data
        finally:
            (work / RUNNING).unlink(missing_ok=True)
            if fresh and data.passed:
                shutil.rmtree(work, ignore_errors=True)
            elif fresh:
                print(f"the check's data and logs are kept in {work}", flush=True)


def _run(args: argparse.Namespace, work: Path) -> int:
    (work / "logs").mkdir(exist_ok=True)
    # The demo's own copy of the estate inventory carries the moved ports; every area reads it.
    default_ports = load_inventory(ESTATE / "inventory.yml")
    offset = args.port_offset
    if offset is None:
        offset = free_offset(default_ports) if args.check else 0
    ports = Ports().shifted(offset)
    inventory = write_estate_inventory(work / "estate" / "inventory.yml", ports)
    targets = work / "targets"
    write_targets(inventory, targets)
    runner = Runner(work / "logs")
    demo = Demo(work, ports, inventory, targets, runner, env=dict(os.environ))
    demo_areas = areas()
    print(f"data and logs: {work}" + (f" (ports moved by {offset})" if offset else ""), flush=True)
    t0 = time.monotonic()
    days = HISTORY_DAYS if args.history_days is None else args.history_days
    stamp = prepare_history(demo, work / "estate" / "inventory.yml", days)
    month = args.report_month or last_month(time.time())
    for area in demo_areas:
        area.start(demo)
    prom_cfg = work / "prometheus.yml"
    prom_cfg.write_text(yaml.safe_dump(prometheus_config(ports, targets, demo_areas), sort_keys=False))
    runner.add(
        "prometheus",
        [
            tool("prometheus"),
            f"--config.file={prom_cfg}",
            f"--storage.tsdb.path={work / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{ports.prometheus}",
            "--storage.tsdb.retention.time=45d",
            # Firing alerts reach Alertmanager within seconds, not the default minute.
            f"--rules.alert.resend-delay={RESEND_DELAY}",
        ],
    )

    def steps() -> int:
        wait_http(f"{demo.prometheus_url}/-/ready", runner, 60)
        wait_http(
            f"{demo.prometheus_url}/metrics",
            runner,
            60,
            expect=own_metrics("prometheus_build_info", demo.started),
        )
        for area in demo_areas:
            area.wait_ready(demo)
        print(f"stack ready {time.monotonic() - t0:.0f} s after start", flush=True)
        written = write_reports(demo, work / "estate" / "inventory.yml", month, stamp)
        print_table(demo, demo_areas, month, written)
        print(f"ready {time.monotonic() - t0:.0f} s after start", flush=True)
        if args.check:
            return _check(demo, demo_areas, days, stamp, month)
        write_running(work, offset, days, month)  # a --check of this demo reads it
        print("Ctrl-C stops everything.", flush=True)
        while True:
            for area in demo_areas:
                area.tick(demo)
            runner.sleep(1)

    rc = runner.run(steps)
    if runner.signal is not None and not args.check:
        return 0  # asked to stop, and stopped
    return rc


def print_table(demo: Demo, demo_areas: list[DemoArea], month: str, written: list[Path]) -> None:
    """One table of where everything is: URLs, files, the data dir, the PDFs."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mspwatch demo", show_header=True, header_style="bold")
    table.add_column("what", no_wrap=True)
    table.add_column("where", overflow="fold")
    table.add_row("Prometheus", demo.prometheus_url)
    for area in demo_areas:
        for what, where in area.links(demo):
            table.add_row(what, where)
    table.add_row("data dir and logs", f"{demo.work} (logs in {demo.work / 'logs'})")
    table.add_row(f"reports {month}", str(reports_dir(demo, month)))
    for pdf in written:
        table.add_row("", pdf.name)
    # Not a terminal (a log, a test): wide enough that no URL is cut.
    console = Console(width=None if sys.stdout.isatty() else 250, soft_wrap=False)
    console.print(table)
    sys.stdout.flush()


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
        default=None,
        help="where the demo keeps its data and logs (default: ./demo-data; "
        "with --check a fresh temporary directory, unless a running demo holds ./demo-data)",
    )
    defaults = ", ".join(f"{name} {port}" for name, port in vars(Ports()).items())
    p.add_argument(
        "--port-offset",
        type=int,
        default=None,
        help=f"add this to every listening port ({defaults}; the devices' UDP port too); "
        "default 0, with --check a free range",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="start a demo of its own (fresh data dir, free ports), wait until every device, "
        "backup source, Microsoft 365 tenant and patch source has been scraped, check the "
        "history, the deliveries and the PDFs, print a summary and exit 0 or 1; aimed at the "
        "data dir of a running demo (--data.dir, or ./demo-data while a demo holds it), check "
        "that demo instead, starting and stopping nothing",
    )
    p.add_argument(
        "--history-days",
        type=int,
        default=None,
        help=f"days of the estate's past to backfill before the start (default {HISTORY_DAYS}); "
        "a fresh history in the data dir is reused",
    )
    p.add_argument(
        "--report-month",
        default=None,
        metavar="YYYY-MM",
        help="the month whose PDFs the demo writes (default: last month)",
    )
    p.set_defaults(func=run)
