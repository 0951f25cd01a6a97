"""The demo estate's backup sources: config, scenarios and the scheduled files load and read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mspwatch.demo.backup import DEMO_VEEAM_PASSWORD, materialise_estate, scenario_for
from mspwatch.demo.kit import Ports, write_estate_inventory
from mspwatch.exporters.backup.config import load_config
from mspwatch.inventory import VeeamSource
from mspwatch.simulators.veeam.scenario import load_scenario

from .conftest import value

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MSPWATCH_DEMO_VEEAM_PASSWORD", DEMO_VEEAM_PASSWORD)
    # As the demo does: the estate inventory is written once with the moved ports, then each
    # area writes its own files beside it.
    write_estate_inventory(tmp_path / "estate" / "inventory.yml", Ports().shifted(1000))
    return materialise_estate(tmp_path / "estate", NOW)


def test_estate_config_loads_with_veeam_on_the_shifted_port(estate: Path) -> None:
    loaded = load_config(estate)
    by_customer = {(cs.customer, name, cs.source.kind) for name, cs in loaded.sources.items()}
    assert by_customer == {
        ("acme-dental", "acme-vbr", "veeam"),
        ("acme-dental", "acme-offsite", "restic"),
        ("bolt-logistics", "bolt-vbr", "veeam"),
        ("bolt-logistics", "bolt-cloud", "folder"),
    }
    urls = {n: cs.source.url for n, cs in loaded.sources.items() if isinstance(cs.source, VeeamSource)}
    assert urls == {"acme-vbr": "http://127.0.10.50:10419", "bolt-vbr": "http://127.0.20.50:10419"}


def test_every_veeam_source_has_a_running_clock_scenario(estate: Path) -> None:
    for name, cs in load_config(estate).sources.items():
        if isinstance(cs.source, VeeamSource):
            scenario = load_scenario(scenario_for(name))
            assert scenario.jobs and scenario.sessions, name
            assert any(s.type == "SureBackup" for s in scenario.sessions), f"{name}: a restore test"


async def test_file_sources_read_as_a_scheduler_wrote_them(estate: Path, exporters: Any) -> None:
    exp = exporters(estate, clock=lambda: NOW)
    restic = await exp.scrape("acme-offsite")
    assert value(restic, "backup_up") == 1
    assert value(restic, "backup_jobs") == 1
    job = '{job_name="pms-server:/srv/pms-export"}'
    # The newest nightly snapshot is from 01:00 today; the check ran after it.
    assert value(restic, f"backup_job_last_success_timestamp_seconds{job}") == NOW - 11 * 3600
    assert value(restic, f"backup_job_within_rpo{job}") == 1
    assert value(restic, 'backup_repository_check_success{repository="b2:acme-dental-offsite"}') == 1
    assert value(restic, f"backup_restore_test_last_timestamp_seconds{job}") == NOW - 40 * 86400
    cloud = await exp.scrape("bolt-cloud")
    assert value(cloud, "backup_up") == 1
    assert value(cloud, "backup_jobs") == 2
    assert value(cloud, 'backup_job_within_rpo{job_name="Mailboxes"}') == 1
    assert value(cloud, 'backup_drop_file_malformed_records{file="cloud-backup.jsonl"}') == 0
