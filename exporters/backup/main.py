"""``mspwatch backup-exporter``: backup job state per source, sources from the inventory.

GET /backup?target=<backup source name>

``mspwatch backup record-restore-test`` appends a restore test to the restore-test log.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.core import Metric

from mspwatch.common.config import ConfigError, load_yaml
from mspwatch.common.timeparse import parse_time
from mspwatch.exporters.core.cli import register_exporter
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.leases import Leases
from mspwatch.exporters.core.probe import BadRequest, ProbeApp
from mspwatch.inventory import FolderSource, ResticSource, VeeamSource, resolve

from .config import ConfiguredSource, LoadedConfig, load_config
from .folder import FolderClient
from .records import Reason, RequestStats, SourceError
from .restic import ResticClient
from .restorelog import append_removal, append_restore_test, logged_jobs
from .scrape import BackupClient, scrape_source
from .veeam import VeeamClient, tls_verify

DEFAULT_PORT = 9817

log = logging.getLogger("mspwatch.backup")


def make_client(
    cs: ConfiguredSource,
    *,
    clock: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
) -> BackupClient:
    """Build the client for one configured source."""
    src = cs.source
    if isinstance(src, VeeamSource):
        assert cs.credentials is not None and cs.credentials.username
        try:
            verify = tls_verify(src, cs.base_dir)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"backup source {src.name}: ca_file: cannot load {src.ca_file}: "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from None
        return VeeamClient(
            src,
            cs.credentials.username,
            cs.credentials.password,
            verify=verify,
            clock=clock,
            transport=transport,
        )
    if isinstance(src, ResticSource):
        password = cs.credentials.password if cs.credentials else None
        return ResticClient(src, cs.base_dir, password)
    assert isinstance(src, FolderSource)
    folder = resolve(cs.base_dir, src.path)
    assert folder is not None
    return FolderClient(src, folder)


@dataclass(frozen=True)
class BackupTarget:
    """One request's source, with the config and client it was parsed against."""

    name: str
    configured: ConfiguredSource
    client: BackupClient
    restore_log: Path | None


class BackupApp(ProbeApp[BackupTarget]):
    namespace = "backup"
    probe_path = "/backup"
    reasons = Reason
    subject = "backup source"
    up_help = "1 if the backup source was read in this scrape, 0 otherwise."

    def __init__(
        self,
        config_file: Path,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__()
        self.config_file = config_file
        self._clock = clock
        self._transport = transport
        self.loaded: LoadedConfig = load_config(config_file)
        self.clients: dict[str, BackupClient] = self._clients(self.loaded, {})
        self._leases: Leases[BackupClient] = Leases(lambda client: client.aclose())

    def _clients(self, loaded: LoadedConfig, old: Mapping[str, BackupClient]) -> dict[str, BackupClient]:
        clients = {}
        for name, cs in loaded.sources.items():
            prev = self.loaded.sources.get(name) if old else None
            if prev == cs and name in old:
                clients[name] = old[name]  # keep its token, counters and cache
            else:
                clients[name] = make_client(cs, clock=self._clock, transport=self._transport)
        return clients

    @property
    def max_in_flight(self) -> int:
        return self.loaded.config.max_sources_in_flight

    def reload(self) -> None:
        # Everything the new config needs (clients, TLS contexts) is built before the swap,
        # so a config that cannot work leaves the old one serving.
        loaded = load_config(self.config_file)
        clients = self._clients(loaded, self.clients)
        retired = [c for c in self.clients.values() if c not in clients.values()]
        self.loaded, self.clients = loaded, clients
        # Scrapes that started before the reload finish with the client they hold.
        self._leases.retire(retired)

    async def stop(self) -> None:
        await self._leases.close_all(self.clients.values())

    def target(self, params: Mapping[str, str]) -> BackupTarget:
        name = params.get("target", "").strip()
        if not name:
            raise BadRequest("'target' parameter must be specified")
        loaded, clients = self.loaded, self.clients  # one view of the config, reloads or not
        cs = loaded.sources.get(name)
        client = clients.get(name)
        if cs is None or client is None:
            raise BadRequest(f"unknown backup source {name!r}")
        return BackupTarget(name, cs, client, loaded.restore_test_log)

    async def scrape(self, target: BackupTarget, deadline: Deadline) -> list[Metric]:
        async with self._leases.hold(target.client) as client:
            return await scrape_source(
                target.name,
                client,
                target.configured.source.rpo,
                target.restore_log,
                deadline,
                self._clock,
            )


# --- the CLI ---------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register_exporter(
        sub,
        "backup-exporter",
        help="serve backup job metrics (Veeam B&R, restic, drop folder), multi-target",
        description=__doc__,
        default_port=DEFAULT_PORT,
        default_config="backup.yml",
        build=BackupApp,
    )

    group = sub.add_parser("backup", help="backup tools: record a restore test, or take one back")
    tools = group.add_subparsers(dest="backup_command", required=True, metavar="COMMAND")
    rec = tools.add_parser(
        "record-restore-test",
        help="append a restore test to the restore-test log",
        description="Append one restore test to the log the backup exporter reads.",
    )
    rec.add_argument(
        "--config.file",
        dest="config_file",
        type=Path,
        default=Path("backup.yml"),
        help="backup exporter config naming the log and the inventory (default: backup.yml)",
    )
    rec.add_argument("--log", type=Path, help="append to this log instead of the configured one")
    rec.add_argument("--source", required=True, help="backup source name from the inventory")
    rec.add_argument(
        "--job",
        required=True,
        help="job (or SureBackup job) whose backup was restored; must be one the source reports",
    )
    rec.add_argument(
        "--allow-unknown-job",
        action="store_true",
        help="record the test although the source does not report this job (or cannot be read)",
    )
    rec.add_argument("--result", required=True, choices=["success", "warning", "failed"])
    rec.add_argument("--time", help="when the test ran, ISO 8601 (default: now)")
    rec.add_argument("--duration", type=float, help="seconds the restore took")
    rec.add_argument("--by", help="who ran the test (default: the current user)")
    rec.add_argument("--note", help="free text for the log only, never a label")
    rec.set_defaults(func=_record_restore_test)

    rm = tools.add_parser(
        "remove-restore-test",
        help="take back the logged restore tests of a job (a misspelt job name)",
        description=(
            "Append a removal to the restore-test log: every earlier entry of the job no longer "
            "counts, and its series disappears unless the source reports the job."
        ),
    )
    rm.add_argument(
        "--config.file",
        dest="config_file",
        type=Path,
        default=Path("backup.yml"),
        help="backup exporter config naming the log (default: backup.yml)",
    )
    rm.add_argument("--log", type=Path, help="the log to change instead of the configured one")
    rm.add_argument("--source", required=True, help="backup source name of the wrong entry")
    rm.add_argument("--job", required=True, help="job name exactly as logged")
    rm.add_argument("--by", help="who removes it (default: the current user)")
    rm.set_defaults(func=_remove_restore_test)


JOB_LOOKUP_TIMEOUT = 60.0  # seconds to read a source's job names before recording a test


def _configured_log(config_file: Path) -> tuple[Path, set[str]]:
    """The log and the known source names, without resolving any credential."""
    from mspwatch.inventory import load_inventory

    raw = load_yaml(config_file)
    if not isinstance(raw, dict) or not raw.get("restore_test_log") or not raw.get("inventory"):
        raise ConfigError(f"{config_file}: restore_test_log and inventory must be set")
    log_path = resolve(config_file.parent, Path(str(raw["restore_test_log"])))
    inv_path = resolve(config_file.parent, Path(str(raw["inventory"])))
    assert log_path is not None and inv_path is not None
    inv = load_inventory(inv_path)
    return log_path, {s.name for c in inv.customers for s in c.backup_sources}


async def _fetch_jobs(cs: ConfiguredSource) -> set[str]:
    client = make_client(cs)
    try:
        deadline = Deadline.after(JOB_LOOKUP_TIMEOUT)
        async with asyncio.timeout(deadline.remaining()):
            data = await client.fetch(deadline, RequestStats())
    except TimeoutError:
        raise SourceError(Reason.DEADLINE, f"no answer within {JOB_LOOKUP_TIMEOUT:.0f}s") from None
    finally:
        await client.aclose()
    return {j.name for j in data.jobs} | {t.job_name for t in data.restore_tests}


def known_jobs(config_file: Path, source: str) -> set[str]:
    """The job names ``source`` reports now, read as the exporter reads them.

    Veeam through its API with the configured credentials, restic from its command or
    snapshots file, a drop folder from its records. SureBackup jobs count too.
    """
    loaded = load_config(config_file)
    cs = loaded.sources.get(source)
    if cs is None:
        raise ConfigError(f"unknown backup source {source!r} (not in the inventory)")
    jobs: set[str] = asyncio.run(_fetch_jobs(cs))
    return jobs


def _check_job(config_file: Path, source: str, job: str, log_path: Path) -> str | None:
    """Why ``job`` cannot be recorded for ``source``, or ``None`` when the source reports it."""
    import difflib

    anyway = "; to record it anyway, add --allow-unknown-job"
    try:
        jobs = known_jobs(config_file, source)
    except ConfigError as exc:
        return f"cannot check the job name: {exc}{anyway}"
    except SourceError as exc:
        return f"cannot read the jobs of {source!r} ({exc.reason}: {exc.detail}){anyway}"
    if job in jobs:
        return None
    close = difflib.get_close_matches(job, jobs, n=1, cutoff=0.6)
    listed = ", ".join(repr(j) for j in sorted(jobs)[:10]) + (", ..." if len(jobs) > 10 else "")
    problem = f"backup source {source!r} reports no job {job!r}"
    if close:
        problem += f" (did you mean {close[0]!r}?)"
    return (
        f"{problem}; its jobs: {listed or 'none'}{anyway}. A wrong entry already in {log_path} "
        "is taken back with `mspwatch backup remove-restore-test --source=... --job=...`"
    )


def _record_restore_test(args: argparse.Namespace) -> int:
    when = time.time() if args.time is None else parse_time(args.time)
    if when is None:
        print(f"error: --time: cannot parse {args.time!r}, want ISO 8601", file=sys.stderr)
        return 2
    try:
        if args.log is not None and args.allow_unknown_job:
            log_path = args.log  # nothing to check: the config is not needed
        else:
            log_path, names = _configured_log(args.config_file)
            if args.source not in names:
                raise ConfigError(f"unknown backup source {args.source!r} (not in the inventory)")
            log_path = args.log or log_path
    except ConfigError as exc:
        extra = "; with --log, add --allow-unknown-job to record without it" if args.log else ""
        print(f"error: {exc}{extra}", file=sys.stderr)
        return 1
    if not args.allow_unknown_job:
        problem = _check_job(args.config_file, args.source, args.job, log_path)
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 1
    entry = append_restore_test(
        log_path,
        source=args.source,
        job=args.job,
        result=args.result,
        when=when,
        by=args.by or getpass.getuser(),
        note=args.note,
        duration=args.duration,
    )
    print(f"recorded {entry['result']} restore test of {args.job!r} ({args.source}) in {log_path}")
    return 0


def _remove_restore_test(args: argparse.Namespace) -> int:
    try:
        log_path = args.log if args.log is not None else _configured_log(args.config_file)[0]
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.job not in logged_jobs(log_path, args.source):
        print(
            f"error: {log_path} holds no restore test of job {args.job!r} for source "
            f"{args.source!r} (give the job exactly as logged)",
            file=sys.stderr,
        )
        return 1
    append_removal(
        log_path, source=args.source, job=args.job, when=time.time(), by=args.by or getpass.getuser()
    )
    print(f"removed the logged restore tests of {args.job!r} ({args.source}) from {log_path}")
    return 0
