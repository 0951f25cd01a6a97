"""Reloads: a config that cannot work keeps the old one serving and says so in a metric."""

from __future__ import annotations

from pathlib import Path

import httpx

from mspwatch.exporters.core.server import ExporterMetrics, ExporterServer, ServerOptions
from mspwatch.exporters.core.webconfig import WebConfig
from mspwatch.exporters.snmp.main import SnmpApp

from .helpers import write_config


async def test_a_reload_into_a_broken_file_keeps_the_old_config(tmp_path: Path) -> None:
    path = write_config(tmp_path / "snmp.yml", {"max_devices_in_flight": 7})
    app = SnmpApp(path)
    server = ExporterServer(
        app, web=WebConfig(), metrics=ExporterMetrics("snmp", "test"), options=ServerOptions()
    )
    server.metrics.reloaded(True)
    before = app.config
    good = path.read_bytes()
    for broken in (good.replace(b"walk", b"w\xffalk"), b"auths: [\n", good + b"nonsense_key: 1\n"):
        path.write_bytes(broken)
        assert not server.reload()
        assert app.config is before
        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
            own = (await client.get("/metrics")).text
        assert "snmp_exporter_config_last_reload_successful 0.0" in own
    path.write_bytes(good.replace(b"max_devices_in_flight: 7", b"max_devices_in_flight: 3"))
    assert server.reload()
    assert app.max_in_flight == 3
