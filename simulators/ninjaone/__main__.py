"""Run the NinjaOne API v2 simulator.

    python -m mspwatch.simulators.ninjaone --listen 127.0.0.1:9820 \
        --scenario simulators/ninjaone/scenarios/fleet.yaml [--clock now]

Bind it to loopback: the admin routes (clock, faults) have no authentication.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from mspwatch.common.config import ConfigError
from mspwatch.simulators.veeam.scenario import parse_when

from .app import NinjaOneSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mspwatch.simulators.ninjaone", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:9820", help="host:port (default: %(default)s)")
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
        app = NinjaOneSimulator(args.scenario, args.clock)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("ninjaone-sim").info(
        "NinjaOne simulator on %s://%s:%s, scenario %s",
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


if __name__ == "__main__":
    sys.exit(main())
