"""The patch exporter end to end: config and inventory files, the HTTP routes, the same
output as the client goldens, invalid configs with exact messages, no secret anywhere."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mspwatch.cli import main as mspwatch_main
from mspwatch.common.config import ConfigError
from mspwatch.exporters.core.server import ExporterMetrics, ExporterServer
from mspwatch.exporters.core.webconfig import WebConfig
from mspwatch.exporters.patch.config import load_config
from mspwatch.exporters.patch.main import PatchApp

from .conftest import CLIENT_ID, SECRET, Sim, normalise

HERE = Path(__file__).parent
INVALID = HERE / "invalid"


def write_config(directory: Path, url: str, *, secret: str = SECRET, **policy: Any) -> Path:
    customer: dict[str, Any] = {
        "name": "acme-dental",
        "timezone": "Europe/London",
        "patch_sources": [
            {
                "name": "acme-ninja",
                "kind": "ninjaone",
                "url": url,
                "organization": "Acme Dental",
                "credentials": "acme_ninja",
            }
        ],
    }
    if policy:
        customer["patch_policy"] = policy
    (directory / "inventory.yml").write_text(yaml.safe_dump({"customers": [customer]}), encoding="utf-8")
    config = {
        "inventory": "inventory.yml",
        "credentials": {"acme_ninja": {"client_id": CLIENT_ID, "client_secret": secret}},
        "ninjaone": {"page_size": 100},
    }
    path = directory / "patch.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Exporter:
    def __init__(self, config: Path, sim: Sim) -> None:
        self.app = PatchApp(config, clock=sim.now)
        self.server = ExporterServer(self.app, web=WebConfig(), metrics=ExporterMetrics("patch", "test"))

    async def get(self, path: str, params: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.server)
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
            return await client.get(
                path, params=params, headers={"X-Prometheus-Scrape-Timeout-Seconds": "30"}
            )


async def test_scrape_equals_the_client_golden(fleet: Sim, tmp_path: Path) -> None:
    exporter = Exporter(write_config(tmp_path, fleet.url), fleet)
    try:
        resp = await exporter.get("/patch", {"target": "acme-ninja"})
    finally:
        await exporter.app.stop()
    assert resp.status_code == 200
    assert normalise(resp.text) == (HERE / "golden" / "ninjaone-fleet.prom").read_text(encoding="utf-8")


async def test_bad_requests(fleet: Sim, tmp_path: Path) -> None:
    exporter = Exporter(write_config(tmp_path, fleet.url), fleet)
    try:
        missing = await exporter.get("/patch", {})
        unknown = await exporter.get("/patch", {"target": "nobody"})
    finally:
        await exporter.app.stop()
    assert (missing.status_code, missing.text) == (400, "'target' parameter must be specified\n")
    assert (unknown.status_code, unknown.text) == (400, "unknown patch source 'nobody'\n")


async def test_policy_from_the_inventory(fleet: Sim, tmp_path: Path) -> None:
    """A customer allowing 30 days for security updates: acme-sql1 is within them."""
    exporter = Exporter(write_config(tmp_path, fleet.url, security_days=30, target_compliance=80), fleet)
    try:
        text = (await exporter.get("/patch", {"target": "acme-ninja"})).text
    finally:
        await exporter.app.stop()
    assert 'patch_device_noncompliant{device="acme-sql1",reason="missing_critical"} 0.0' in text
    assert "patch_policy_target_compliance_ratio 0.8" in text


async def test_reload_keeps_the_token(fleet: Sim, tmp_path: Path) -> None:
    config = write_config(tmp_path, fleet.url)
    exporter = Exporter(config, fleet)
    try:
        await exporter.get("/patch", {"target": "acme-ninja"})
        exporter.server.reload()
        await exporter.get("/patch", {"target": "acme-ninja"})
    finally:
        await exporter.app.stop()
    assert [r["status"] for r in fleet.requests() if r["path"] == "/ws/oauth/token"] == [200]


async def test_secret_never_shown(fleet: Sim, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = "Wrong-Ninja-Secret-7f3"
    exporter = Exporter(write_config(tmp_path, fleet.url, secret=secret), fleet)
    try:
        with caplog.at_level(logging.DEBUG):
            probe = await exporter.get("/patch", {"target": "acme-ninja"})
            own = await exporter.get("/metrics", {})
    finally:
        await exporter.app.stop()
    assert 'patch_scrape_error{reason="auth"} 1.0' in probe.text
    for text in (probe.text, own.text, caplog.text, repr(exporter.app.loaded)):
        assert secret not in text


def test_config_check(fleet: Sim, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, fleet.url)
    assert mspwatch_main(["patch-exporter", f"--config.file={config}", "--config.check"]) == 0
    assert capsys.readouterr().out == f"{config}: OK\n"


INVALID_CASES = {
    "unknown-key.yml": "{dir}/unknown-key.yml: ninjaone.page_sise: unknown field",
    "unknown-credentials.yml": "{dir}/unknown-credentials-inventory.yml:"
    " customers.0.patch_sources.1.credentials:"
    " unknown credentials 'acme_ninja2' (not in unknown-credentials.yml)",
    "missing-secret.yml": "{dir}/missing-secret.yml: credentials.acme_ninja.client_secret:"
    " required field is missing",
    "page-size.yml": "{dir}/page-size.yml: ninjaone.page_size: Input should be greater than or equal to 1",
    "bad-duration.yml": "{dir}/bad-duration.yml: ninjaone.install_lookback: invalid duration '5 weeks',"
    " want a duration such as 500ms, 30s, 1h30m or 7d",
    "unset-env.yml": "{dir}/unset-env.yml: credentials.acme_ninja.client_secret:"
    " environment variable MSPWATCH_TEST_UNSET_NINJA_SECRET is not set",
    "no-inventory-file.yml": "{dir}/no-such-inventory.yml: cannot read: No such file or directory",
    "bad-ca.yml": "{dir}/bad-ca.yml: ninjaone.ca_file: {dir}/inventory.yml is not a PEM CA bundle",
    "intune-unknown-app.yml": "{dir}/intune-inventory.yml: customers.0.patch_sources.0.tenant:"
    " tenant 'acme' uses app 'partner' (apps in intune-unknown-app.yml: msp)",
    "quality-update-twice.yml": "{dir}/quality-update-twice.yml: intune.quality_updates:"
    " build '10.0.26100' revision 2894 is listed twice",
    "quality-update-order.yml": "{dir}/quality-update-order.yml: intune.quality_updates:"
    " build '10.0.26100': revision 3037 released 2026-01-13 is not after revision 2894 (2026-02-10)",
    # the Graph files are checked by the helper m365.yml uses too: loaded, not only found
    "graph-ca-not-pem.yml": "{dir}/graph-ca-not-pem.yml: graph.ca_file: {dir}/intune-inventory.yml"
    " is not a PEM CA bundle",
}


def test_every_invalid_file_has_a_case() -> None:
    files = {p.name for p in INVALID.glob("*.yml") if not p.name.endswith("inventory.yml")}
    assert files == set(INVALID_CASES)


@pytest.mark.parametrize(("name", "message"), sorted(INVALID_CASES.items()))
def test_invalid_config(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(INVALID / name)
    assert str(exc.value) == message.format(dir=INVALID)


async def test_intune_source_end_to_end(tmp_path: Path) -> None:
    """An Intune source named in the inventory: the exporter's own Graph pool and msal."""
    from tests.m365.conftest import _start as start_graph

    from .test_intune import NOW

    sims = start_graph(tmp_path / "graph", "intune")
    sim = next(sims)
    try:
        inventory = {
            "customers": [
                {
                    "name": "acme-dental",
                    "timezone": "Europe/London",
                    "m365_tenants": [{"name": "acme", "tenant_id": "0a1c3e5f-0000-4000-8000-00000000ac3e"}],
                    "patch_sources": [{"name": "acme-intune", "kind": "intune", "tenant": "acme"}],
                }
            ]
        }
        (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
        config = {
            "inventory": "inventory.yml",
            "apps": {
                "msp": {
                    "client_id": "4f1c2d9e-0000-4000-8000-000000000001",
                    "client_secret": "sim-msp-secret",
                }
            },
            "graph": {"url": sim.url, "authority_host": sim.url, "ca_file": str(sim.ca_file)},
            "intune": {
                "quality_updates": [{"build": "10.0.26100", "revision": 2894, "released": "2026-01-13"}]
            },
        }
        (tmp_path / "patch.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        app = PatchApp(tmp_path / "patch.yml", clock=lambda: NOW)
        server = ExporterServer(app, web=WebConfig(), metrics=ExporterMetrics("patch", "test"))
        try:
            transport = httpx.ASGITransport(app=server)
            async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
                resp = await client.get("/patch", params={"target": "acme-intune"})
        finally:
            await app.stop()
    finally:
        next(sims, None)  # stops the simulator
    assert resp.status_code == 200
    assert normalise(resp.text) == (HERE / "golden" / "intune-acme.prom").read_text(encoding="utf-8")
