"""The demo estate's file-based backup sources, written on a wall-clock schedule.

``mspwatch demo`` calls :func:`write_backup_files` at start and every few minutes, so the
files look like a scheduler keeps writing them: restic snapshots of the acme practice
server every night at 01:00 UTC (and a clean ``restic check`` after them), and the bolt
customer's cloud backup service dropping one record per run into a drop folder at 22:00 and
23:00 UTC. The restore-test log gets two seed entries once; engineers append to it with
``mspwatch backup record-restore-test``.

Paths match ``simulators/estate/inventory.yml`` (relative to the inventory file).

The compose ``demo`` profile has no ``mspwatch demo`` to call it, so its ``backup-files``
container runs the same writer on the same schedule into a volume the backup exporter reads::

    python -m mspwatch.simulators.estate.backup_data --out=/var/lib/mspwatch/backup-files
    # refreshes every 300 s until SIGTERM; --once writes once and exits
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RESTIC_SNAPSHOTS = Path("backup/acme-offsite-snapshots.json")
RESTIC_CHECK = Path("backup/acme-offsite-check.json")
DROP_FOLDER = Path("backup/bolt-cloud")
RESTORE_TEST_LOG = Path("restore-tests.jsonl")

_DAYS = 14
REFRESH_SECONDS = 300.0  # how often a running writer rewrites the files (the demo's pace too)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _daily(now: datetime, hour: int, minute: int = 0) -> list[datetime]:
    """The last ``_DAYS`` daily run times at hour:minute UTC up to ``now``, oldest first."""
    today = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    newest = today if today <= now else today - timedelta(days=1)
    return [newest - timedelta(days=d) for d in range(_DAYS - 1, -1, -1)]


def restic_snapshots(now: datetime) -> list[dict[str, Any]]:
    """``restic snapshots --json`` of the practice server: one snapshot per night."""
    out = []
    for n, start in enumerate(_daily(now, 1)):
        end = start + timedelta(minutes=18, seconds=n % 7)
        out.append(
            {
                "time": _iso(start),
                "tree": f"{n:012x}",
                "paths": ["/srv/pms-export"],
                "hostname": "pms-server",
                "username": "root",
                "tags": ["nightly"],
                "program_version": "restic 0.17.3",
                "id": f"{int(start.timestamp()):064x}",
                "short_id": f"{int(start.timestamp()):08x}"[-8:],
                "summary": {
                    "backup_start": _iso(start),
                    "backup_end": _iso(end),
                    "data_added": 300_000_000 + 1_000_000 * n,
                },
            }
        )
    return out


def drop_records(now: datetime) -> list[dict[str, Any]]:
    """The cloud backup service's runs: mailboxes nightly; Teams and SharePoint warn once a week."""
    out: list[dict[str, Any]] = []
    for start in _daily(now, 22):
        out.append(
            {
                "job_name": "Mailboxes",
                "job_type": "M365Backup",
                "workload": "Exchange Online",
                "repository": "Cloud vault",
                "result": "success",
                "start_time": _iso(start),
                "end_time": _iso(start + timedelta(minutes=35)),
                "transferred_bytes": 1_610_612_736,
                "protected_objects": 64,
                "next_run": _iso(start + timedelta(days=1)),
            }
        )
    for start in _daily(now, 23):
        end = start + timedelta(minutes=50)
        out.append(
            {
                "job_name": "Teams and SharePoint",
                "job_type": "M365Backup",
                "workload": "SharePoint Online",
                "repository": "Cloud vault",
                "result": "warning" if start.toordinal() % 7 == 0 else "success",
                "start_time": _iso(start),
                **({"end_time": _iso(end)} if end <= now else {}),
                "transferred_bytes": 2_147_483_648,
                "protected_objects": 12,
                "next_run": _iso(start + timedelta(days=1)),
            }
        )
    return out


def seed_restore_tests(now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "time": _iso(now - timedelta(days=40)),
            "source": "acme-offsite",
            "job": "pms-server:/srv/pms-export",
            "result": "success",
            "by": "demo",
        },
        {
            "time": _iso(now - timedelta(days=20)),
            "source": "bolt-cloud",
            "job": "Mailboxes",
            "result": "success",
            "by": "demo",
        },
    ]


def _write(path: Path, text: str) -> None:
    """Replace atomically: the exporter may read at any moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_backup_files(estate_dir: Path, now: float) -> None:
    """Write (or refresh) the restic, drop-folder and restore-test files below ``estate_dir``."""
    when = datetime.fromtimestamp(now, UTC)
    _write(estate_dir / RESTIC_SNAPSHOTS, json.dumps(restic_snapshots(when), indent=1) + "\n")
    check = estate_dir / RESTIC_CHECK
    newest = _daily(when, 1)[-1] + timedelta(minutes=40)
    if not check.exists() or check.stat().st_mtime < newest.timestamp() <= now:
        summary = {"message_type": "summary", "num_errors": 0, "broken_packs": None}
        _write(check, json.dumps(summary) + "\n")
        stamp = min(newest.timestamp(), now)
        os.utime(check, (stamp, stamp))
    drop = estate_dir / DROP_FOLDER / "cloud-backup.jsonl"
    _write(drop, "".join(json.dumps(r) + "\n" for r in drop_records(when)))
    log = estate_dir / RESTORE_TEST_LOG
    if not log.exists():
        _write(log, "".join(json.dumps(r) + "\n" for r in seed_restore_tests(when)))


def keep_writing(estate_dir: Path, every: float, stop: threading.Event) -> None:
    """Write the files now and every ``every`` seconds until ``stop`` is set."""
    while True:
        write_backup_files(estate_dir, time.time())
        if stop.wait(every):
            return


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mspwatch.simulators.estate.backup_data",
        description="Write the demo estate's restic, drop-folder and restore-test files on a schedule.",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="directory the inventory's relative paths start at"
    )
    p.add_argument(
        "--every", type=float, default=REFRESH_SECONDS, help="seconds between rewrites (default 300)"
    )
    p.add_argument("--once", action="store_true", help="write once and exit")
    args = p.parse_args(argv)
    if args.every <= 0:
        p.error("--every must be positive")
    if args.once:
        write_backup_files(args.out, time.time())
        return 0
    stop = threading.Event()
    # As PID 1 of a container, SIGTERM's default action does nothing: stop on it explicitly.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    keep_writing(args.out, args.every, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
