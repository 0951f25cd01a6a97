"""RPO is the age of the last restore point, not of the last success.

A Veeam run that ends in Warning still writes a restore point (so does every restic
snapshot): a daily job that warns must not go past a 26h RPO. Each source kind is read the
way the exporter reads it in production: Veeam over HTTP from a simulator, the drop folder
from files, restic from its snapshots JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mspwatch.common.procs import stop_process
from mspwatch.exporters.backup.mapping import SourceScrape, map_source
from mspwatch.exporters.backup.records import JobRecord, SourceData
from mspwatch.inventory import RpoConfig

from .conftest import PASSWORD, SCENARIO_CLOCK, Sim, start_sim, value, veeam_source, write_config

H = 3600.0

# "Warned" last ran 1h ago with a warning, its last success is 40h old; "Stale" failed 2h ago
# and its last restore point (a warning) is 30h old. Veeam: with a 1-day session window,
# Stale's restore point and both successes lie beyond it and must be asked for.
SCENARIO = {
    "clock": "2026-01-15T06:00:00Z",
    "users": {"svc-monitor": PASSWORD},
    "jobs": [
        {
            "name": "Warned",
            "type": "Backup",
            "sessions": [
                {"start": "-1h", "duration": "20m", "result": "Warning"},
                {"start": "-40h", "duration": "20m", "result": "Success"},
            ],
        },
        {
            "name": "Stale",
            "type": "Backup",
            "sessions": [
                {"start": "-2h", "duration": "20m", "result": "Failed"},
                {"start": "-30h", "duration": "20m", "result": "Warning"},
                {"start": "-50h", "duration": "20m", "result": "Success"},
            ],
        },
        {
            "name": "Fresh success",
            "type": "Backup",
            "sessions": [{"start": "-30h", "duration": "20m", "result": "Success"}],
        },
    ],
}


def _assert_rpo(text: str) -> None:
    def job(metric: str, name: str) -> float | None:
        return value(text, f'{metric}{{job_name="{name}"}}')

    assert value(text, "backup_up") == 1
    assert job("backup_job_rpo_seconds", "Warned") == 26 * H
    assert job("backup_job_last_restore_point_timestamp_seconds", "Warned") == SCENARIO_CLOCK - 1 * H
    assert job("backup_job_last_success_timestamp_seconds", "Warned") == SCENARIO_CLOCK - 40 * H
    assert job("backup_job_within_rpo", "Warned") == 1
    assert job("backup_job_last_restore_point_timestamp_seconds", "Stale") == SCENARIO_CLOCK - 30 * H
    assert job("backup_job_last_success_timestamp_seconds", "Stale") == SCENARIO_CLOCK - 50 * H
    assert job("backup_job_within_rpo", "Stale") == 0


@pytest.fixture
def rpo_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    folder = tmp_path_factory.mktemp("rpo-sim")
    scenario = folder / "rpo.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO), encoding="utf-8")
    proc, port = start_sim(scenario, folder / "sim.log")
    sim = Sim(proc, f"http://127.0.0.1:{port}")
    try:
        yield sim
    finally:
        sim.admin.close()
        stop_process(proc)


async def test_veeam_warning_is_a_restore_point(rpo_sim: Sim, tmp_path: Path, exporters: Any) -> None:
    """Within the window (Warned's warning 1h ago) and beyond it (Stale's warning 30h ago,
    found with resultFilter=Success&resultFilter=Warning, then its older success)."""
    config = write_config(tmp_path, [veeam_source(rpo_sim.url, session_lookback="1d")])
    exp = exporters(config)
    text = await exp.scrape("acme-vbr")
    _assert_rpo(text)
    # Fresh success: no session in the window, jobs/states says lastResult Success: its
    # lastRun is both the last success and the last restore point, without a request.
    assert value(text, 'backup_job_last_success_timestamp_seconds{job_name="Fresh success"}') == (
        SCENARIO_CLOCK - 30 * H
    )
    assert value(text, 'backup_job_last_restore_point_timestamp_seconds{job_name="Fresh success"}') == (
        SCENARIO_CLOCK - 30 * H
    )
    lookups = [
        r["query"]["resultFilter"]
        for r in rpo_sim.requests()
        if r["path"] == "/api/v1/sessions" and "jobIdFilter" in r["query"]
    ]
    # Warned: restore point in the window, success beyond it; Stale: the newest restore
    # point beyond the window is a warning, so the success is asked for as well.
    assert sorted(map(str, lookups)) == ["Success", "Success", "['Success', 'Warning']"]
    # The answers beyond the window are cached: a second scrape asks nothing per job.
    again = await exp.scrape("acme-vbr")
    _assert_rpo(again)
    assert value(again, "backup_scrape_requests") == 3  # jobs/states, sessions, repositories


async def test_drop_folder_warning_is_a_restore_point(tmp_path: Path, exporters: Any) -> None:
    runs = [
        {"job_name": "Warned", "result": "warning", "start_time": SCENARIO_CLOCK - 1 * H},
        {"job_name": "Warned", "result": "success", "start_time": SCENARIO_CLOCK - 40 * H},
        {"job_name": "Stale", "result": "failed", "start_time": SCENARIO_CLOCK - 2 * H},
        {"job_name": "Stale", "result": "warning", "start_time": SCENARIO_CLOCK - 30 * H},
        {"job_name": "Stale", "result": "success", "start_time": SCENARIO_CLOCK - 50 * H},
    ]
    drop = tmp_path / "drop"
    drop.mkdir()
    lines = [json.dumps({**r, "end_time": int(r["start_time"]) + 1200}) for r in runs]
    (drop / "runs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = write_config(tmp_path, [{"name": "acme-drop", "kind": "folder", "path": "drop"}])
    _assert_rpo(await exporters(config).scrape("acme-drop"))


async def test_every_restic_snapshot_is_a_restore_point(tmp_path: Path, exporters: Any) -> None:
    snapshots = [
        {"time": "2026-01-15T05:00:00Z", "hostname": "web1", "paths": ["/srv"]},
        {"time": "2026-01-14T00:00:00Z", "hostname": "db1", "paths": ["/var/lib/db"]},
    ]
    (tmp_path / "snapshots.json").write_text(json.dumps(snapshots), encoding="utf-8")
    source = {"name": "acme-restic", "kind": "restic", "snapshots_file": "snapshots.json"}
    text = await exporters(write_config(tmp_path, [source])).scrape("acme-restic")
    web, db = 'job_name="web1:/srv"', 'job_name="db1:/var/lib/db"'
    assert value(text, f"backup_job_last_restore_point_timestamp_seconds{{{web}}}") == SCENARIO_CLOCK - 1 * H
    assert value(text, f"backup_job_within_rpo{{{web}}}") == 1
    assert value(text, f"backup_job_last_restore_point_timestamp_seconds{{{db}}}") == SCENARIO_CLOCK - 30 * H
    assert value(text, f"backup_job_within_rpo{{{db}}}") == 0


def test_mapping_judges_rpo_from_the_restore_point() -> None:
    """The pure mapping: a success always counts as a restore point, even if a client
    filled only last_success."""
    now = SCENARIO_CLOCK
    jobs = [
        JobRecord("Warned", "t", last_result="warning", last_run=now - H, last_success=now - 40 * H,
                  last_restore_point=now - H),
        JobRecord("Stale", "t", last_result="failed", last_run=now - 2 * H, last_success=now - 50 * H,
                  last_restore_point=now - 30 * H),
        JobRecord("Success only", "t", last_result="success", last_success=now - 2 * H),
        JobRecord("Never", "t", last_result="failed", last_run=now - H),
    ]  # fmt: skip
    scrape = SourceScrape(data=SourceData(jobs=jobs), now=now, rpo=RpoConfig())
    within = {
        s.labels["job_name"]: s.value
        for family in map_source(scrape)
        if family.name == "backup_job_within_rpo"
        for s in family.samples
    }
    assert within == {"Warned": 1.0, "Stale": 0.0, "Success only": 1.0, "Never": 0.0}
