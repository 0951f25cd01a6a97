"""``mspwatch backup-exporter``: backup job state per source, sources from the inventory.

GET /backup?target=<backup source name>

``mspwatch backup record-restore-test`` appends a restore test to the restore-test log.
"""

from __future__ import annotations

import argparse
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

from .config import ConfiguredSource, LoadedConfig, load_config
from .folder import FolderClient
from .inventory import FolderSource, ResticSource, VeeamSource, resolve
from .records import Reason
from .restic import ResticClient
from .restorelog import append_restore_test
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

    group = sub.add_parser("backup", help="backup tools: record a restore test")
    tools = group.add_subparsers(dest="backup_command", required=True, metavar="COMMAND")
    rec = tools.add_parser(
        "record-restore-test",
        help="append a restore test to the restore-test log",
        description="Append one restore test to the log the backup exporter reads.",
    )
    where = rec.add_mutually_exclusive_group()
    where.add_argument(
        "--config.file",
        dest="config_file",
        type=Path,
        default=Path("backup.yml"),
        help="backup exporter config naming the log and the inventory (default: backup.yml)",
    )
    where.add_argument("--log", type=Path, help="append to this log instead of the configured one")
    rec.add_argument("--source", required=True, help="backup source name from the inventory")
    rec.add_argument("--job", required=True, help="job (or SureBackup job) whose backup was restored")
    rec.add_argument("--result", required=True, choices=["success", "warning", "failed"])
    rec.add_argument("--time", help="when the test ran, ISO 8601 (default: now)")
    rec.add_argument("--duration", type=float, help="seconds the restore took")
    rec.add_argument("--by", help="who ran the test (default: the current user)")
    rec.add_argument("--note", help="free text for the log only, never a label")
    rec.set_defaults(func=_record_restore_test)


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


def _record_restore_test(args: argparse.Namespace) -> int:
    try:
        if args.log is not None:
            log_path = args.log
        else:
            log_path, names = _configured_log(args.config_file)
            if args.source not in names:
                raise ConfigError(f"unknown backup source {args.source!r} (not in the inventory)")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    when = time.time() if args.time is None else parse_time(args.time)
    if when is None:
        print(f"error: --time: cannot parse {args.time!r}, want ISO 8601", file=sys.stderr)
        return 2
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
