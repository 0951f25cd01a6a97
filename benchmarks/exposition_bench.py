"""Text exposition: the core's writer against client_python's generate_latest, per golden.

    python benchmarks/exposition_bench.py [--rounds 200]

Prints, for the largest goldens, the time per answer of both writers and the ratio (median
of rounds; both are fed the same parsed families).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from mspwatch.exporters.core.exposition import render_text

ROOT = Path(__file__).resolve().parent.parent


class _Once:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _time(fn: object, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        fn()  # type: ignore[operator]
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    goldens = sorted(ROOT.glob("tests/*/golden/*.prom"), key=lambda p: p.stat().st_size, reverse=True)[:5]
    print(f"{'golden':40} {'samples':>8} {'client_python ms':>17} {'core ms':>8} {'ratio':>6}")
    for golden in goldens:
        families = list(text_string_to_metric_families(golden.read_text(encoding="utf-8")))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Once(families))
        samples = sum(len(f.samples) for f in families)
        ref = _time(lambda registry=registry: generate_latest(registry), args.rounds)
        ours = _time(lambda families=families: render_text(families), args.rounds)
        name = f"{golden.parent.parent.name}/{golden.name}"
        print(f"{name:40} {samples:8d} {ref * 1000:17.3f} {ours * 1000:8.3f} {ref / ours:6.2f}")


if __name__ == "__main__":
    main()
