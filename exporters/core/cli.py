"""Prometheus-style command-line flags and the run loop every exporter shares."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mspwatch.common.config import ConfigError
from mspwatch.common.version import mspwatch_version

from .logs import setup_logging
from .probe import ProbeApp
from .server import ExporterMetrics, ExporterServer, ServerOptions, parse_listen_address, serve
from .webconfig import load_web_config

log = logging.getLogger("mspwatch")


def add_exporter_flags(parser: argparse.ArgumentParser, *, default_port: int, default_config: str) -> None:
    """Add the flags every exporter takes, spelled as Prometheus spells them."""
    parser.add_argument(
        "--config.file",
        dest="config_file",
        type=Path,
        default=Path(default_config),
        help=f"exporter configuration file (default: {default_config})",
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the configuration, print the result and exit",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=f":{default_port}",
        help=f"address to listen on (default: :{default_port})",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        default=None,
        help="exporter-toolkit web config: TLS and basic auth",
    )
    parser.add_argument(
        "--scrape.default-timeout",
        dest="default_timeout",
        type=float,
        default=10.0,
        help="probe budget in seconds when Prometheus sends no scrape-timeout header",
    )
    parser.add_argument(
        "--scrape.timeout-offset",
        dest="timeout_margin",
        type=float,
        default=0.5,
        help="seconds subtracted from Prometheus's scrape timeout (default: 0.5)",
    )
    add_log_flags(parser)


def add_log_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warning", "error"],
    )
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"])


def register_exporter(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    command: str,
    *,
    help: str,
    description: str | None,
    default_port: int,
    default_config: str,
    build: Callable[[Path], ProbeApp[Any]],
) -> argparse.ArgumentParser:
    """Add ``mspwatch <command>`` serving the app ``build(config_file)`` returns.

    >>> parser = argparse.ArgumentParser(prog="mspwatch")
    >>> sub = parser.add_subparsers()
    >>> _ = register_exporter(sub, "x-exporter", help="x", description=None, default_port=9999,
    ...                       default_config="x.yml", build=lambda path: NotImplemented)
    >>> parser.parse_args(["x-exporter"]).listen_address
    ':9999'
    """
    p = sub.add_parser(
        command, help=help, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_exporter_flags(p, default_port=default_port, default_config=default_config)
    p.set_defaults(func=lambda args: run_exporter(args, build))
    parser: argparse.ArgumentParser = p
    return parser


def run_exporter(args: argparse.Namespace, build: Callable[[Path], ProbeApp[Any]]) -> int:
    """Load config, then either check it and exit or serve until stopped."""
    setup_logging(args.log_level, args.log_format)
    try:
        app = build(args.config_file)
        web = load_web_config(args.web_config_file)
        parse_listen_address(args.listen_address)  # start-up refuses it: so does --config.check
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.config_check:
        print(f"{args.config_file}: OK")
        return 0
    metrics = ExporterMetrics(app.namespace, mspwatch_version())
    metrics.reloaded(True)
    server = ExporterServer(
        app,
        web=web,
        metrics=metrics,
        options=ServerOptions(default_timeout=args.default_timeout, timeout_margin=args.timeout_margin),
    )
    try:
        asyncio.run(serve(server, listen_address=args.listen_address, web=web))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
