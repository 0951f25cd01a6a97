"""The PDF: its text holds the ground-truth figures; names are escaped; nothing outside the
bundled assets is fetched; the same data gives the same bytes; CSVs ride inside."""

from __future__ import annotations

import dataclasses
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mspwatch.reports import render
from mspwatch.reports.main import write_customer
from mspwatch.reports.model import Brand, CustomerReport
from tests.conftest import require_tool

EVIL = "<img src=file:///etc/passwd>"


def pdf_text(path: Path) -> str:
    out = subprocess.run(
        [require_tool("pdftotext"), "-layout", str(path), "-"], capture_output=True, check=True, timeout=60
    )
    return re.sub(r"\s+", " ", out.stdout.decode())


@pytest.fixture(scope="session")
def acme_pdf(acme: CustomerReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_customer(acme, Brand("Example IT"), tmp_path_factory.mktemp("pdf"))


@pytest.fixture(scope="session")
def bolt_pdf(bolt: CustomerReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_customer(bolt, Brand("Example IT"), tmp_path_factory.mktemp("pdf"))


def test_acme_pdf_figures(acme_pdf: Path) -> None:
    text = pdf_text(acme_pdf)
    for needle in (
        "Acme Dental Ltd 99.812% 310500 255 329 2400 1",  # customer row: 309,916 / 310,500
        "hq core-sw1 core 99.894% 0 47 480 0",  # 44,173 / 44,220
        "hq fw1 firewall 99.894% 0 47 480 1",
        "hq ups1 ups 99.826% 30 47 480 0",  # 44,143 / 44,220
        "hq srv-pms server 99.792% 45 47 480 0",  # 44,128 / 44,220
        "3 incident(s); longest 1 h 30 min; mean time to recovery 55 min",
        "Tue 06 Oct 2026 09:00 Tue 06 Oct 2026 09:45 45 min 45 min hq/srv-pms",  # BST
        "Sun 18 Oct 2026 04:00 Sun 18 Oct 2026 04:30 30 min 30 min hq/ups1",
        "sunday-patching Sun 25 Oct 2026 02:00 Sun 25 Oct 2026 04:00 120 hq",  # GMT
        "DeviceUnreachable 5 5 h 50 min",
        "InterfaceErrorsHigh 3 1 h 15 min",
        "29 of 31 runs succeeded",
        "agreement was missed",
        "Page 2 of",
    ):
        assert needle in text, needle


def test_bolt_pdf_business_hours(bolt_pdf: Path) -> None:
    text = pdf_text(bolt_pdf)
    for needle in (
        "Bolt Logistics plc 99.943% 105600 60 0 0",  # 105,540 / 105,600
        "Wed 07 Oct 2026 17:30 Wed 07 Oct 2026 19:00 90 min 30 min depot/srv-dc1",
        "Sat 17 Oct 2026 11:00 Sat 17 Oct 2026 13:00 120 min 0 min datacentre/nas1",
        "Mon 26 Oct 2026 07:30 Mon 26 Oct 2026 08:30 60 min 30 min datacentre/edge1",
        "agreement was kept",
        "business hours (Mon, Tue, Wed, Thu, Fri 08:00-18:00)",
    ):
        assert needle in text, needle


def test_csv_attached_and_beside(acme_pdf: Path) -> None:
    listing = subprocess.run(
        [require_tool("pdfdetach"), "-list", str(acme_pdf)], capture_output=True, check=True, timeout=60
    )
    names = sorted(re.findall(r"\d+: (\S+\.csv)", listing.stdout.decode()))
    assert names == ["availability.csv", "backup_jobs.csv", "incidents.csv", "maintenance.csv", "risk.csv"]
    beside = (acme_pdf.parent / "acme-dental" / "availability.csv").read_text()
    assert "customer,Acme Dental Ltd,,,310500,309916,255,329,2400,1," in beside


def test_same_data_same_bytes(acme: CustomerReport, acme_pdf: Path, tmp_path: Path) -> None:
    again = write_customer(acme, Brand("Example IT"), tmp_path)
    assert again.read_bytes() == acme_pdf.read_bytes()


def test_names_are_escaped_and_nothing_is_fetched(acme: CustomerReport, tmp_path: Path) -> None:
    dev = dataclasses.replace(acme.devices[0], name=EVIL)
    evil = dataclasses.replace(acme, devices=(dev, *acme.devices[1:]), display_name=f"Acme {EVIL}")
    html = render.customer_html(evil, Brand(), {"devices": "<svg/>", "downtime": "<svg/>"})
    assert EVIL not in html
    assert "&lt;img src=file:///etc/passwd&gt;" in html
    fetcher = render.make_fetcher()
    render.write_pdf(html, tmp_path / "evil.pdf", {}, evil.month, fetcher)
    assert fetcher.refused == []  # the name is text: no request was even attempted
    assert EVIL in pdf_text(tmp_path / "evil.pdf")


@pytest.fixture
def listener() -> Iterator[tuple[int, list[int]]]:
    """A TCP port that counts connections (the renderer must never connect)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    hits: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            hits.append(1)
            conn.close()

    t = threading.Thread(target=serve)
    t.start()
    yield srv.getsockname()[1], hits
    stop.set()
    t.join()
    srv.close()


def test_fetcher_refuses_outside_resources(listener: tuple[int, list[int]], tmp_path: Path) -> None:
    port, hits = listener
    outside = [
        "file:///etc/passwd",
        f"http://127.0.0.1:{port}/logo.png",
        f"https://127.0.0.1:{port}/x.css",
    ]
    html = (
        "<html><body><p>x</p>"
        + "".join(f'<img src="{u}">' for u in outside[:2])
        + f'<link rel="stylesheet" href="{outside[2]}">'
        + '<img src="../../../../etc/hostname">'  # relative, resolves outside the assets
        + "</body></html>"
    )
    fetcher = render.make_fetcher()
    render.write_pdf(html, tmp_path / "x.pdf", {}, "2026-10", fetcher)
    assert hits == []
    assert set(fetcher.refused) >= set(outside)
    assert any(u.endswith("/etc/hostname") for u in fetcher.refused)
    # The bundled stylesheet is the one thing it did load.
    assert not any(u.endswith("report.css") for u in fetcher.refused)


def test_summary_chart_hatches_each_customer_against_its_own_target() -> None:
    from mspwatch.reports.charts import availability_bars

    # 99.748 % misses a 99.9 % target although it beats the other customer's 99.5 %.
    both = availability_bars(["a", "b"], [0.99405, 0.99748], [99.5, 99.9], "#1f4e79")
    one = availability_bars(["a", "b"], [0.99405, 0.99748], [99.5, 99.7], "#1f4e79")
    assert hatched_bars(both) == 2
    assert hatched_bars(one) == 1


def hatched_bars(svg: str) -> int:
    """The bars drawn hatched: all of them are subpaths of one path filled with matplotlib's
    hatch pattern (one SVG element per style keeps WeasyPrint's drawing cheap)."""
    return sum(d.count("z") for d in re.findall(r'<path d="([^"]*)"[^>]*fill: url\(#h', svg))


def test_a_chart_does_not_depend_on_the_one_drawn_before() -> None:
    """Each chart kind redraws one figure: what a chart leaves behind (bars, lines, texts,
    limits, ticks, size) must never show in the next one."""
    from mspwatch.reports.charts import availability_bars, trend

    def bars() -> str:
        return availability_bars(["a", "b"], [0.99405, 0.99748], 99.5, "#1f4e79")

    def line() -> str:
        return trend([(86400 * d, 0.5 + d / 100) for d in range(1, 8)], "UTC", 95.0)

    first_bars, first_line = bars(), line()
    names = [f"site/dev{i}" for i in range(12)]
    other_bars = availability_bars(names, [0.99] * 12, [99.0] * 6 + [99.9] * 6, "#000")
    other_line = trend([(86400 * d, 0.9) for d in range(1, 29)], "Europe/London")
    assert other_bars != first_bars and other_line != first_line
    assert bars() == first_bars
    assert line() == first_line
