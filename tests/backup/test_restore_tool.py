"""record-restore-test refuses a job the source does not report; remove-restore-test takes
a wrong entry back. Job names are read as the exporter reads them (Veeam over its API)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from mspwatch.cli import main as mspwatch_main

from .conftest import Sim, value, veeam_source, write_config

DATA = Path(__file__).parent / "data"
PHANTOM = 'backup_restore_test_last_timestamp_seconds{job_name="SQL nigthly"}'


def _record(config: Path, *args: str) -> int:
    return mspwatch_main(
        ["backup", "record-restore-test", f"--config.file={config}", "--result=success", *args]
    )


async def _arecord(config: Path, *args: str) -> int:
    """The command as a shell runs it: outside this test's event loop."""
    return await asyncio.to_thread(_record, config, *args)


def _errors(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The command's error lines (log records of the source client may precede them)."""
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error: ")]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_misspelt_veeam_job_is_refused(acme: Sim, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, [veeam_source(acme.url)])
    assert _record(config, "--source=acme-vbr", "--job=SQL nigthly") == 1
    errors = _errors(capsys)
    assert len(errors) == 1  # one line
    err = errors[0]
    assert err.startswith("error: backup source 'acme-vbr' reports no job 'SQL nigthly'")
    assert "(did you mean 'SQL nightly'?)" in err
    assert "--allow-unknown-job" in err and "mspwatch backup remove-restore-test" in err
    assert _lines(tmp_path / "restore-tests.jsonl") == []
    # The right name is accepted.
    assert _record(config, "--source=acme-vbr", "--job=SQL nightly") == 0
    assert [e["job"] for e in _lines(tmp_path / "restore-tests.jsonl")] == ["SQL nightly"]


async def test_unknown_job_recorded_anyway_then_removed(
    acme: Sim, tmp_path: Path, exporters: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, [veeam_source(acme.url)])
    log = tmp_path / "restore-tests.jsonl"
    assert (
        await _arecord(config, "--source=acme-vbr", "--job=SQL nightly", "--time=2026-01-10T09:00:00Z") == 0
    )
    assert (
        await _arecord(
            config,
            "--source=acme-vbr",
            "--job=SQL nigthly",
            "--allow-unknown-job",
            "--time=2026-01-11T09:00:00Z",
        )
        == 0
    )
    exp = exporters(config)
    assert value(await exp.scrape("acme-vbr"), PHANTOM) == 1768122000
    remove = ["backup", "remove-restore-test", f"--config.file={config}", "--source=acme-vbr"]
    assert await asyncio.to_thread(mspwatch_main, [*remove, "--job=SQL nigthly", "--by=amy"]) == 0
    text = await exp.scrape("acme-vbr")
    assert value(text, PHANTOM) is None  # the phantom series is gone
    assert value(text, 'backup_restore_test_last_timestamp_seconds{job_name="SQL nightly"}') == 1768035600
    last = _lines(log)[-1]
    assert (last["job"], last["removed"], last["by"]) == ("SQL nigthly", True, "amy")
    capsys.readouterr()
    # Removing what is not (or no longer) logged is refused: a typo here changes nothing.
    assert await asyncio.to_thread(mspwatch_main, [*remove, "--job=SQL nigthly"]) == 1
    assert "holds no restore test of job 'SQL nigthly'" in capsys.readouterr().err
    # A test recorded after the removal counts again.
    assert await _arecord(config, "--source=acme-vbr", "--job=SQL nigthly", "--allow-unknown-job") == 0
    assert value(await exp.scrape("acme-vbr"), PHANTOM) is not None


def test_unreadable_source_is_refused_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, [veeam_source("http://127.0.0.1:9")])
    assert _record(config, "--source=acme-vbr", "--job=SQL nightly") == 1
    [err] = _errors(capsys)
    assert err.startswith("error: cannot read the jobs of 'acme-vbr' (unreachable: ")
    assert err.rstrip().endswith("to record it anyway, add --allow-unknown-job")
    assert _record(config, "--source=acme-vbr", "--job=SQL nightly", "--allow-unknown-job") == 0


@pytest.mark.parametrize(
    ("source", "known", "unknown"),
    [
        (
            {"name": "acme-restic", "kind": "restic", "snapshots_file": str(DATA / "restic-snapshots.json")},
            "web1:/etc,/srv/www",
            "web1:/srv/www",
        ),
        (
            {"name": "acme-drop", "kind": "folder", "path": str(DATA / "drop")},
            "Tape rotation",
            "Tape rotaton",
        ),
    ],
)
def test_restic_and_folder_jobs_come_from_their_data(
    source: dict[str, Any], known: str, unknown: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, [source])
    assert _record(config, f"--source={source['name']}", f"--job={unknown}") == 1
    assert f"reports no job {unknown!r} (did you mean {known!r}?)" in capsys.readouterr().err
    assert _record(config, f"--source={source['name']}", f"--job={known}") == 0
