#!/usr/bin/env python3
"""Rendering benchmark: CPU seconds per customer PDF, split by stage, from saved view models.

    python benchmarks/report_bench.py --customers 10 --render 0 --save-reports reports.pkl
    python benchmarks/render_bench.py --reports reports.pkl [--count 5] [--rounds 3]

Renders the first ``--count`` reports of the pickle in this one process (after one untimed
warm-up PDF of the first report: imports, fonts, templates, the chart figures), ``--rounds``
times, and prints the best round's CPU per PDF for each stage, e.g. (benchmark customers,
load 2.5 on 2 cores)::

    5 PDFs (5.0 pages each), best of 3 rounds, CPU s per PDF
    charts   0.066  matplotlib figures and savefig
    csv      0.001
    html     0.001  jinja
    layout   0.370  WeasyPrint parse, cascade, pagination
    pdf      0.251  WeasyPrint drawing (SVG charts too), fonts, attachments
    total    0.689

CPU time (``time.process_time``), not wall time; still, on a shared machine it moves by
+-20 %. A figure that does not move: instructions per PDF, the difference of two runs under
``valgrind --tool=callgrind`` with ``--rounds 1 --count 0`` and ``--count N``, divided by N.
It is a benchmark, never run by ``make test``.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from mspwatch.reports import render
from mspwatch.reports.model import Brand, CustomerReport

STAGES = {
    "charts": "matplotlib figures and savefig",
    "csv": "",
    "html": "jinja",
    "layout": "WeasyPrint parse, cascade, pagination",
    "pdf": "WeasyPrint drawing (SVG charts too), fonts, attachments",
}
T = TypeVar("T")


def render_one(r: CustomerReport, brand: Brand, out: Path, spent: dict[str, float]) -> int:
    """Render ``r`` as :func:`mspwatch.reports.main.write_customer` does (without the CSV
    files beside it), adding each stage's CPU seconds to ``spent``; return the page count."""

    def timed(stage: str, fn: Callable[[], T]) -> T:
        t = time.process_time()
        try:
            return fn()
        finally:
            spent[stage] = spent.get(stage, 0.0) + time.process_time() - t

    svgs = timed("charts", lambda: render.with_charts(r, brand))
    csvs = timed("csv", lambda: render.csv_files(r))
    html = timed("html", lambda: render.customer_html(r, brand, svgs))
    document = timed("layout", lambda: render.layout(html))
    timed("pdf", lambda: render.save_pdf(document, out / f"{r.customer}.pdf", csvs, r.month))
    return len(document.pages)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reports", type=Path, required=True, help="pickled list of CustomerReport")
    p.add_argument("--count", type=int, default=5, help="PDFs per round")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    # A file this machine's report_bench.py wrote (--save-reports), not outside input.
    saved: list[CustomerReport] = pickle.loads(args.reports.read_bytes())  # noqa: S301
    reports = saved[: args.count]
    brand = Brand()
    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        out = Path(tmp)
        render_one(saved[0], brand, out, {})  # warm-up, untimed
        rounds: list[dict[str, float]] = []
        pages = 0
        for _ in range(args.rounds):
            spent: dict[str, float] = {}
            pages = sum(render_one(r, brand, out, spent) for r in reports)
            rounds.append(spent)
    best = min(rounds, key=lambda s: sum(s.values()))
    n = max(1, len(reports))
    print(f"{len(reports)} PDFs ({pages / n:.1f} pages each), best of {args.rounds} rounds, CPU s per PDF")
    for stage, what in STAGES.items():
        print(f"{stage:<8} {best.get(stage, 0.0) / n:.3f}  {what}".rstrip())
    print(f"{'total':<8} {sum(best.values()) / n:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
