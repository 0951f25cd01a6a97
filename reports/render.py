"""View model -> HTML (jinja2, autoescaped, StrictUndefined) -> PDF (WeasyPrint).

The PDF loads nothing but ``data:`` URLs and files inside the bundled assets directory:
:class:`AssetFetcher` refuses ``file:`` paths elsewhere, ``http(s):`` and everything else, so
a device called ``<img src=file:///etc/passwd>`` prints as text and nothing is fetched.
The raw figures travel as CSV attachments inside the PDF and as files beside it.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import functools
import gc
import io
import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import jinja2

from mspwatch.reports import charts, risk
from mspwatch.reports.model import Availability, Brand, CustomerReport, Incident, MspSummary

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
ASSETS = HERE / "assets"
log = logging.getLogger(__name__)


class RefusedResource(Exception):
    """The renderer was asked for something outside the bundled assets."""


def _weasyprint() -> Any:
    import weasyprint  # heavy (pango via cffi): only when a PDF is written

    return weasyprint


def preload() -> None:
    """Import the renderer's heavy parts (WeasyPrint, pango), compile the templates, draw one
    chart of each kind and lay out one small page, ahead of forking workers: each worker
    starts with warm font, template and figure caches instead of paying for them itself.
    Then freeze what exists, so the workers' garbage collections never walk it again."""
    _style()
    env = environment()
    for name in ("customer.html.j2", "summary.html.j2"):
        env.get_template(name)
    charts.warm()
    save_pdf(layout("<p>x <strong>y</strong> <em>z</em></p>"), Path(os.devnull), {}, "2000-01")
    gc.freeze()


@functools.cache
def _style() -> tuple[Any, Any]:
    """One font configuration and one parsed stylesheet per process, shared by every PDF
    (the stylesheet is a bundled file: nothing to fetch)."""
    wp = _weasyprint()
    from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    return fonts, wp.CSS(filename=str(ASSETS / "report.css"), font_config=fonts)


def make_fetcher(assets: Path = ASSETS) -> Any:
    """A WeasyPrint URL fetcher that serves ``data:`` and files under ``assets`` only."""
    wp = _weasyprint()
    root = assets.resolve()

    class AssetFetcher(wp.urls.URLFetcher):  # type: ignore[misc,name-defined]
        refused: list[str]

        def __init__(self) -> None:
            super().__init__(timeout=5, allowed_protocols=("data", "file"), allow_redirects=False)
            self.refused = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            parts = urlsplit(url)
            if parts.scheme == "data":
                return super().fetch(url, headers)
            if parts.scheme == "file" and parts.netloc in ("", "localhost"):
                path = Path(unquote(parts.path)).resolve()
                if path.is_relative_to(root) and path.is_file():
                    return wp.urls.URLFetcherResponse(url, path.read_bytes(), {"Content-Type": _mime(path)})
            self.refused.append(url)
            raise RefusedResource(f"refused to load {url!r}: only bundled report assets are allowed")

    return AssetFetcher()


def _mime(path: Path) -> str:
    return {".svg": "image/svg+xml", ".png": "image/png", ".css": "text/css"}.get(
        path.suffix, "application/octet-stream"
    )


# --- formatting ---------------------------------------------------------------------------
def pct(value: float | None, digits: int = 3) -> str:
    """``pct(0.998119) == '99.812%'``; None prints as a dash."""
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def duration(minutes: float | None) -> str:
    """``duration(90) == '1 h 30 min'``, ``duration(45) == '45 min'``."""
    if minutes is None:
        return "-"
    m = round(minutes)
    return f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def _when(tz: str) -> Callable[[int], str]:
    def when(ts: int) -> str:
        return (
            "never" if not ts else dt.datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%a %d %b %Y %H:%M")
        )

    return when


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template: names from the inventory and Prometheus are data
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = pct
    env.filters["duration"] = duration
    env.filters["svg_data"] = lambda svg: (
        "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    )
    return env


# --- what the PDF shows -------------------------------------------------------------------
# The PDF's device and incident tables (and the device chart) stop at this many rows: the
# worst devices and the longest incidents, each table saying how many more rows the attached
# CSV holds. A customer of 200 devices costs what one of 20 does to lay out and read.
PDF_ROWS = 10


def shown_devices(r: CustomerReport) -> tuple[list[Availability], int]:
    """All devices in inventory order, or the :data:`PDF_ROWS` with the lowest availability
    (lowest first) and how many more the CSV holds."""
    if len(r.devices) <= PDF_ROWS:
        return list(r.devices), 0
    worst = sorted(r.devices, key=lambda d: (d.availability, d.site, d.name))[:PDF_ROWS]
    return worst, len(r.devices) - PDF_ROWS


def shown_incidents(r: CustomerReport) -> tuple[list[Incident], int]:
    """All incidents, or the :data:`PDF_ROWS` longest (in time order) and how many more."""
    if len(r.incidents) <= PDF_ROWS:
        return list(r.incidents), 0
    longest = sorted(r.incidents, key=lambda i: (-i.minutes, i.start))[:PDF_ROWS]
    return sorted(longest, key=lambda i: i.start), len(r.incidents) - PDF_ROWS


# --- charts and CSV -----------------------------------------------------------------------
def with_charts(r: CustomerReport, brand: Brand) -> dict[str, str]:
    devices, _ = shown_devices(r)
    out = {
        "devices": charts.availability_bars(
            [f"{d.site}/{d.name}" for d in devices],
            [d.availability for d in devices],
            r.target,
            brand.colour,
        ),
        "downtime": charts.daily_downtime(
            [d for d, _ in r.daily_down], [m for _, m in r.daily_down], r.timezone, brand.colour
        ),
    }
    if r.patch.trend:
        out["patch"] = charts.trend(r.patch.trend, r.timezone, r.patch.target)
    if r.m365.secure_trend:
        out["secure"] = charts.trend(r.m365.secure_trend, r.timezone)
    return out


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def csv_files(r: CustomerReport) -> dict[str, str]:
    """The raw figures, one CSV per table (minutes and fractions, UTC Unix seconds)."""
    return {
        "availability.csv": _csv(
            [{"level": "customer"} | _avail(r.total)]
            + [{"level": "site"} | _avail(s) for s in r.sites]
            + [{"level": "device"} | _avail(d) for d in r.devices]
        ),
        "incidents.csv": _csv(
            [asdict(i) | {"devices": " ".join(i.devices)} for i in r.incidents]
            or [{"start": "", "end": "", "minutes": "", "contract_minutes": "", "devices": ""}]
        ),
        "maintenance.csv": _csv(
            [asdict(m) for m in r.maintenance]
            or [{"name": "", "start": "", "end": "", "minutes": "", "sites": ""}]
        ),
        "backup_jobs.csv": _csv([asdict(j) for j in r.backup.jobs] or [{"source": "", "job": ""}]),
        "risk.csv": _csv([asdict(c) for c in r.risk_components]),
    }


def _avail(a: Any) -> dict[str, Any]:
    d = asdict(a)
    return {
        k: d[k]
        for k in (
            "name",
            "site",
            "role",
            "counted",
            "up",
            "down",
            "no_data",
            "maintenance",
            "blips",
            "availability",
        )
    }


# --- HTML and PDF -------------------------------------------------------------------------
def customer_html(r: CustomerReport, brand: Brand, svgs: dict[str, str]) -> str:
    tmpl = environment().get_template("customer.html.j2")
    return tmpl.render(
        r=r,
        brand=brand,
        charts=svgs,
        when=_when(r.timezone),
        weights=risk.WEIGHTS,
        created=_created(r.month),
        logo=_logo_url(brand),
        devices=shown_devices(r),
        incidents=shown_incidents(r),
    )


def summary_html(s: MspSummary, brand: Brand, svgs: dict[str, str]) -> str:
    tmpl = environment().get_template("summary.html.j2")
    return tmpl.render(s=s, brand=brand, charts=svgs, created=_created(s.month), logo=_logo_url(brand))


def _created(month: str) -> str:
    """A fixed document date (the first day after the month), so reruns are byte-identical."""
    y, m = map(int, month.split("-"))
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}-01T00:00:00Z"


def _logo_url(brand: Brand) -> str | None:
    if not brand.logo:
        return None
    return (ASSETS / brand.logo).resolve().as_uri()


def layout(html: str, fetcher: Any | None = None) -> Any:
    """Parse, style and paginate ``html`` with the bundled stylesheet: a WeasyPrint Document."""
    wp = _weasyprint()
    base = (ASSETS / "index.html").as_uri()
    doc = wp.HTML(string=html, base_url=base, url_fetcher=fetcher or make_fetcher())
    fonts, css = _style()
    return doc.render(font_config=fonts, stylesheets=[css])


def save_pdf(document: Any, out: Path, attachments: dict[str, str], month: str) -> None:
    """Draw a laid-out ``document`` into ``out`` with the CSVs attached, dated for ``month``."""
    wp = _weasyprint()
    stamp = dt.datetime.fromisoformat(_created(month))
    files = [
        wp.Attachment(string=text, name=name, description=name, created=stamp, modified=stamp)
        for name, text in sorted(attachments.items())
    ]
    document.write_pdf(str(out), attachments=files, pdf_identifier=b"mspwatch-report", uncompressed_pdf=False)


def write_pdf(
    html: str, out: Path, attachments: dict[str, str], month: str, fetcher: Any | None = None
) -> Any:
    """Render to ``out``; return the fetcher (its ``refused`` list names what was blocked)."""
    fetcher = fetcher or make_fetcher()
    save_pdf(layout(html, fetcher), out, attachments, month)
    return fetcher
