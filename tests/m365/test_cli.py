"""`mspwatch m365-exporter` as a real process: background refresh, reload, config check."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from mspwatch.common.procs import free_port, wait_for_port
from tests.conftest import ROOT

from .conftest import MSP_CLIENT_ID, MSP_SECRET, Sim

CLI = [sys.executable, "-m", "mspwatch.cli", "m365-exporter"]


def _config(tmp_path: Path, sim: Sim, tenants: list[dict[str, str]]) -> Path:
    (tmp_path / "inventory.yml").write_text(
        yaml.safe_dump({"customers": [{"name": "contoso-ltd", "m365_tenants": tenants}]})
    )
    path = tmp_path / "m365.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "inventory": "inventory.yml",
                "apps": {"msp": {"client_id": MSP_CLIENT_ID, "client_secret": {"env": "TEST_M365_SECRET"}}},
                "graph": {"url": sim.url, "authority_host": sim.url, "ca_file": str(sim.ca_file)},
            }
        )
    )
    return path


def _poll(url: str, until: Callable[[httpx.Response], bool], seconds: float = 30.0) -> httpx.Response:
    """GET until the answer satisfies ``until`` (the background refresh is asynchronous)."""
    end = time.monotonic() + seconds
    while True:
        response = httpx.get(url, timeout=10, headers={"X-Prometheus-Scrape-Timeout-Seconds": "5"})
        if until(response) or time.monotonic() > end:
            return response
        time.sleep(0.2)


def test_exporter_process(health_sim: Sim, tmp_path: Path, start_process: Any) -> None:
    cfg = _config(tmp_path, health_sim, [{"name": "contoso", "tenant_id": "contoso.onmicrosoft.com"}])
    port = free_port()
    env = {"TEST_M365_SECRET": MSP_SECRET, "PYTHONPATH": str(ROOT)}
    proc = start_process(
        [*CLI, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=debug"],
        "m365-exporter",
        env=env,
    )
    wait_for_port(port, proc=proc)
    base = f"http://127.0.0.1:{port}"
    probe = _poll(f"{base}/m365?target=contoso", lambda r: "m365_up 1.0" in r.text)
    assert "m365_up 1.0" in probe.text
    assert 'm365_service_degraded{service="Exchange Online"} 1.0' in probe.text
    assert httpx.get(f"{base}/m365").status_code == 400
    unknown = httpx.get(f"{base}/m365?target=nobody")
    assert unknown.status_code == 400
    assert "unknown target" in unknown.text
    own = httpx.get(f"{base}/metrics").text
    assert "m365_exporter_build_info" in own
    assert 'm365_exporter_probes_total{outcome="bad_request"} 2.0' in own

    # A reload adds a tenant; the one already there keeps its data and counters.
    _config(
        tmp_path,
        health_sim,
        [
            {"name": "contoso", "tenant_id": "contoso.onmicrosoft.com"},
            {"name": "fabrikam", "tenant_id": "fabrikam.onmicrosoft.com"},
        ],
    )
    assert httpx.post(f"{base}/-/reload").status_code == 200
    fabrikam = _poll(f"{base}/m365?target=fabrikam", lambda r: "m365_up 1.0" in r.text)
    assert "m365_up 1.0" in fabrikam.text
    again = httpx.get(f"{base}/m365?target=contoso").text
    assert 'm365_graph_requests_total{code="200"} 9.0' in again  # not rebuilt, not refetched

    log = (tmp_path / "m365-exporter.log").read_text()
    assert MSP_SECRET not in log
    assert "simtok." not in log


def test_config_check(health_sim: Sim, tmp_path: Path) -> None:
    cfg = _config(tmp_path, health_sim, [{"name": "contoso", "tenant_id": "contoso.onmicrosoft.com"}])
    env = {"TEST_M365_SECRET": MSP_SECRET, "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(
        [*CLI, f"--config.file={cfg}", "--config.check"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"{cfg}: OK"
    bad = subprocess.run(
        [*CLI, f"--config.file={cfg}", "--config.check"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=ROOT,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        f"error: {cfg}: apps.msp.client_secret: environment variable TEST_M365_SECRET is not set"
    )
