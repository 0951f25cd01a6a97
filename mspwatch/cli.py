"""``mspwatch``: one command, a subcommand per job.

mspwatch snmp-exporter --config.file=snmp.yml
mspwatch targets --inventory=inventory.yml --output.dir=targets/
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from exporters.core.cli import mspwatch_version
from exporters.core.config import ConfigError

# subcommand -> module with ``register(subparsers)``: each job registers its own flags.
SUBCOMMANDS: dict[str, str] = {
    "snmp-exporter": "exporters.snmp.main",
    "m365-exporter": "exporters.m365.main",
    "backup-exporter": "exporters.backup.main",
    "backup": "exporters.backup.main",
    "targets": "mspwatch.cli",
    "demo": "mspwatch.demo",
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "targets",
        help="write Prometheus file_sd target files from the customer inventory",
        description="Write Prometheus file_sd target files (customer/site labels) from the inventory.",
    )
    p.add_argument("--inventory", type=Path, required=True, help="inventory YAML file")
    p.add_argument("--output.dir", dest="output_dir", type=Path, required=True)
    p.set_defaults(func=_targets)


def _targets(args: argparse.Namespace) -> int:
    from .inventory import load_inventory, write_targets

    try:
        inv = load_inventory(args.inventory)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in write_targets(inv, args.output_dir):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mspwatch", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"mspwatch {mspwatch_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in dict.fromkeys(SUBCOMMANDS.values()):
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
