"""``mspwatch report``: last month's SLA and risk PDFs, one per customer plus an MSP summary.

    $ mspwatch report --month 2026-10 --prometheus-url http://127.0.0.1:9090 \\
        --inventory inventory.yml --out reports/
    reports/2026-10/acme-dental.pdf
    reports/2026-10/bolt-logistics.pdf
    reports/2026-10/summary.pdf

Beside each PDF, ``<customer>/*.csv`` hold the raw figures (also attached inside the PDF).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from mspwatch.common.config import ConfigError, StrictModel, load_model
from mspwatch.inventory import Customer
from mspwatch.reports.build import CustomerSpec, build_customers
from mspwatch.reports.contract import month_span
from mspwatch.reports.model import Brand, CustomerReport, MspSummary, SummaryRow
from mspwatch.reports.query import NoDataError, Prometheus, QueryError


class MspBrand(StrictModel):
    name: str = "mspwatch"
    colour: str = Field(default="#1f4e79", pattern=r"^#[0-9a-fA-F]{6}$")
    logo: str | None = Field(default=None, description="file name inside the report assets dir")


class ReportConfig(StrictModel):
    """``--config`` file: ``msp: {name: Example IT, colour: "#004d40", logo: logo.svg}``."""

    msp: MspBrand = MspBrand()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "report",
        help="write the monthly SLA and risk PDFs",
        description="Write one PDF per customer and an MSP-wide summary PDF for a past month.",
    )
    p.add_argument("--month", required=True, help="YYYY-MM, a month that has ended")
    p.add_argument("--customer", action="append", default=[], help="only this customer (repeatable)")
    p.add_argument("--prometheus-url", required=True, help="Prometheus (or VictoriaMetrics) base URL")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--inventory", type=Path, help="inventory YAML (contracts, time zones, devices)")
    p.add_argument("--config", type=Path, help="report config: MSP name, colour, logo")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="PDFs rendered at once (processes)"
    )
    p.set_defaults(func=run)


def _specs(args: argparse.Namespace, prom: Prometheus) -> list[CustomerSpec]:
    if args.inventory is not None:
        from mspwatch.inventory import load_inventory

        inv = load_inventory(args.inventory)
        specs = [CustomerSpec.from_inventory(c) for c in inv.customers]
        unknown = sorted(set(args.customer) - {s.name for s in specs})
        if unknown:
            raise ConfigError(f"{args.inventory}: no customer named {', '.join(map(repr, unknown))}")
    else:
        # Without an inventory: UTC, 24x7, the default target, devices as Prometheus knows them.
        names = args.customer or _discover_customers(prom, args.month)
        specs = [CustomerSpec(Customer(name=n)) for n in names]
    return [s for s in specs if not args.customer or s.name in args.customer]


def _discover_customers(prom: Prometheus, key: str) -> list[str]:
    month = month_span(key, "UTC")
    secs = month.end - month.start
    got = prom.instant(f"group by (customer) (last_over_time(probe_success[{secs}s]))", month.end)
    return sorted(s.label("customer") for s in got if s.label("customer"))


def check_month(key: str, now: float) -> str | None:
    """A one-line complaint when the month cannot be reported yet (or is malformed)."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", key):
        return f"--month {key!r} is not YYYY-MM"
    month = month_span(key, "UTC")
    if month.start > now:
        return f"month {key} is in the future"
    if month.end > now:
        return f"month {key} has not ended yet"
    return None


def summary_model(month: str, reports: Sequence[CustomerReport]) -> MspSummary:
    rows = tuple(
        SummaryRow(
            r.customer,
            r.display_name,
            r.total.availability,
            r.target,
            r.met,
            len(r.incidents),
            r.total.down,
            r.risk_score,
            r.risk_previous,
        )
        for r in reports
    )
    label = reports[0].month_label if reports else month
    return MspSummary(month, label, rows)


def run(args: argparse.Namespace) -> int:
    problem = check_month(args.month, time.time())
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        brand_cfg = load_model(ReportConfig, args.config).msp if args.config else MspBrand()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    brand = Brand(brand_cfg.name, brand_cfg.colour, brand_cfg.logo)
    out = args.out / args.month
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    with Prometheus(args.prometheus_url) as prom:
        try:
            specs = _specs(args, prom)
        except (ConfigError, QueryError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        progress = _progress(args.no_progress)
        with progress:
            task = progress.add_task("querying", total=len(specs) + 1)
            try:
                built = build_customers(prom, specs, args.month)
            except QueryError as exc:
                progress.console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
                return 1
            reports = [r for r in built if isinstance(r, CustomerReport)]
            for r in built:
                if isinstance(r, NoDataError):
                    progress.console.print(f"error: {r}", markup=False, highlight=False, soft_wrap=True)
                    failed += 1
                    progress.advance(task)
            progress.update(task, description="rendering")
            for path in write_customers(reports, brand, out, args.jobs):
                print(path, flush=True)
                progress.advance(task)
            if reports:
                progress.update(task, description="summary")
                print(write_summary(summary_model(args.month, reports), brand, out), flush=True)
            progress.advance(task)
    return 1 if failed else 0


def _progress(disabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=disabled,
        transient=True,
    )


def write_customers(
    reports: Sequence[CustomerReport], brand: Brand, out: Path, jobs: int = 1
) -> Iterator[Path]:
    """Render each report (:func:`write_customer`), ``jobs`` at a time in worker processes;
    yield the PDFs' paths in the order given. A PDF's bytes do not depend on ``jobs``."""
    if jobs <= 1 or len(reports) <= 1:
        for r in reports:
            yield write_customer(r, brand, out)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from mspwatch.reports import render

    render.preload()  # imported once here, inherited by each forked worker
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        yield from pool.map(write_customer, reports, [brand] * len(reports), [out] * len(reports))


def write_customer(r: CustomerReport, brand: Brand, out: Path) -> Path:
    """``out/<customer>.pdf`` and ``out/<customer>/*.csv``."""
    from mspwatch.reports import render

    svgs = render.with_charts(r, brand)
    csvs = render.csv_files(r)
    folder = out / r.customer
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in csvs.items():
        (folder / name).write_text(text, encoding="utf-8")
    path = out / f"{r.customer}.pdf"
    render.write_pdf(render.customer_html(r, brand, svgs), path, csvs, r.month)
    return path


def write_summary(s: MspSummary, brand: Brand, out: Path) -> Path:
    from mspwatch.reports import charts, render

    svgs = {}
    if s.rows:
        svgs["customers"] = charts.availability_bars(
            [r.display_name for r in s.rows],
            [r.availability for r in s.rows],
            [r.target for r in s.rows],
            brand.colour,
        )
    rows = [
        {
            "customer": r.customer,
            "availability": r.availability,
            "target": r.target,
            "met": r.met,
            "incidents": r.incidents,
            "downtime_minutes": r.downtime_minutes,
            "risk_score": r.risk_score,
        }
        for r in s.rows
    ]
    csvs = {"summary.csv": render._csv(rows)}
    (out / "summary.csv").write_text(csvs["summary.csv"], encoding="utf-8")
    path = out / "summary.pdf"
    render.write_pdf(render.summary_html(s, brand, svgs), path, csvs, s.month)
    return path
