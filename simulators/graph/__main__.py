"""Run the Graph simulator: ``python -m mspwatch.simulators.graph --listen 127.0.0.1:PORT --scenario FILE``.

It always serves HTTPS (msal refuses plain http authorities). With ``--tls-dir DIR`` it uses
``DIR/server.pem`` and ``DIR/server-key.pem`` or, when they are missing, creates a test CA
there; point clients at ``DIR/ca.pem``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
import yaml
from cryptography import x509

from .app import GraphSimulator
from .scenario import SCENARIOS_DIR, exporter_config, load_scenario
from .tls import make_test_ca


def _start(text: str) -> datetime:
    if text == "now":
        return datetime.now(UTC).replace(microsecond=0)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid time {text!r}, want ISO 8601 or now") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mspwatch.simulators.graph", description=__doc__.split("\n")[0]
    )
    p.add_argument("--listen", default="127.0.0.1:9443", help="host:port (default 127.0.0.1:9443)")
    p.add_argument(
        "--scenario",
        type=Path,
        default=SCENARIOS_DIR / "estate.yaml",
        help="scenario YAML, or the name of a built-in one (default: estate)",
    )
    p.add_argument("--tls-dir", type=Path, required=True, help="certificate directory (see above)")
    p.add_argument(
        "--trust-cert",
        type=Path,
        action="append",
        default=[],
        help="PEM certificate accepted for client assertions (repeatable)",
    )
    p.add_argument(
        "--write-exporter-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="write an m365-exporter config for the scenario's tenants to FILE, then serve",
    )
    p.add_argument(
        "--clock-speed",
        type=float,
        default=0.0,
        help="simulated seconds per real second (default 0: the clock moves only via /_sim/clock; "
        "the demo uses 1 or more so timelines play out)",
    )
    p.add_argument(
        "--start",
        type=_start,
        default=None,
        metavar="ISO|now",
        help="start the simulated clock here instead of at the scenario's start (relative times "
        "in the scenario follow it)",
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    scenario_path: Path = args.scenario
    if not scenario_path.exists() and (SCENARIOS_DIR / f"{scenario_path}.yaml").exists():
        scenario_path = SCENARIOS_DIR / f"{scenario_path}.yaml"
    try:
        scenario = load_scenario(scenario_path)
    except (OSError, ValueError) as exc:
        print(f"error: {scenario_path}: {exc}", file=sys.stderr)
        return 1
    cert_file, key_file = args.tls_dir / "server.pem", args.tls_dir / "server-key.pem"
    if not (cert_file.exists() and key_file.exists()):
        make_test_ca(args.tls_dir)
    trusted = [x509.load_pem_x509_certificate(p.read_bytes()) for p in args.trust_cert]
    host, _, port = args.listen.rpartition(":")
    if args.write_exporter_config is not None:
        url = f"https://{host or '127.0.0.1'}:{port}"  # an IPv6 host keeps its brackets
        config = exporter_config(scenario, url, (args.tls_dir / "ca.pem").resolve())
        args.write_exporter_config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    app = GraphSimulator(scenario.started(args.start), trusted, clock_speed=args.clock_speed)
    uvicorn.run(
        app,
        host=host.strip("[]") or "127.0.0.1",
        port=int(port),
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,  # clients keep connections open: do not wait for them
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
