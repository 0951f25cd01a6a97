"""Golden /metrics per scenario: the Veeam client over real HTTP against the simulator,
restic from a snapshots file, the drop folder; every golden passes `promtool check metrics`."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from mspwatch.cli import main as mspwatch_main
from tests.conftest import assert_golden, promtool_check_metrics

from .conftest import SCENARIO_CLOCK, Sim, normalise, veeam_source, write_config

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
DATA = HERE / "data"


def check(name: str, text: str, update: bool) -> None:
    text = normalise(text)
    assert promtool_check_metrics(text) == ""
    assert_golden(GOLDEN / f"{name}.prom", text, update)


async def test_veeam_acme(acme: Sim, tmp_path: Path, exporters: Any, update_goldens: bool) -> None:
    """Every job state, >250 sessions over 4 pages, one 429 and one 500, a SureBackup
    session and a logged restore test."""
    config = write_config(tmp_path, [veeam_source(acme.url)])
    argv = [
        "backup",
        "record-restore-test",
        f"--config.file={config}",
        "--source=acme-vbr",
        "--job=File server",
        "--result=success",
        "--time=2026-01-14T10:00:00Z",
        "--by=jdoe",
        "--note=restored \\\\fs1\\finance to the sandbox",
    ]
    # As from a shell, outside this loop: the command reads the job names from the API.
    assert await asyncio.to_thread(mspwatch_main, argv) == 0
    acme.reset()  # that read used up the scenario's 429 and 500: start it over for the scrape
    text = await exporters(config).scrape("acme-vbr")
    check("veeam-acme", text, update_goldens)


async def test_veeam_smallbiz(smallbiz: Sim, tmp_path: Path, exporters: Any, update_goldens: bool) -> None:
    config = write_config(tmp_path, [veeam_source(smallbiz.url, page_size=200)])
    text = await exporters(config).scrape("acme-vbr")
    check("veeam-smallbiz", text, update_goldens)


async def test_restic_file(tmp_path: Path, exporters: Any, update_goldens: bool) -> None:
    shutil.copy(DATA / "restic-snapshots.json", tmp_path / "snapshots.json")
    shutil.copy(DATA / "restic-check.json", tmp_path / "check.json")
    os.utime(tmp_path / "check.json", (SCENARIO_CLOCK - 3600, SCENARIO_CLOCK - 3600))
    source = {
        "name": "acme-restic",
        "kind": "restic",
        "snapshots_file": "snapshots.json",
        "check_file": "check.json",
        "repository": "b2:acme-backups",
        "rpo": {"default": "26h", "jobs": [{"match": "db1:*", "rpo": "12h"}]},
    }
    config = write_config(tmp_path, [source])
    text = await exporters(config).scrape("acme-restic")
    check("restic-file", text, update_goldens)


async def test_drop_folder(
    tmp_path: Path, exporters: Any, update_goldens: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Malformed records are counted per file and logged with file and line; the rest of
    the folder is still read."""
    shutil.copytree(DATA / "drop", tmp_path / "drop")
    config = write_config(tmp_path, [{"name": "acme-drop", "kind": "folder", "path": "drop"}])
    with caplog.at_level("WARNING", logger="mspwatch.backup.folder"):
        text = await exporters(config).scrape("acme-drop")
    check("folder", text, update_goldens)
    reported = sorted(
        (r.__dict__["file"], r.__dict__["line"], r.__dict__["err"])
        for r in caplog.records
        if r.getMessage() == "malformed backup record"
    )
    assert reported == [
        ("broken.json", 4, "JSON: Expecting ',' delimiter"),
        ("legacy.csv", 4, "transferred_bytes: must be a number >= 0"),
        ("m365.jsonl", 3, "JSON: Expecting value"),
        ("m365.jsonl", 4, "end_time: want ISO 8601 (2026-01-15T22:00:00Z) or Unix seconds"),
    ]


def test_every_metric_is_documented() -> None:
    """Each family in the goldens has a row in docs/backup-metrics.md, and each row a family."""
    doc = (HERE.parents[1] / "docs" / "backup-metrics.md").read_text(encoding="utf-8")
    emitted = set()
    for path in GOLDEN.glob("*.prom"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                emitted.add(name if kind != "counter" or name.endswith("_total") else name + "_total")
    documented = set(re.findall(r"^\| `(backup_[a-z_]+)` \|", doc, flags=re.M))
    assert emitted == documented
