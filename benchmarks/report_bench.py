#!/usr/bin/env python3
"""Monthly report benchmark: 100 customers x 20 devices x 30 days in a real Prometheus.

    .venv/bin/python benchmarks/report_bench.py [--customers 100] [--devices 20] [--render 100]

Builds a synthetic estate (two sites of ``--devices / 2`` per customer, a few outages and a
blip per customer, one 47-minute gap for everyone), writes November 2026 minute by minute as
OpenMetrics day files, backfills them with promtool into a fresh data dir, starts Prometheus
on a free loopback port and then times, per customer, the queries (wall time spent waiting
for the server), the computing (the rest of building the view model) and the rendering
(charts, HTML, PDF; wall and CPU), and reports the peak memory of this process and of
Prometheus. The setup (generation, backfill) is timed but is not part of the target (under
60 s in total, under 1 s of rendering per customer). It never runs as part of ``make test``.

The backfilled data dir is kept under ``$XDG_CACHE_HOME/mspwatch-bench/<key>`` (default
``~/.cache``), the key a hash of the estate's arguments, the setup code, availability.yml and
promtool's version; a second run with the same key copies it instead of building it (17 minutes
for 100 customers at load 3-5, seconds to copy) and says so. ``--no-cache`` builds afresh in the temp dir.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import multiprocessing
import os
import pickle
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import mspwatch.simulators.history as history_pkg
from mspwatch.common.procs import cpu_seconds, peak_rss_bytes, stop_process
from mspwatch.inventory import Customer
from mspwatch.reports.build import CustomerSpec, build_customers
from mspwatch.reports.frames import RECORDED, REPORTING, UNREACHABLE
from mspwatch.reports.main import write_customers
from mspwatch.reports.model import Brand, CustomerReport
from mspwatch.reports.query import Prometheus
from mspwatch.simulators.history.model import Device, Gap, History, Outage
from mspwatch.simulators.history.series import Series, history_series
from mspwatch.simulators.history.write import (
    AVAILABILITY_RULES,
    _label_text,
    backfill_rules,
    create_blocks,
    day_bounds,
    sample_lines,
    start_prometheus,
)

START = 1793491200  # 2026-11-01T00:00:00Z
DAY = 86400
MONTH = "2026-11"


class TimedPrometheus(Prometheus):
    """Remembers when each HTTP request was in flight (two may overlap)."""

    spans: list[tuple[float, float]]

    def _get(self, path: str, params: dict[str, str]) -> Any:
        t = time.perf_counter()
        try:
            return super()._get(path, params)
        finally:
            self.spans = [*getattr(self, "spans", []), (t, time.perf_counter())]

    def busy(self) -> float:
        """Wall time with at least one request in flight."""
        total, end = 0.0, float("-inf")
        for a, b in sorted(getattr(self, "spans", [])):
            if b > end:
                total += b - max(a, end)
                end = b
        return total


def estate(customers: int, devices: int, days: int, seed: int) -> tuple[list[Customer], list[History]]:
    rng = random.Random(seed)
    end = START + days * DAY
    gap = Gap(None, START + 12 * DAY + 14 * 3600, START + 12 * DAY + 14 * 3600 + 47 * 60)
    roles = ["router", "core", "firewall", *["access"] * 5, "server", "wifi"]
    invs, histories = [], []
    for c in range(customers):
        name = f"cust{c:03d}"
        sites = []
        devs = []
        for s in range(2):
            site_devs = []
            for i in range(devices // 2):
                dev = f"dev{i:02d}"
                role = roles[i % len(roles)]
                addr = f"10.{c % 250}.{s}.{i + 1}:161"
                site_devs.append({"name": dev, "address": addr, "role": role})
                devs.append(Device(name, f"site{s}", dev, role, addr))
            sites.append({"name": f"site{s}", "devices": site_devs})
        invs.append(Customer.model_validate({"name": name, "sites": sites}))
        outages = []
        for _ in range(3):
            d = rng.choice(devs)
            t = START + rng.randint(1, days - 2) * DAY + rng.randint(0, 1400) * 60
            outages.append(Outage(name, d.site, d.device, t, t + 60 * rng.randint(5, 120)))
        d = rng.choice(devs)
        t = START + rng.randint(1, days - 2) * DAY + 600 * 60
        outages.append(Outage(name, d.site, d.device, t, t + 60))  # a blip
        histories.append(History(START, end, tuple(devs), tuple(outages), (gap,), interfaces=False))
    return invs, histories


def recorded(series: list[Series]) -> list[Series]:
    """What the report reads: ``customer_site_device:reachable:max`` as the rule
    (alertrules/availability.yml) records it at whole minutes, for each device, instead of
    its two raw series (equal in this estate); everything else as it is."""
    out = []
    for s in series:
        if s.name == "snmp_up":
            continue
        if s.name == "probe_success":
            labels = tuple((k, v) for k, v in s.labels if k in ("customer", "site", "device", "role"))
            # The raw sample at :30 is the last in the minute that ends 30 s later.
            s = Series(RECORDED, labels, s.times - s.times % 60 + 60, s.values)
        out.append(s)
    return out


def day_text(series: list[Series], lo: int, hi: int) -> str:
    """One day of samples as OpenMetrics lines; a full day of 1s is one str.replace."""
    stamps = np.arange(lo - lo % 60 + 60 if lo % 60 else lo, hi, 60, dtype=np.int64)
    up_day = "".join(f"\x00 1.0 {t}\n" for t in stamps.tolist())
    parts = []
    for s in series:
        a, b = np.searchsorted(s.times, [lo, hi])
        if b - a == len(stamps) and s.name == RECORDED and bool((s.values[a:b] == 1.0).all()):
            parts.append(up_day.replace("\x00", f"{s.name}{{{_label_text(s.labels)}}}"))
        else:
            parts.extend(sample_lines([s], lo, hi, ms=False))
    return "".join(parts)


def backfill_days(histories: list[History], data: Path, tmp: Path, promtool: str) -> tuple[int, float]:
    """Write each UTC day of every customer's recorded series and hand it to promtool while
    the next is written (two at a time), deleting each file once its blocks exist; return
    the block count and the gigabytes written."""
    series = [s for h in histories for s in recorded(history_series(h))]
    data.mkdir(parents=True, exist_ok=True)
    written = 0

    def one(path: Path) -> list[Path]:
        try:
            return create_blocks(path, tmp / f"blocks-{path.stem}", promtool)
        finally:
            path.unlink()

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = []
        for i, (lo, hi) in enumerate(day_bounds(histories[0])):
            path = tmp / f"day{i:02d}.om"
            text = day_text(series, lo, hi) + "# EOF\n"
            path.write_text(text, encoding="utf-8")
            written += len(text)
            futures.append(pool.submit(one, path))
            while sum(not f.done() for f in futures) > 2:  # bounded disk: two files waiting
                time.sleep(0.2)
        blocks = [b for f in futures for b in f.result()]
    for block in blocks:
        shutil.move(str(block), data / block.name)
    return len(blocks), written / 1e9


def backfill_companions(data: Path, tmp: Path, end: int, promtool: str) -> int:
    """Record what the report reads beside the recorded series, the rules of
    alertrules/availability.yml that record UNREACHABLE and REPORTING, over the backfilled
    month (the real rules, evaluated by a real Prometheus); return the block count."""
    groups = yaml.safe_load(AVAILABILITY_RULES.read_text(encoding="utf-8"))["groups"]
    rules = [r for g in groups for r in g["rules"] if r.get("record") in (UNREACHABLE, REPORTING)]
    assert len(rules) == 2, rules
    path = tmp / "companions.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "companions", "interval": "1m", "rules": rules}]}))
    prometheus = shutil.which("prometheus") or "prometheus"
    return backfill_rules(data, START, end, [path], prometheus=prometheus, promtool=promtool)


def cache_key(args: argparse.Namespace, promtool: str) -> str:
    """A hash of what decides the data dir's contents: the estate's arguments, the code that
    generates and writes it (this file's setup functions, the history simulator) and promtool's
    version. Anything else in this file (the report's timing) may change without a rebuild."""
    h = hashlib.sha256()
    h.update(repr((args.customers, args.devices, args.days, args.seed)).encode())
    for fn in (estate, recorded, day_text, backfill_days, backfill_companions):
        h.update(inspect.getsource(fn).encode())
    for path in sorted(Path(history_pkg.__file__).resolve().parent.glob("*.py")):
        h.update(path.read_bytes())
    version = subprocess.run([promtool, "--version"], capture_output=True, text=True, check=False)
    h.update(version.stdout.encode())
    h.update(AVAILABILITY_RULES.read_bytes())
    return h.hexdigest()[:16]


def cache_path(args: argparse.Namespace, promtool: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mspwatch-bench"
    return base / cache_key(args, promtool)


def cached_data(args: argparse.Namespace, histories: list[History], tmp: Path, promtool: str) -> Path:
    """The backfilled data dir: built once under ``$XDG_CACHE_HOME/mspwatch-bench/<key>``
    (``--no-cache``: in ``tmp``), then copied to ``tmp`` for Prometheus (which compacts and
    writes its WAL there: the cached copy stays as promtool left it)."""
    data = tmp / "data"
    t = time.perf_counter()
    if args.no_cache:
        blocks, size = backfill_days(histories, data, tmp, promtool)
        blocks += backfill_companions(data, tmp, histories[0].end, promtool)
        print(f"setup: {size:.1f} GB of OpenMetrics, {blocks} blocks in {time.perf_counter() - t:.1f} s")
        return data
    cached = cache_path(args, promtool)
    base = cached.parent
    if not (cached / "complete").exists():
        building = base / f"{cached.name}.building-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        blocks, size = backfill_days(histories, building / "data", tmp, promtool)
        blocks += backfill_companions(building / "data", tmp, histories[0].end, promtool)
        (building / "complete").write_text(f"{blocks} blocks from {size:.1f} GB of OpenMetrics\n")
        shutil.rmtree(cached, ignore_errors=True)
        building.rename(cached)
        print(
            f"setup: {size:.1f} GB of OpenMetrics, {blocks} blocks in {time.perf_counter() - t:.1f} s,"
            f" cached in {cached}",
            flush=True,
        )
    else:
        print(f"setup: reused {cached} ({(cached / 'complete').read_text().strip()})", flush=True)
    shutil.copytree(cached / "data", data)
    return data


def render_cpu() -> float:
    """CPU seconds of this process and its ended children (the rendering processes are
    waited for when the pool closes), so the difference around rendering counts both."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=100)
    p.add_argument("--devices", type=int, default=20)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--render", type=int, default=100, help="render the PDFs of this many customers")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--jobs", type=int, default=2, help="rendering processes")
    p.add_argument(
        "--save-reports", type=Path, help="pickle the view models here (profile rendering offline)"
    )
    p.add_argument("--no-cache", action="store_true", help="build the data dir afresh, do not keep it")
    args = p.parse_args()
    prometheus = shutil.which("prometheus")
    promtool = shutil.which("promtool")
    if not prometheus or not promtool:
        print("prometheus and promtool are needed (make deps)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp_name:
        tmp = Path(tmp_name)
        customers, histories = estate(args.customers, args.devices, args.days, args.seed)
        built_now = args.no_cache or not (cache_path(args, promtool) / "complete").exists()
        # In a child process: the setup's gigabytes of series never count in the report's RSS.
        setup = multiprocessing.get_context("fork").Process(
            target=cached_data, args=(args, histories, tmp, promtool)
        )
        setup.start()
        setup.join()
        if setup.exitcode != 0:
            print(f"setup failed (exit code {setup.exitcode})", file=sys.stderr)
            return 1
        del histories
        (tmp / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
        proc, url = start_prometheus(
            prometheus, tmp / "data", tmp / "prometheus.yml", tmp / "prometheus.log", timeout=600
        )
        try:
            prom = TimedPrometheus(url, timeout=300)
            load_before = os.getloadavg()
            prom_cpu = cpu_seconds(proc.pid)
            t = time.perf_counter()
            built = build_customers(prom, [CustomerSpec.from_inventory(c) for c in customers], MONTH)
            t_build = time.perf_counter() - t
            prom_cpu = cpu_seconds(proc.pid) - prom_cpu
            reports = [r for r in built if isinstance(r, CustomerReport)]
            assert len(reports) == len(customers), [
                str(r) for r in built if not isinstance(r, CustomerReport)
            ]
            incidents = sum(len(r.incidents) for r in reports)
            if args.save_reports:
                args.save_reports.write_bytes(pickle.dumps(reports))
            out = tmp / "out"
            out.mkdir()
            me_build_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            t, cpu = time.perf_counter(), render_cpu()
            rendered = list(write_customers(reports[: args.render], Brand(), out, args.jobs))
            t_render, cpu_render = time.perf_counter() - t, render_cpu() - cpu
            t_query = prom.busy()
            t_compute = t_build - t_query
            prom_mb = peak_rss_bytes(proc.pid) / 2**20
            load_after = os.getloadavg()
        finally:
            stop_process(proc)
    me_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    n, k = args.customers, max(1, len(rendered))
    print(
        f"{n} customers x {args.devices} devices x {args.days} days: "
        f"{prom.requests} requests, {incidents} incidents\n"
        f"queries   {t_query:7.1f} s  (with a request in flight; {t_query / n:.2f} s per customer;"
        f" Prometheus used {prom_cpu:.1f} s CPU)\n"
        f"computing {t_compute:7.1f} s  ({t_compute / n:.2f} s per customer)\n"
        f"rendering {t_render:7.1f} s  for {len(rendered)} PDFs in {args.jobs} process(es) "
        f"({t_render / k:.2f} s per customer; CPU {cpu_render / k:.2f} s per PDF)\n"
        f"total     {t_build + t_render:7.1f} s\n"
        f"peak RSS  report {me_mb:.0f} MiB ({me_build_mb:.0f} MiB after the queries), "
        f"largest render process {kids_mb:.0f} MiB"
        f"{' (or the setup process)' if built_now else ''}, prometheus {prom_mb:.0f} MiB\n"
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (1 min)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
