#!/usr/bin/env python3
"""Patch exporter benchmark: many customers on one NinjaOne instance, simulated.

    .venv/bin/python benchmarks/patch_bench.py [--customers 50] [--devices 400] [--patches 30] [--rounds 3]

Generates a scenario with one NinjaOne organisation per customer, each with ``--devices``
workstations carrying ``--patches`` updates (two thirds installed within the install
lookback, the rest pending, one failed) and a patch scan a day for two weeks, starts the
NinjaOne simulator on a free loopback port, and scrapes every customer's source with the
exporter in this process, all at once as Prometheus would (``--in-flight`` sets
max_sources_in_flight; the scrape deadline is 600 s so the queue shows as time, not as
failures). Prints, per round, the wall time, the exporter's CPU time, the requests per
scrape and the exposition size; then the process's max RSS. Round 0 includes the token
grant, the organisation lookups and the first read of the activity log. It never runs as
part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import yaml

from mspwatch.common.procs import free_port, spawn, stop_process, wait_for_url
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.exposition import render_text
from mspwatch.exporters.patch.main import PatchApp

CLOCK = "2026-02-02T09:00:00+00:00"
SECRET = "bench-secret"  # noqa: S105 - the simulator's throw-away client secret


def scenario(customers: int, devices: int, patches: int) -> dict[str, object]:
    installed = patches * 2 // 3
    specs: list[dict[str, object]] = []
    for i in range(patches):
        spec: dict[str, object] = {
            "kb": f"KB50{i:05d}",
            "type": ["SECURITY_UPDATES", "UPDATE_ROLLUPS", "REGULAR_UPDATES", "DRIVER_UPDATES"][i % 4],
            "severity": ["CRITICAL", "IMPORTANT", "MODERATE", "OPTIONAL"][i % 4],
            "detected": f"-{i % 20 + 1}d",
        }
        if i < installed:
            spec["attempts"] = [{"at": f"-{i % 20 + 1}d", "ok": True}]
        elif i == patches - 1:
            spec["attempts"] = [{"at": "-1h", "ok": False}]
        specs.append(spec)
    return {
        "clock": CLOCK,
        "clients": {"bench": SECRET},
        "max_page_size": 10_000,
        "organizations": [
            {
                "name": f"Customer {c:03d}",
                "devices": [
                    # a patch scan a day for two weeks: the first scrape reads them all
                    # from the activity log, later ones only the new ones
                    {
                        "name": f"c{c:03d}-ws",
                        "count": devices,
                        "av": {},
                        "patches": specs,
                        "last_scan": "-6h",
                        "scan_history": "14d",
                    },
                ],
            }
            for c in range(customers)
        ],
    }


def value(text: str, name: str) -> float:
    line = next(ln for ln in text.splitlines() if ln.startswith(name + " "))
    return float(line.split()[1])


async def rounds(config: Path, customers: int, count: int) -> None:
    frozen = datetime.fromisoformat(CLOCK).timestamp()
    app = PatchApp(config, clock=lambda: frozen)
    targets = [f"c{c:03d}" for c in range(customers)]

    async def one(target: str) -> str:
        registry = await app.probe({"target": target}, Deadline.after(600))
        # What the server writes for the text format (byte-identical to generate_latest).
        return render_text(registry.collect()).decode()

    try:
        for n in range(count):
            wall, cpu = time.monotonic(), time.process_time()
            texts = await asyncio.gather(*(one(t) for t in targets))
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
            up = sum(value(t, "patch_up") for t in texts)
            requests = [value(t, "patch_scrape_requests") for t in texts]
            durations = sorted(value(t, "patch_scrape_duration_seconds") for t in texts)
            size = sum(len(t) for t in texts)
            reasons = Counter(
                ln.split('"')[1]
                for t in texts
                for ln in t.splitlines()
                if ln.startswith("patch_scrape_error{") and ln.endswith(" 1.0")
            )
            print(
                f"round {n}: {customers} sources in {wall:.2f} s wall, exporter CPU {cpu:.2f} s, "
                f"up {up:.0f}/{customers}, requests per scrape {min(requests):.0f}-{max(requests):.0f}, "
                f"scrape duration median {durations[len(durations) // 2]:.2f} s max {durations[-1]:.2f} s, "
                f"exposition {size / 1e6:.1f} MB" + (f", down: {dict(reasons)}" if reasons else "")
            )
    finally:
        await app.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--devices", type=int, default=400)
    parser.add_argument("--patches", type=int, default=30)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--in-flight",
        type=int,
        default=4,
        help="max_sources_in_flight (default 4: one simulator process answers every source)",
    )
    parser.add_argument("--request-timeout", default="30s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="patch-bench-") as tmp:
        base = Path(tmp)
        (base / "scenario.yaml").write_text(
            yaml.safe_dump(scenario(args.customers, args.devices, args.patches)), encoding="utf-8"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        inventory = {
            "customers": [
                {
                    "name": f"c{c:03d}",
                    "patch_sources": [
                        {
                            "name": f"c{c:03d}",
                            "kind": "ninjaone",
                            "url": url,
                            "organization": f"Customer {c:03d}",
                            "credentials": "bench",
                        }
                    ],
                }
                for c in range(args.customers)
            ]
        }
        (base / "inventory.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
        config = {
            "inventory": "inventory.yml",
            "credentials": {"bench": {"client_id": "bench", "client_secret": SECRET}},
            "ninjaone": {"page_size": args.page_size, "request_timeout": args.request_timeout},
            "max_sources_in_flight": args.in_flight,
        }
        (base / "patch.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        proc = spawn(
            [
                sys.executable,
                "-m",
                "mspwatch.simulators.ninjaone",
                f"--listen=127.0.0.1:{port}",
                f"--scenario={base / 'scenario.yaml'}",
            ],
            base / "sim.log",
        )
        try:
            wait_for_url(f"{url}/admin/clock", timeout=300, proc=proc, log=base / "sim.log")
            print(
                f"{args.customers} customers x {args.devices} devices x {args.patches} patches, "
                f"page size {args.page_size}, {args.in_flight} sources in flight"
            )
            asyncio.run(rounds(base / "patch.yml", args.customers, args.rounds))
        finally:
            stop_process(proc)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"exporter process max RSS {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
