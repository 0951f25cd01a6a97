"""The inventory-state exporter: golden /metrics at two instants of the estate's week, the
DST-correct windows, the routes, reload, and the real process answering on loopback."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mspwatch.cli import main as mspwatch_main
from mspwatch.common.config import ConfigError
from mspwatch.common.procs import free_port, spawn, stop_process, wait_for_port
from mspwatch.exporters.core.server import ExporterMetrics, ExporterServer
from mspwatch.exporters.core.webconfig import WebConfig
from mspwatch.exporters.inventory.main import InventoryApp
from tests.conftest import ROOT, assert_golden, promtool_check_metrics

HERE = Path(__file__).parent
ESTATE = ROOT / "simulators" / "estate" / "inventory.yml"
_DURATION = re.compile(r"^(inventory_scrape_duration_seconds) .*$", re.M)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def get(app: InventoryApp, params: dict[str, str] | None = None) -> httpx.Response:
    server = ExporterServer(app, web=WebConfig(), metrics=ExporterMetrics("inventory", "test"))
    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
        return await client.get("/inventory", params=params or {})


def normalise(text: str) -> str:
    return _DURATION.sub(r"\1 0.0", text)


# Saturday 14 November 2026, 23:00 GMT: bolt's depot is in its Saturday-night window and its
# datacentre in the one-off core-switch swap; acme is outside its business hours.
# Monday 16 November, 09:00 GMT: acme's business hours, no window open.
CASES = {"saturday-night": "2026-11-14T23:00", "monday-morning": "2026-11-16T09:00"}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_golden(case: str, update_goldens: bool) -> None:
    app = InventoryApp(ESTATE, clock=lambda: ts(CASES[case]))
    resp = await get(app)
    assert resp.status_code == 200
    text = normalise(resp.text)
    assert_golden(HERE / "golden" / f"{case}.prom", text, update_goldens)
    assert promtool_check_metrics(text) == ""


def _values(text: str, name: str) -> dict[str, float]:
    return {
        m.group(1): float(m.group(2)) for m in re.finditer(rf"^{name}\{{(.*)\}} (\S+)$", text, flags=re.M)
    }


@pytest.mark.parametrize(
    ("when", "hq", "hours"),
    [
        ("2026-10-18T01:00", 1.0, 0.0),  # Sunday 02:00 BST: the window 02:00-04:00 local opens
        ("2026-10-18T03:00", 0.0, 0.0),  # 04:00 BST: closed (a UTC-naive window is open until 04:00Z)
        ("2026-10-25T01:30", 0.0, 0.0),  # 01:30 GMT, after the clocks went back at 01:00Z
        ("2026-10-25T02:00", 1.0, 0.0),  # 02:00 GMT: open
        ("2026-10-25T04:00", 0.0, 0.0),  # 04:00 GMT: closed
        ("2026-10-26T07:30", 0.0, 0.0),  # Monday 07:30 GMT: before business hours
        ("2026-10-26T08:00", 0.0, 1.0),  # Monday 08:00 GMT: business hours (a stale BST offset says 09:00)
        ("2026-10-23T07:00", 0.0, 1.0),  # Friday 08:00 BST
        ("2026-10-23T17:00", 0.0, 0.0),  # Friday 18:00 BST: the end is exclusive
    ],
)
async def test_windows_follow_the_customers_wall_clock(when: str, hq: float, hours: float) -> None:
    app = InventoryApp(ESTATE, clock=lambda: ts(when))
    text = (await get(app, {"target": "acme-dental"})).text
    assert _values(text, "inventory_maintenance_active") == {
        'customer="acme-dental",site="hq"': hq,
        'customer="acme-dental",site="branch-york"': 0.0,
    }
    assert _values(text, "inventory_contract_measuring") == {'customer="acme-dental"': hours}
    assert "bolt-logistics" not in text


async def test_unknown_customer_is_a_bad_request() -> None:
    resp = await get(InventoryApp(ESTATE), {"target": "nobody"})
    assert resp.status_code == 400
    assert "unknown customer 'nobody'" in resp.text


def test_reload_keeps_the_old_inventory_on_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text(ESTATE.read_text(encoding="utf-8"), encoding="utf-8")
    app = InventoryApp(path)
    path.write_text("customers:\n  - name: acme\n    timezone: Mars/Olympus\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        app.reload()
    assert str(err.value) == (
        f"{path}: customers.0.timezone: unknown time zone 'Mars/Olympus':"
        " use an IANA name such as Europe/London or UTC"
    )
    assert [c.name for c in app.inventory.customers] == ["acme-dental", "bolt-logistics"]


def test_a_bad_inventory_fails_at_start_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text("customers:\n  - name: acme\n    sitez: []\n", encoding="utf-8")
    assert mspwatch_main(["inventory-exporter", f"--inventory.file={path}", "--config.check"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: customers.0.sitez:"), err
    assert mspwatch_main(["inventory-exporter", f"--inventory.file={ESTATE}", "--config.check"]) == 0


def test_the_real_process_serves_the_estate(tmp_path: Path) -> None:
    port = free_port()
    proc = spawn(
        [
            sys.executable,
            "-m",
            "mspwatch.cli",
            "inventory-exporter",
            f"--inventory.file={ESTATE}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path / "exporter.log",
        cwd=ROOT,
    )
    try:
        wait_for_port(port, proc=proc)
        text = httpx.get(f"http://127.0.0.1:{port}/inventory", timeout=10).text
        own = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        stop_process(proc)
    assert "inventory_up 1.0" in text
    assert len(_values(text, "inventory_device_info")) == 15  # 7 acme + 8 bolt devices
    assert "inventory_exporter_config_last_reload_successful 1.0" in own


def test_every_metric_is_documented() -> None:
    """Each family in the goldens has a row in docs/inventory-metrics.md, and each row a family."""
    doc = (ROOT / "docs" / "inventory-metrics.md").read_text(encoding="utf-8")
    emitted = {
        line.split()[2]
        for path in (HERE / "golden").glob("*.prom")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("# TYPE ")
    }
    documented = set(re.findall(r"^\| `(inventory_[a-z_]+)` \|", doc, flags=re.M))
    assert emitted == documented
