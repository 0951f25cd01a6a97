"""The demo's past: the estate's history backfilled before Prometheus starts, and last
month's PDFs written once the stack runs.

Before any process starts, ``prepare_history`` writes ``--history-days`` (35) days of the
estate (``mspwatch.simulators.history``, for the demo's own copy of the inventory, so the
labels are the live ones) as OpenMetrics day files and turns them into TSDB blocks inside
``<data dir>/prometheus`` with promtool -- in a child process of its own session, so Ctrl-C
stops it and every promtool it runs. ``<data dir>/history.json`` records what was written;
a second start reuses it while it is fresh (same days, inventory and generator; ended less
than a day ago), and says so::

    history: reusing the 35 days written 2h ago (the 2h since, when the demo was not
    running, show as no data)

How the past meets the live estate (the rule the history generator follows):

- The history ends at the minute the demo starts, not three hours before: the blocks go into
  a fresh data dir before Prometheus starts, so no head block can overlap them (tried with
  Prometheus 2.42: live samples append right after the newest block). The few minutes the
  demo takes to start are a short gap of no data, as a restarted monitoring server leaves.
- Every outage, blip, gap, incident and flapping alert of the history ends before its last
  day; what is still wrong when the demo starts is the live simulators' story, which starts
  at the live start (a history outage never ends twice).
- Uptimes and interface byte counters: when the history is written, the estate's epoch
  (``<data dir>/snmpsim/epoch``, from which snmpsim's living recordings count) is set to the
  history's first minute, and the history samples the same formula the agents serve
  (``mspwatch.simulators.history.live``): one series per counter, no reset, no jump at the
  start (``resets()`` and ``rate()`` see one agent that never rebooted).

After every area is ready, ``write_reports`` runs ``mspwatch report`` for last month against
the demo's Prometheus into ``<data dir>/reports/<YYYY-MM>/`` (again a child stopped on Ctrl-C).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .availability import inventory_instance
from .kit import ROOT, Demo, get_json, query, run_step
from .runner import DemoError

HISTORY_DAYS = 35
SEED = 1
FRESH_SECONDS = 86400  # a history that ended longer ago is written again
STAMP = "history.json"
COUNTERS_SECONDS = 120  # how long --check waits for the first live interface counters
GENERATOR = ROOT / "simulators" / "history"


def last_month(now: float) -> str:
    """The month before ``now`` (UTC), YYYY-MM.

    >>> last_month(dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC).timestamp())
    '2026-11'
    >>> last_month(dt.datetime(2027, 1, 31, tzinfo=dt.UTC).timestamp())
    '2026-12'
    """
    first = dt.datetime.fromtimestamp(now, dt.UTC).replace(day=1)
    return f"{first - dt.timedelta(days=1):%Y-%m}"


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def generator_digest() -> str:
    """Changes whenever what the history is made of does: the generator's code, the living
    recordings' formula, the NinjaOne scenario's devices (then the history is rewritten)."""
    scenario = ROOT / "simulators" / "ninjaone" / "scenarios" / "estate.yaml"
    return _digest(*sorted(GENERATOR.glob("*.py")), ROOT / "simulators" / "snmp" / "__init__.py", scenario)


@dataclass(frozen=True)
class Stamp:
    """What ``<data dir>/history.json`` records about the backfilled history."""

    end: int  # the history's end (Unix seconds): the demo's first start
    days: int
    seed: int
    inventory: str  # digest of the demo's inventory copy (ports are labels: instance)
    generator: str
    reports: str = ""  # the month whose PDFs were written from this history


def read_stamp(work: Path) -> Stamp | None:
    try:
        return Stamp(**json.loads((work / STAMP).read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def write_stamp(work: Path, stamp: Stamp) -> None:
    tmp = work / f"{STAMP}.tmp"
    tmp.write_text(json.dumps(asdict(stamp), indent=2) + "\n", encoding="utf-8")
    tmp.replace(work / STAMP)


def _ago(seconds: float) -> str:
    """>>> _ago(30), _ago(7300), _ago(200000)
    ('0m', '2h', '2d')
    """
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h"
    return f"{seconds // 86400:.0f}d"


def stale_because(stamp: Stamp | None, wanted: Stamp, tsdb: Path, now: float) -> str | None:
    """Why the history in ``tsdb`` must be written again, or None to reuse it."""
    if stamp is None:
        return "no history yet" if not tsdb.exists() else "no record of a history in this data dir"
    if not any(tsdb.glob("*/meta.json")):
        return "the Prometheus data dir holds no blocks"
    for field, what in (
        ("days", "days"),
        ("seed", "seed"),
        ("inventory", "estate inventory (or --port-offset)"),
        ("generator", "history generator"),
    ):
        if getattr(stamp, field) != getattr(wanted, field):
            return f"the {what} changed"
    if now - stamp.end > FRESH_SECONDS:
        return f"it ended {_ago(now - stamp.end)} ago (more than a day)"
    return None


def prepare_history(demo: Demo, inventory_file: Path, days: int) -> Stamp:
    """Backfill the history into the demo's Prometheus data dir, or reuse a fresh one."""
    now = time.time()
    tsdb = demo.work / "prometheus"
    wanted = Stamp(
        end=int(now) - int(now) % 60,
        days=days,
        seed=SEED,
        inventory=_digest(inventory_file),
        generator=generator_digest(),
    )
    stamp = read_stamp(demo.work)
    reason = stale_because(stamp, wanted, tsdb, now)
    if reason is None and stamp is not None:
        print(
            f"history: reusing the {stamp.days} days written {_ago(now - stamp.end)} ago "
            f"(the time since, when the demo was not running, shows as no data)",
            flush=True,
        )
        return stamp
    if tsdb.exists():
        print(f"history: writing it again ({reason}); removing the old {tsdb}", flush=True)
        shutil.rmtree(tsdb)
    else:
        print(f"history: writing {days} days of the estate ({reason})", flush=True)
    (demo.work / STAMP).unlink(missing_ok=True)
    # The estate's agents count from the history's first minute (snmp.py reads the epoch):
    # the history samples their formula, the live part continues it.
    since = wanted.end - days * 86400
    epoch = demo.work / "snmpsim" / "epoch"
    epoch.parent.mkdir(parents=True, exist_ok=True)
    epoch.write_text(f"{since}\n", encoding="utf-8")
    day_files = demo.work / "history"
    shutil.rmtree(day_files, ignore_errors=True)
    rc = run_step(
        [
            sys.executable,
            "-m",
            "mspwatch.demo.past",
            f"--inventory={inventory_file}",
            f"--days={days}",
            f"--end={wanted.end}",
            f"--seed={wanted.seed}",
            f"--out={day_files}",
            f"--backfill={tsdb}",
            f"--snmp-data={demo.work / 'snmpsim' / 'data'}",
            f"--since={since}",
            f"--inventory-instance={inventory_instance(demo.ports)}",
        ],
        env=demo.env,
    )
    if rc != 0:
        shutil.rmtree(tsdb, ignore_errors=True)
        raise DemoError(f"writing the history failed (exit code {rc}; its output is above)")
    shutil.rmtree(day_files, ignore_errors=True)  # hundreds of MB, now inside the blocks
    write_stamp(demo.work, wanted)
    return wanted


def reports_dir(demo: Demo, month: str) -> Path:
    return demo.work / "reports" / month


def pdfs(demo: Demo, month: str) -> list[Path]:
    return sorted(reports_dir(demo, month).glob("*.pdf"))


def write_reports(demo: Demo, inventory_file: Path, month: str, stamp: Stamp) -> list[Path]:
    """Last month's PDFs from the demo's Prometheus (once per history and month)."""
    if stamp.reports == month and pdfs(demo, month):
        print(f"reports: the {month} PDFs of this history are written already", flush=True)
        return pdfs(demo, month)
    print(f"reports: writing the {month} PDFs from the demo's Prometheus ...", flush=True)
    t0 = time.monotonic()
    rc = run_step(
        [
            sys.executable,
            "-m",
            "mspwatch.cli",
            "report",
            f"--month={month}",
            f"--prometheus-url={demo.prometheus_url}",
            f"--inventory={inventory_file}",
            f"--out={demo.work / 'reports'}",
        ],
        demo.procs,
        env=demo.env,
    )
    if rc != 0:
        raise DemoError(f"mspwatch report --month {month} failed (exit code {rc}; its output is above)")
    print(f"reports: {len(pdfs(demo, month))} PDFs in {time.monotonic() - t0:.0f} s", flush=True)
    write_stamp(demo.work, Stamp(**{**asdict(stamp), "reports": month}))
    return pdfs(demo, month)


# --- checks ------------------------------------------------------------------------------


def check_history(demo: Demo, days: int) -> bool:
    """Each customer has samples in each of the last ``min(days, 30)`` days (a query over 30
    days, one point a day)::

        history acme-dental: samples on 30 of the last 30 days
    """
    span = min(days, 30)
    end = time.time()
    ok = True
    for customer in sorted(c.name for c in demo.inventory.customers):
        promql = f'count(count_over_time(probe_success{{customer="{customer}"}}[1d]))'
        params = {
            "query": promql,
            "start": f"{end - (span - 1) * 86400:.0f}",
            "end": f"{end:.0f}",
            "step": "1d",
        }
        result = get_json(f"{demo.prometheus_url}/api/v1/query_range?" + urllib.parse.urlencode(params))
        points = result["data"]["result"][0]["values"] if result["data"]["result"] else []
        have = sum(1 for _, v in points if float(v) > 0)
        print(f"history {customer}: samples on {have} of the last {span} days")
        ok = ok and have == span
    return ok


def check_continuity(demo: Demo, stamp: Stamp) -> bool:
    """The agents' uptimes and byte counters run on from the history into the live part as
    one series each: each series' first live sample is not below its last history sample
    (a 32-bit counter may wrap, as the real ones do every few minutes at 100 Mbit/s)::

        history meets live: 15 uptimes and 134 byte counters run on (2 32-bit wraps), 0 reset at the start
    """
    # The interface walks come after the SNMP area is up (a busy snmpsim answers the system
    # group first): wait for the first live byte counters.
    live = 'count(count_over_time(snmp_interface_receive_bytes_total{job="snmp"}[1m]))'
    end = time.monotonic() + COUNTERS_SECONDS
    while not query(demo.prometheus_url, live) and time.monotonic() < end:
        demo.procs.sleep(5)
    span = min(time.time() - stamp.end, 3600) + 600  # the history's last 10 minutes and the live part
    names = (
        "snmp_device_uptime_seconds",
        "snmp_interface_receive_bytes_total",
        "snmp_interface_transmit_bytes_total",
    )
    ran, wraps, resets = {name: 0 for name in names}, 0, 0
    for name in names:
        promql = f'{name}{{job="snmp"}}[{span:.0f}s] @ {stamp.end - 600 + span:.0f}'
        for series in query(demo.prometheus_url, promql):
            points = [(float(t), float(v)) for t, v in series["values"]]
            before = [v for t, v in points if t < stamp.end]
            after = [v for t, v in points if t >= stamp.end]
            if not before or not after:
                continue  # no history (a counter that never moved) or not scraped live yet
            if after[0] >= before[-1]:
                ran[name] += 1
            elif name != names[0] and before[-1] < 2.0**32:
                wraps += 1
            else:
                resets += 1
    uptimes, counters = ran[names[0]], ran[names[1]] + ran[names[2]]
    print(
        f"history meets live: {uptimes} uptimes and {counters} byte counters run on "
        f"({wraps} 32-bit wraps), {resets} reset at the start"
    )
    if not query(demo.prometheus_url, live):
        # A busy machine: snmpsim answers the interface tables after the scrape deadline
        # (SnmpProfileFailing); the counters cannot be judged, which is not a reset.
        print("history meets live: no live interface counters yet (interface walks past the scrape deadline)")
    devices = sum(1 for c in demo.inventory.customers for s in c.sites for d in s.devices if d.snmp_auth)
    return uptimes == devices and resets == 0


def check_inventory_series(demo: Demo, stamp: Stamp) -> bool:
    """The inventory exporter's device series run on from the history into the live part as
    one series each: the history carries the live scrape's ``instance``::

        history meets live: 15 of 15 inventory devices one series each (instance 127.0.0.1:9821)
    """
    span = min(time.time() - stamp.end, 3600) + 900  # the history's last 15 minutes, the live part
    promql = f'inventory_device_info{{job="inventory"}}[{span:.0f}s] @ {stamp.end - 900 + span:.0f}'
    found: dict[tuple[str, str, str], list[tuple[str, bool, bool]]] = {}
    for series in query(demo.prometheus_url, promql):
        m = series["metric"]
        times = [float(t) for t, _ in series["values"]]
        key = (m.get("customer", ""), m.get("site", ""), m.get("device", ""))
        found.setdefault(key, []).append(
            (m.get("instance", ""), any(t < stamp.end for t in times), any(t >= stamp.end for t in times))
        )
    one = sum(1 for v in found.values() if len(v) == 1 and v[0][1] and v[0][2])
    devices = sum(len(s.devices) for c in demo.inventory.customers for s in c.sites)
    instances = ", ".join(sorted({i for v in found.values() for i, _, _ in v})) or "none"
    print(f"history meets live: {one} of {devices} inventory devices one series each (instance {instances})")
    return one == devices


def check_reports(demo: Demo, month: str) -> bool:
    """Every customer's PDF (and the summary) is there, non-empty, and names the customer."""
    ok = True
    for customer in demo.inventory.customers:
        path = reports_dir(demo, month) / f"{customer.name}.pdf"
        text = pdf_text(path)
        found = (customer.display_name or customer.name) in text
        size = path.stat().st_size if path.exists() else 0
        print(f"report {customer.name} {month}: {path} ({size:,} bytes, names the customer: {found})")
        ok = ok and size > 0 and found
    summary = reports_dir(demo, month) / "summary.pdf"
    print(f"report summary {month}: {summary} ({summary.stat().st_size if summary.exists() else 0:,} bytes)")
    return ok and summary.exists() and summary.stat().st_size > 0


def pdf_text(path: Path) -> str:
    if not path.exists():
        return ""
    proc = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, timeout=60, check=False
    )
    return proc.stdout


# --- the child that writes the history ---------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mspwatch.demo.past``: write the history and backfill it, with progress."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from mspwatch.simulators.history.demo import ESTATE, estate_history, load_estate
    from mspwatch.simulators.history.live import live_devices
    from mspwatch.simulators.history.model import INVENTORY_INSTANCE
    from mspwatch.simulators.history.write import backfill, backfill_rules, write_openmetrics

    p = argparse.ArgumentParser(prog="python -m mspwatch.demo.past", description=main.__doc__)
    p.add_argument("--inventory", type=Path, required=True)
    p.add_argument("--days", type=int, required=True)
    p.add_argument("--end", type=int, required=True, help="Unix seconds: the history's end")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--out", type=Path, required=True, help="directory for the OpenMetrics day files")
    p.add_argument("--backfill", type=Path, required=True, help="Prometheus data dir to fill")
    p.add_argument("--snmp-data", type=Path, help="the demo's snmpsim data dir (its living recordings)")
    p.add_argument("--since", type=float, help="the estate's epoch: the agents count from it")
    p.add_argument(
        "--inventory-instance",
        default=INVENTORY_INSTANCE,
        help="the live scrape's instance of job inventory (the demo's 127.0.0.1:<port>)",
    )
    args = p.parse_args(argv)
    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
    with Progress(*columns, transient=False) as progress:
        t0 = time.monotonic()
        task = progress.add_task(f"history: generating {args.days} days of the estate")
        inventory = load_estate(args.inventory)
        live = None
        if args.snmp_data is not None and args.since is not None:
            progress.update(task, description="history: reading the agents' living recordings")
            live = live_devices(inventory, ESTATE.parent / "snmp.yml", args.snmp_data, args.since)
            progress.update(task, description=f"history: generating {args.days} days of the estate")
        history = estate_history(inventory, args.end, args.days, args.seed, live, args.inventory_instance)
        files = write_openmetrics(history, args.out)
        progress.update(task, description=f"history: {len(files)} day files written")
        progress.stop_task(task)
        task = progress.add_task(f"history: backfilling {len(files)} day files with promtool")
        blocks = backfill(files, args.backfill)
        progress.update(task, description=f"history: {blocks} blocks in {args.backfill}")
        progress.stop_task(task)
        # The recorded availability series over the past too (alertrules/availability.yml),
        # so the SLA board's month to date and the report read them as they will live.
        task = progress.add_task("history: recording the availability rules over the past")
        blocks = backfill_rules(args.backfill, history.start, history.end)
        progress.update(task, description=f"history: availability rules recorded ({blocks} blocks)")
        progress.stop_task(task)
    print(f"history: {args.days} days written and backfilled in {time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
