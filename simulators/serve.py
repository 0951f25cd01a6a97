"""The command line every REST simulator shares: listen address, scenario, clock and TLS.

python -m mspwatch.simulators.veeam --listen 127.0.0.1:9419 --scenario FILE [--clock now]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from mspwatch.common.config import ConfigError

from .veeam.scenario import parse_when


def run_simulator(
    argv: list[str] | None,
    *,
    module: str,
    doc: str,
    default_listen: str,
    title: str,
    build: Callable[[Path, str | None], Any],
) -> int:
    """Parse the simulator's flags, build its ASGI app and serve it until stopped."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc)
    parser.add_argument("--listen", default=default_listen, help="host:port (default: %(default)s)")
    parser.add_argument("--scenario", type=Path, required=True, help="scenario YAML file")
    parser.add_argument(
        "--clock",
        help="start the clock here instead of the scenario's: 'now' (runs with real time) "
        "or an ISO 8601 time (frozen until moved with POST /admin/clock)",
    )
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--listen: want host:port, got {args.listen!r}")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.clock not in (None, "now"):
        try:
            parse_when(args.clock)
        except ValueError as exc:
            parser.error(f"--clock: {exc}")
    try:
        app = build(args.scenario, args.clock)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger(module).info(
        "%s simulator on %s://%s:%s, scenario %s",
        title,
        "https" if args.tls_cert else "http",
        host,
        port,
        args.scenario.name,
    )
    uvicorn.run(
        app,
        host=host.strip("[]"),
        port=int(port),
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=1,  # do not wait for requests held by a delay fault
        ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
        ssl_keyfile=str(args.tls_key) if args.tls_key else None,
    )
    return 0
