"""The command: month checks, one-line errors, and a full run writing every PDF."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mspwatch.cli import main
from mspwatch.common.procs import free_port
from mspwatch.reports.main import check_month
from mspwatch.reports.query import Prometheus, QueryError
from tests.conftest import ROOT
from tests.reports.groundtruth import utc

ESTATE = ROOT / "simulators" / "estate" / "inventory.yml"


def test_month_checks() -> None:
    now = utc("2026-12-01T11:00")
    assert check_month("2026-11", now) is None
    assert check_month("2026-12", now) == "month 2026-12 has not ended yet"
    assert check_month("2027-01", now) == "month 2027-01 is in the future"
    assert check_month("2026-13", now) == "--month '2026-13' is not YYYY-MM"


def test_unreachable_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    rc = main(["report", "--month", "2026-10", "--prometheus-url", url, "--out", str(tmp_path),
               "--inventory", str(ESTATE), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert err == f"error: Prometheus at {url} is unreachable (ConnectError)"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    conns: list[socket.socket] = []
    stop = threading.Event()
    srv.settimeout(0.1)

    def serve() -> None:
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except TimeoutError:
                continue

    t = threading.Thread(target=serve)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


def test_hanging_server_is_bounded(silent_port: int) -> None:
    with Prometheus(f"http://127.0.0.1:{silent_port}", timeout=0.5) as prom, pytest.raises(QueryError) as exc:
        prom.instant("vector(1)", 0)
    assert str(exc.value) == f"Prometheus at http://127.0.0.1:{silent_port} did not answer in time"


def test_bad_query_is_one_line(prometheus_url: str) -> None:
    with Prometheus(prometheus_url) as prom, pytest.raises(QueryError) as exc:
        prom.instant("sum(", 0)
    assert str(exc.value).startswith(f"Prometheus at {prometheus_url} refused the query: ")
    assert "\n" not in str(exc.value)


def test_no_data_for_customer(
    prometheus_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["report", "--month", "2026-06", "--prometheus-url", prometheus_url, "--out", str(tmp_path),
               "--inventory", str(ESTATE), "--customer", "acme-dental", "--no-progress"])  # fmt: skip
    assert rc == 1
    assert (
        f"Prometheus at {prometheus_url} has no data for customer 'acme-dental' in June 2026"
        in capsys.readouterr().err
    )


def test_full_run(prometheus_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["report", "--month", "2026-10", "--prometheus-url", prometheus_url, "--out", str(tmp_path),
               "--inventory", str(ESTATE), "--no-progress"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    month = tmp_path / "2026-10"
    assert sorted(p.name for p in month.glob("*.pdf")) == [
        "acme-dental.pdf",
        "bolt-logistics.pdf",
        "summary.pdf",
    ]
    assert (month / "summary.csv").read_text().startswith("customer,availability,target,met,incidents")
