#!/usr/bin/env python3
"""Backup exporter benchmark: one large Veeam server, simulated, scraped a few times.

    .venv/bin/python benchmarks/backup_bench.py [--jobs 200] [--runs-per-job 48] [--scrapes 5]

Generates a scenario (``--jobs`` jobs, each with ``--runs-per-job`` sessions every 4 h, so
all inside the exporter's 8-day session window), starts the Veeam simulator on a free
loopback port, scrapes it with the exporter in this process and prints, per scrape, the
wall time, the exporter's CPU time, the requests sent and the lines of exposition. The
first scrape also fetches every job's follow-ups (transferred bytes, old last success);
later scrapes read them from the exporter's caches. It never runs as part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from mspwatch.common.procs import free_port, spawn, stop_process, wait_for_url
from mspwatch.exporters.backup.main import BackupApp
from mspwatch.exporters.core.deadline import Deadline

CLOCK = "2026-01-15T06:00:00+00:00"


def scenario(jobs: int, runs: int) -> dict[str, object]:
    results = ["Success", "Warning", "Failed"]
    return {
        "clock": CLOCK,
        "users": {"svc-monitor": "bench-password"},
        "repositories": [{"name": "Repo", "capacity_gb": 100_000, "free_gb": 25_000}],
        "jobs": [
            {
                "name": f"Job {i:04d}",
                "repository": "Repo",
                "objects": 3,
                "next_run": "+5h",
                "history": {
                    "start": f"-{i % 240 + 1}m",
                    "count": runs,
                    "every": "4h",
                    "duration": "20m",
                    "result": results[i % 3],
                    "transferred": 1e9,
                },
            }
            for i in range(jobs)
        ],
    }


async def scrape(config: Path, scrapes: int) -> None:
    frozen = datetime.fromisoformat(CLOCK).timestamp()
    app = BackupApp(config, clock=lambda: frozen)
    try:
        for n in range(scrapes):
            wall, cpu = time.monotonic(), time.process_time()
            registry = await app.probe({"target": "bench"}, Deadline.after(60))
            text = generate_latest(registry).decode()
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
            stats = {
                line.split()[0]: line.split()[1]
                for line in text.splitlines()
                if line.startswith(("backup_up ", "backup_scrape_requests "))
            }
            print(
                f"scrape {n}: wall {wall:.3f} s, exporter CPU {cpu:.3f} s, "
                f"requests {float(stats['backup_scrape_requests']):.0f}, "
                f"up {stats['backup_up']}, lines {text.count(chr(10))}"
            )
    finally:
        await app.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--runs-per-job", type=int, default=48)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="backup-bench-") as tmp:
        base = Path(tmp)
        (base / "scenario.yaml").write_text(
            yaml.safe_dump(scenario(args.jobs, args.runs_per_job)), encoding="utf-8"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        (base / "inventory.yml").write_text(
            yaml.safe_dump(
                {
                    "customers": [
                        {
                            "name": "bench",
                            "backup_sources": [
                                {
                                    "name": "bench",
                                    "kind": "veeam",
                                    "url": url,
                                    "credentials": "bench",
                                    "page_size": args.page_size,
                                }
                            ],
                        }
                    ]
                }
            ),
            encoding="utf-8",
        )
        (base / "backup.yml").write_text(
            yaml.safe_dump(
                {
                    "inventory": "inventory.yml",
                    "credentials": {"bench": {"username": "svc-monitor", "password": "bench-password"}},
                }
            ),
            encoding="utf-8",
        )
        proc = spawn(
            [
                sys.executable,
                "-m",
                "mspwatch.simulators.veeam",
                f"--listen=127.0.0.1:{port}",
                f"--scenario={base / 'scenario.yaml'}",
            ],
            base / "sim.log",
        )
        try:
            wait_for_url(f"{url}/admin/clock", timeout=30, proc=proc, log=base / "sim.log")
            sessions = args.jobs * args.runs_per_job
            print(f"{args.jobs} jobs, {sessions} sessions, page size {args.page_size}")
            asyncio.run(scrape(base / "backup.yml", args.scrapes))
        finally:
            stop_process(proc)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"exporter process max RSS {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
