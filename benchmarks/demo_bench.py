#!/usr/bin/env python3
"""Demo benchmark: start-up time, CPU and memory at steady state, Prometheus's ingest rate.

    .venv/bin/python benchmarks/demo_bench.py --history-days 35 --seconds 60

Runs ``mspwatch demo`` twice on one fresh data dir (free ports): the first start writes and
backfills the history, the second reuses it. For each start it prints the seconds until the
stack was ready (every area answering as itself) and until the demo was ready (last month's
PDFs written, the table printed); after the first start it samples every process the demo
started from /proc over ``--seconds`` (CPU as a share of one core, resident memory) and asks
Prometheus for ``rate(prometheus_tsdb_head_samples_appended_total[1m])``. Never part of
``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mspwatch.demo.kit import Ports, free_offset  # noqa: E402
from mspwatch.inventory import load_inventory  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (not its children), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def started(output: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^started (\S+) \(pid (\d+)\)", output, re.M)}


def start(data: Path, offset: int, days: int, log: Path) -> tuple[subprocess.Popen[bytes], dict[str, float]]:
    """Start the demo; return it and the seconds to 'stack ready' and to 'Ctrl-C stops everything.'."""
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "mspwatch.cli", "demo", f"--data.dir={data}", f"--port-offset={offset}"]
    proc = subprocess.Popen([*cmd, f"--history-days={days}"], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    marks: dict[str, float] = {}
    while "ready" not in marks:
        text = log.read_text(errors="replace")
        if "stack" not in marks and re.search(r"^stack ready", text, re.M):
            marks["stack"] = time.monotonic() - t0
        if "Ctrl-C stops everything." in text:
            marks["ready"] = time.monotonic() - t0
        if proc.poll() is not None:
            raise SystemExit(f"the demo exited ({proc.returncode}):\n{text[-3000:]}")
        time.sleep(0.5)
    return proc, marks


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)


def ingest_rate(prometheus: str) -> float:
    promql = "sum(rate(prometheus_tsdb_head_samples_appended_total[1m]))"
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (loopback)
            result = json.load(resp)["data"]["result"]
    except urllib.error.HTTPError as exc:
        print(f"ingest query failed: {exc.code} {exc.read()[:300]!r}")
        return float("nan")
    return float(result[0]["value"][1]) if result else 0.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--history-days", type=int, default=35)
    p.add_argument("--seconds", type=float, default=60.0, help="steady-state sampling window")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="demo-bench-"))
    offset = free_offset(load_inventory(ROOT / "simulators" / "estate" / "inventory.yml"))
    prometheus = f"http://127.0.0.1:{Ports().shifted(offset).prometheus}"
    try:
        print(f"load average before: {os.getloadavg()[0]:.2f}; data dir {work}", flush=True)
        proc, first = start(work / "data", offset, args.history_days, work / "first.log")
        print(f"first start: {first}", flush=True)
        pids = started((work / "first.log").read_text())
        time.sleep(30)  # past the start-up burst
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        t0 = time.monotonic()
        peak = {name: 0 for name in pids}
        while time.monotonic() - t0 < args.seconds:
            for name, pid in pids.items():
                peak[name] = max(peak[name], rss(pid))
            time.sleep(1)
        elapsed = time.monotonic() - t0
        cpu = {name: (cpu_seconds(pid) - cpu0[name]) / elapsed for name, pid in pids.items()}
        try:
            rate = ingest_rate(prometheus)
            load = os.getloadavg()[0]
        finally:
            stop(proc)
        proc, second = start(work / "data", offset, args.history_days, work / "second.log")
        stop(proc)
        print(f"\nhistory {args.history_days} days; load average at steady state {load:.2f}")
        for label, marks in (
            ("first start (history written)", first),
            ("second start (history reused)", second),
        ):
            print(f"{label}: stack ready {marks['stack']:.0f} s, ready (PDFs, table) {marks['ready']:.0f} s")
        print(f"\nsteady state over {elapsed:.0f} s:")
        print(f"{'process':<22} {'CPU (% of a core)':>18} {'peak RSS (MB)':>14}")
        for name in sorted(pids, key=lambda n: -peak[n]):
            print(f"{name:<22} {100 * cpu[name]:>18.1f} {peak[name] / 2**20:>14.0f}")
        print(f"{'total':<22} {100 * sum(cpu.values()):>18.1f} {sum(peak.values()) / 2**20:>14.0f}")
        print(
            f"\nPrometheus ingest: {rate:.0f} samples/s (rate of prometheus_tsdb_head_samples_appended_total)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
