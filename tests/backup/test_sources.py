"""restic from a command, the restore-test log and its CLI, file_sd, reload."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from mspwatch.cli import main as mspwatch_main
from mspwatch.exporters.backup.folder import read_records
from mspwatch.exporters.backup.records import JobRecord, Reason, SourceData, SourceError, parse_result
from mspwatch.exporters.backup.scrape import scrape_source
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.probe import ProbeFailure, registry_of
from mspwatch.inventory import RpoConfig, load_inventory, write_targets

from .conftest import Sim, value, veeam_source, write_config
from .test_faults import reason_of

DATA = Path(__file__).parent / "data"


def restic_source(command: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": "acme-restic", "kind": "restic", "command": command, **extra}


async def test_restic_command(tmp_path: Path, exporters: Any) -> None:
    """The command runs in the inventory's folder with RESTIC_PASSWORD set."""
    shutil.copy(DATA / "restic-snapshots.json", tmp_path / "snapshots.json")
    script = (
        "import os, sys; assert os.environ['RESTIC_PASSWORD'] == 'pw-123'; "
        "sys.stdout.write(open('snapshots.json').read())"
    )
    config = write_config(
        tmp_path,
        [restic_source([sys.executable, "-c", script], credentials="restic")],
        extra_credentials={"restic": {"password": "pw-123"}},
    )
    text = await exporters(config).scrape("acme-restic")
    assert value(text, "backup_up") == 1
    assert value(text, "backup_jobs") == 2
    assert value(text, "backup_scrape_requests") == 1


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (["mspwatch-no-such-restic-binary", "snapshots"], "command_failed"),
        ([sys.executable, "-c", "import sys; sys.exit(3)"], "command_failed"),
        ([sys.executable, "-c", "print('[{\"time\": ')"], "malformed"),
        ([sys.executable, "-c", "print('{}')"], "malformed"),
        ([sys.executable, "-c", "import time; time.sleep(20)"], "deadline"),
    ],
)
async def test_restic_command_failures(
    command: list[str], reason: str, tmp_path: Path, exporters: Any
) -> None:
    config = write_config(tmp_path, [restic_source(command)])
    text = await exporters(config).scrape("acme-restic", scrape_timeout=1.5)
    assert value(text, "backup_up") == 0
    assert reason_of(text) == reason


async def test_missing_files_are_io_errors(tmp_path: Path, exporters: Any) -> None:
    config = write_config(
        tmp_path,
        [
            {"name": "acme-restic", "kind": "restic", "snapshots_file": "gone.json"},
            {"name": "acme-drop", "kind": "folder", "path": "no-such-folder"},
        ],
    )
    exp = exporters(config)
    assert reason_of(await exp.scrape("acme-restic")) == "io"
    assert reason_of(await exp.scrape("acme-drop")) == "io"


async def test_restore_test_log_newest_wins(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """The log and SureBackup both count; the newest test of a job wins; other sources'
    entries and malformed lines are ignored."""
    config = write_config(tmp_path, [veeam_source(acme.url)])
    log = tmp_path / "restore-tests.jsonl"

    def record(*args: str) -> int:
        # As from a shell: outside this test's event loop (the command reads the source's jobs).
        argv = ["backup", "record-restore-test", f"--config.file={config}", *args]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(mspwatch_main, argv).result()

    assert (
        record("--source=acme-vbr", "--job=SQL nightly", "--result=success", "--time=2026-01-10T09:00:00Z")
        == 0
    )
    assert (
        record(
            "--source=acme-vbr",
            "--job=SQL nightly",
            "--result=failed",
            "--time=2026-01-12T09:00:00Z",
            "--duration=600",
        )
        == 0
    )
    assert (
        record(
            "--source=acme-vbr",
            "--job=SureBackup SQL",
            # The scenario's SureBackup sessions lie outside the lookback from today's clock.
            "--allow-unknown-job",
            "--result=warning",
            "--time=2026-01-01T09:00:00Z",
        )
        == 0
    )
    with log.open("a") as f:
        f.write("not json\n")
        f.write(
            json.dumps(
                {"time": "2026-01-14T00:00:00Z", "source": "other", "job": "SQL nightly", "result": "success"}
            )
            + "\n"
        )
    text = await exporters(config).scrape("acme-vbr")
    assert value(text, 'backup_restore_test_last_result{job_name="SQL nightly",result="failed"}') == 1
    assert value(text, 'backup_restore_test_last_timestamp_seconds{job_name="SQL nightly"}') == 1768208400
    # SureBackup's session (2026-01-15T02:35Z) is newer than the logged test.
    assert value(text, 'backup_restore_test_last_result{job_name="SureBackup SQL",result="success"}') == 1
    assert value(text, 'backup_restore_test_last_result{job_name="Exchange",result="none"}') == 1


def test_record_restore_test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, [veeam_source("http://127.0.0.1:9")])
    base = ["backup", "record-restore-test", f"--config.file={config}", "--job=x", "--result=success"]
    assert mspwatch_main([*base, "--source=nope"]) == 1
    assert "unknown backup source 'nope'" in capsys.readouterr().err
    assert mspwatch_main([*base, "--source=acme-vbr", "--time=last tuesday"]) == 2
    assert "--time: cannot parse" in capsys.readouterr().err
    own = tmp_path / "elsewhere" / "tests.jsonl"
    assert (
        mspwatch_main(
            [
                "backup",
                "record-restore-test",
                f"--log={own}",
                "--source=s",
                "--job=j",
                "--allow-unknown-job",  # no config to check the job against
                "--result=failed",
                "--by=amy",
            ]
        )
        == 0
    )
    entry = json.loads(own.read_text())
    assert (entry["source"], entry["job"], entry["result"], entry["by"]) == ("s", "j", "failed", "amy")


def test_file_sd_targets(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yml"
    inv.write_text(
        "customers:\n"
        "  - name: acme\n    backup_sources:\n"
        "      - {name: acme-vbr, kind: veeam, url: 'https://vbr:9419', credentials: c}\n"
        "      - {name: acme-drop, kind: folder, path: drop}\n"
        "  - name: globex\n"
    )
    write_targets(load_inventory(inv), tmp_path / "targets")
    groups = json.loads((tmp_path / "targets" / "backup.json").read_text())
    assert groups == [
        {"labels": {"customer": "acme", "source_kind": "veeam"}, "targets": ["acme-vbr"]},
        {"labels": {"customer": "acme", "source_kind": "folder"}, "targets": ["acme-drop"]},
    ]


async def test_reload_keeps_unchanged_sources(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """A reload keeps an unchanged source's client (its token: no second login) and drops
    removed sources."""
    source = veeam_source(acme.url)
    config = write_config(tmp_path, [source, {"name": "acme-drop", "kind": "folder", "path": "d"}])
    exp = exporters(config)
    assert value(await exp.scrape("acme-vbr"), "backup_up") == 1
    write_config(tmp_path, [source])
    exp.app.reload()
    assert value(await exp.scrape("acme-vbr"), "backup_up") == 1
    assert acme.grants() == ["password"]
    gone = await exp.get("/backup", {"target": "acme-drop"})
    assert gone.status_code == 400


def test_result_parsing_and_rpo_globs() -> None:
    assert [parse_result(v) for v in ("Success", "WARNING", "failed", "None", "Partial", 3, None)] == [
        "success",
        "warning",
        "failed",
        "none",
        "unknown",
        "unknown",
        "unknown",
    ]
    rpo = RpoConfig.model_validate(
        {"default": "1d", "jobs": [{"match": "SQL*", "rpo": "4h"}, {"match": "*", "rpo": "2d"}]}
    )
    assert (rpo.for_job("SQL nightly"), rpo.for_job("sql nightly")) == (14400, 172800)
    assert RpoConfig().for_job("anything") == 26 * 3600


def test_json_array_records_know_their_lines() -> None:
    text = '[\n  {"job_name": "a", "result": "success", "start_time": 1},\n\n  {"job_name": "b"}\n]\n'
    runs, errors = read_records("x.json", text)
    assert [r.job_name for r in runs] == ["a"]
    assert errors == [(4, "result: required field is missing")]


@pytest.mark.parametrize(
    ("name", "text", "jobs", "errors"),
    [
        ("a.csv", "\ufeffjob_name,result,start_time\nx,success,1\n", ["x"], []),
        ("a.csv", "job,result\nx,success\n", [], [(1, "header: missing column job_name")]),
        (
            "a.csv",
            "job_name,result,start_time\nx,success,1,extra\n",
            [],
            [(2, "more cells than header columns")],
        ),
        ("a.json", '{"runs": 5}', [], [(1, 'want a JSON array of runs or {"runs": [...]}')]),
        ("a.json", '{"runs": [{"job_name": "y", "result": "failed", "start_time": 5}]}', ["y"], []),
        (
            "a.jsonl",
            '{"job_name": "z", "result": "ok", "start_time": 1, "colour": "red"}\n',
            [],
            [(1, "colour: unknown field")],
        ),
        (
            "a.jsonl",
            '{"job_name": "z", "result": "ok", "start_time": 9, "end_time": 1}\n',
            [],
            [(1, "end_time: before start_time")],
        ),
    ],
)
def test_drop_records(name: str, text: str, jobs: list[str], errors: list[tuple[int, str]]) -> None:
    runs, bad = read_records(name, text)
    assert [r.job_name for r in runs] == jobs
    assert bad == errors


class _RecordingClient:
    """A fake behind the BackupClient protocol: canned answers, remembers the calls."""

    kind = "fake"
    api_errors = None

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls = 0

    async def fetch(self, deadline: Any, stats: Any) -> Any:
        self.calls += 1
        stats.requests += 1
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (SourceData(jobs=[JobRecord(name="j", type="t", last_result="success", last_success=1)]), None),
        (SourceError(Reason.AUTH, "refused"), "auth"),
        (KeyError("surprise"), "malformed"),  # a shape nobody foresaw: still an answer
    ],
)
async def test_scrape_turns_every_outcome_into_families_or_a_reason(answer: Any, reason: str | None) -> None:
    client = _RecordingClient(answer)
    reasons: set[str] = set()
    try:
        families = await scrape_source("fake", client, RpoConfig(), None, Deadline.after(5), lambda: 100.0)
    except ProbeFailure as failure:
        families, reasons = failure.families, set(failure.reasons)
    text = generate_latest(registry_of(families)).decode()
    assert client.calls == 1
    assert reasons == ({reason} if reason else set())
    assert value(text, "backup_scrape_requests") == 1  # the request counters, either way
    assert ("backup_jobs 1.0" in text) == (reason is None)


class _Holding(_RecordingClient):
    """Holds its slot until released."""

    def __init__(self) -> None:
        super().__init__(SourceData())
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def fetch(self, deadline: Any, stats: Any) -> Any:
        self.entered.set()
        await self.release.wait()
        return await super().fetch(deadline, stats)


async def test_max_sources_in_flight(tmp_path: Path, exporters: Any) -> None:
    """With the one slot held, another scrape waits for it within its own deadline and
    answers up 0, reason deadline; the held scrape then completes."""
    config = write_config(
        tmp_path, [veeam_source("http://127.0.0.1:9"), {"name": "drop", "kind": "folder", "path": "."}]
    )
    config.write_text(config.read_text() + "max_sources_in_flight: 1\n")
    exp = exporters(config)
    holder = _Holding()
    exp.app.clients["acme-vbr"] = holder  # a fake behind the client protocol
    held = asyncio.create_task(exp.scrape("acme-vbr", scrape_timeout=30))
    await holder.entered.wait()
    waiting = await exp.scrape("drop", scrape_timeout=1.5)
    assert reason_of(waiting) == "deadline"
    holder.release.set()
    assert value(await held, "backup_up") == 1


async def test_restic_grouped_output(tmp_path: Path, exporters: Any) -> None:
    """`restic snapshots --json --group-by host` nests snapshots in groups: same jobs."""
    snaps = json.loads((DATA / "restic-snapshots.json").read_text())
    grouped = [
        {"group_key": {"hostname": "web1"}, "snapshots": snaps[:2]},
        {"group_key": {"hostname": "db1"}, "snapshots": snaps[2:]},
    ]
    (tmp_path / "grouped.json").write_text(json.dumps(grouped))
    config = write_config(tmp_path, [{"name": "r", "kind": "restic", "snapshots_file": "grouped.json"}])
    text = await exporters(config).scrape("r")
    assert value(text, "backup_jobs") == 2
    assert value(text, 'backup_job_last_transferred_bytes{job_name="web1:/etc,/srv/www"}') == 104857600
