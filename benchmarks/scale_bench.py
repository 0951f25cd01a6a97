#!/usr/bin/env python3
"""Scale-out benchmark: two hashmod Prometheus shards remote-writing to VictoriaMetrics.

    .venv/bin/python benchmarks/scale_bench.py --devices 1000 --interval 15s --seconds 120

Starts the stack of tests/stack/scalekit.py (real prometheus, victoria-metrics and two
prometheus-alertmanager peers on loopback) on a synthetic estate of ``--devices`` devices,
each an ICMP and an SNMP target; every scrape answers with one golden /metrics file of a
real device (tests/snmp/golden/, 680 samples for the firewall) from one Python thread
server, which is the bottleneck on a small machine (keep --devices modest there). After a warm-up it
prints, over ``--seconds``: the samples per second the shards appended and VictoriaMetrics
inserted, the active series, and each process's resident memory. With ``--rules`` the shards
run the per-target rule groups and vmalert the estate-wide ones (compose/scale/rules/), and
it also prints vmalert's mean group evaluation time and rule errors. Never part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mspwatch.common.procs import rss_bytes, wait_until  # noqa: E402
from tests.stack.scalekit import (  # noqa: E402
    COMPOSE,
    CannedExporter,
    query,
    scale_stack,
    with_interval,
)


def own_metric(url: str, name: str) -> float:
    """Sum of every series of ``name`` on a server's own /metrics."""
    total = 0.0
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as resp:  # noqa: S310 (loopback)
        for line in resp.read().decode().splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.split()[-1])
    return total


def write_estate(out: Path, devices: int) -> None:
    """file_sd files for ``devices`` devices over 100 customers of 2 sites."""
    out.mkdir(parents=True)
    groups: dict[str, list[dict[str, object]]] = {"snmp": [], "icmp": []}
    for d in range(devices):
        customer, site = f"customer-{d % 100:03d}", f"site-{d // 100 % 2}"
        labels = {"customer": customer, "site": site, "device": f"dev-{d}", "role": "switch"}
        host = f"10.{d // 65536 % 256}.{d // 256 % 256}.{d % 256}"
        groups["snmp"].append({"labels": {**labels, "__param_auth": "bench"}, "targets": [f"{host}:161"]})
        groups["icmp"].append({"labels": labels, "targets": [host]})
    for job in ("snmp", "icmp"):
        (out / f"{job}.json").write_text(json.dumps(groups[job]))
    for job in ("backup", "m365", "patch"):
        (out / f"{job}.json").write_text("[]")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--interval", default="15s", help="scrape and evaluation interval")
    p.add_argument("--seconds", type=float, default=120, help="measuring window after warm-up")
    p.add_argument("--golden", type=Path, default=ROOT / "tests/snmp/golden/firewall-fortinet.prom")
    p.add_argument("--rules", action="store_true", help="shard rules on the shards, estate rules in vmalert")
    args = p.parse_args()
    text = args.golden.read_text()
    per_target = sum(1 for ln in text.splitlines() if ln and not ln.startswith("#"))
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp, CannedExporter(text) as exporter:
        work = Path(tmp)
        write_estate(work / "targets", args.devices)
        split = COMPOSE / "scale" / "rules"
        shard = with_interval(sorted((split / "shard").glob("*.yml")), work / "shard-rules", args.interval)
        estate = with_interval(sorted((split / "estate").glob("*.yml")), work / "estate-rules", args.interval)
        with scale_stack(
            work,
            targets_dir=work / "targets",
            exporter=exporter,
            shard_rules={0: shard, 1: shard} if args.rules else {},
            estate_rules=estate if args.rules else None,
            interval=args.interval,
        ) as s:
            wanted = 2 * args.devices
            wait_until(
                "every target scraped once",
                lambda: int(query(s.vm, 'count(up{job=~"snmp|icmp"})')[0]["value"][1]) >= wanted,
                600,
                interval=2,
            )
            time.sleep(float(args.interval.rstrip("s")) * 2)  # past the first, uneven rounds
            t0 = time.monotonic()
            vm0 = own_metric(s.vm, "vm_rows_inserted_total")
            prom0 = [own_metric(u, "prometheus_tsdb_head_samples_appended_total") for u in s.prometheus]
            time.sleep(args.seconds)
            dt = time.monotonic() - t0
            vm_rate = (own_metric(s.vm, "vm_rows_inserted_total") - vm0) / dt
            prom_rates = [
                (own_metric(u, "prometheus_tsdb_head_samples_appended_total") - b) / dt
                for u, b in zip(s.prometheus, prom0, strict=True)
            ]
            series = [own_metric(u, "prometheus_tsdb_head_series") for u in s.prometheus]
            rss = {name: rss_bytes(proc.pid) for name, proc in s.procs.items()}
            if s.vmalert is not None:
                took = own_metric(s.vmalert, "vmalert_iteration_duration_seconds_sum")
                runs = own_metric(s.vmalert, "vmalert_iteration_duration_seconds_count")
                errors = own_metric(s.vmalert, "vmalert_recording_rules_errors_total") + own_metric(
                    s.vmalert, "vmalert_alerting_rules_errors_total"
                )
                rules = [own_metric(u, "prometheus_rule_group_rules") for u in s.prometheus]
    print(
        f"devices {args.devices} (x2 targets), {per_target} samples per SNMP scrape, interval {args.interval}"
    )
    for i, (rate, n) in enumerate(zip(prom_rates, series, strict=True)):
        print(f"prometheus-{i}: {rate:,.0f} samples/s appended, {n:,.0f} head series")
    print(f"victoriametrics: {vm_rate:,.0f} rows/s inserted (remote write)")
    if args.rules:
        print(f"shard rules loaded: {rules}; vmalert: {took / max(runs, 1) * 1000:,.1f} ms per group run")
        print(f"vmalert rule errors: {errors:,.0f}")
    for name, b in sorted(rss.items()):
        print(f"rss {name}: {b / 2**20:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
