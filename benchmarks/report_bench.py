#!/usr/bin/env python3
"""Monthly report benchmark: 100 customers x 20 devices x 30 days in a real Prometheus.

    .venv/bin/python benchmarks/report_bench.py [--customers 100] [--devices 20] [--render 100]

Builds a synthetic estate (two sites of ``--devices / 2`` per customer, a few outages and a
blip per customer, one 47-minute gap for everyone), writes November 2026 minute by minute as
OpenMetrics day files, backfills them with promtool into a fresh data dir, starts Prometheus
on a free loopback port and then times, per customer, the queries (wall time spent waiting
for the server), the computing (the rest of building the view model) and the rendering
(charts, HTML, PDF), and reports the peak memory of this process and of Prometheus. The
setup (generation, backfill) is timed but is not part of the target (under 60 s in total,
under 1 s of rendering per customer). It never runs as part of ``make test``.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mspwatch.common.procs import free_port, peak_rss_bytes, spawn, stop_process, wait_for_url
from mspwatch.inventory import Customer
from mspwatch.reports.build import CustomerSpec, build_customer
from mspwatch.reports.main import write_customer
from mspwatch.reports.model import Brand
from mspwatch.reports.query import Prometheus
from mspwatch.simulators.history.model import Device, Gap, History, Outage
from mspwatch.simulators.history.series import history_series
from mspwatch.simulators.history.write import backfill, day_bounds, sample_lines

START = 1793491200  # 2026-11-01T00:00:00Z
DAY = 86400
MONTH = "2026-11"


class TimedPrometheus(Prometheus):
    """Adds up the wall time spent in HTTP requests."""

    waited = 0.0

    def _get(self, path: str, params: dict[str, str]) -> Any:
        t = time.perf_counter()
        try:
            return super()._get(path, params)
        finally:
            self.waited += time.perf_counter() - t


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
            for d in range(devices // 2):
                dev = f"dev{d:02d}"
                role = roles[d % len(roles)]
                addr = f"10.{c % 250}.{s}.{d + 1}:161"
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


def write_days(histories: list[History], out: Path) -> list[Path]:
    """One file per UTC day, every customer appended in turn (one customer's arrays at a time)."""
    out.mkdir(parents=True, exist_ok=True)
    bounds = day_bounds(histories[0])
    files = [out / f"day{i:02d}.om" for i in range(len(bounds))]
    handles = [f.open("w", encoding="utf-8") for f in files]
    for h in histories:
        series = history_series(h)
        for (lo, hi), fh in zip(bounds, handles, strict=True):
            fh.writelines(sample_lines(series, lo, hi, ms=False))
    for fh in handles:
        fh.write("# EOF\n")
        fh.close()
    return files


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=100)
    p.add_argument("--devices", type=int, default=20)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--render", type=int, default=100, help="render the PDFs of this many customers")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    prometheus = shutil.which("prometheus")
    promtool = shutil.which("promtool")
    if not prometheus or not promtool:
        print("prometheus and promtool are needed (make deps)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        customers, histories = estate(args.customers, args.devices, args.days, args.seed)
        files = write_days(histories, tmp / "om")
        size = sum(f.stat().st_size for f in files) / 2**20
        t_gen = time.perf_counter() - t
        t = time.perf_counter()
        blocks = backfill(files, tmp / "data", promtool)
        shutil.rmtree(tmp / "om")
        t_fill = time.perf_counter() - t
        print(
            f"setup: wrote {len(files)} day files ({size:,.0f} MiB) in {t_gen:.1f} s; "
            f"{blocks} blocks in {t_fill:.1f} s"
        )
        (tmp / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
        port = free_port()
        proc = spawn(
            [
                prometheus,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                "--storage.tsdb.retention.time=10y",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            tmp / "prometheus.log",
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_url(f"{url}/-/ready", timeout=120, proc=proc, log=tmp / "prometheus.log")
            prom = TimedPrometheus(url, timeout=300)
            t_build = 0.0
            renders: list[float] = []
            incidents = 0
            out = tmp / "out"
            out.mkdir()
            for i, c in enumerate(customers):
                t = time.perf_counter()
                r = build_customer(prom, CustomerSpec.from_inventory(c), MONTH)
                t_build += time.perf_counter() - t
                incidents += len(r.incidents)
                if i < args.render:
                    t = time.perf_counter()
                    write_customer(r, Brand(), out)
                    renders.append(time.perf_counter() - t)
            t_query = prom.waited
            t_compute = t_build - t_query
            t_render = sum(renders)
            prom_mb = peak_rss_bytes(proc.pid) / 2**20
        finally:
            stop_process(proc)
    me_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = args.customers
    print(
        f"{n} customers x {args.devices} devices x {args.days} days: "
        f"{prom.requests} requests, {incidents} incidents\n"
        f"queries   {t_query:7.1f} s  ({t_query / n:.2f} s per customer)\n"
        f"computing {t_compute:7.1f} s  ({t_compute / n:.2f} s per customer)\n"
        f"rendering {t_render:7.1f} s  for {len(renders)} PDFs "
        f"(mean {t_render / max(1, len(renders)):.2f} s, max {max(renders, default=0):.2f} s per customer)\n"
        f"total     {t_query + t_compute + t_render:7.1f} s\n"
        f"peak RSS  report {me_mb:.0f} MiB, prometheus {prom_mb:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
