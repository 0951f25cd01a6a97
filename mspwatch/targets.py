"""``mspwatch targets``: write what Prometheus and Alertmanager read from the inventory.

mspwatch targets --inventory=inventory.yml --output.dir=targets/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mspwatch.common.config import ConfigError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "targets",
        help="write what Prometheus and Alertmanager read from the inventory",
        description="Write Prometheus file_sd target files (customer/site labels) from the inventory.",
    )
    p.add_argument("--inventory", type=Path, required=True, help="inventory YAML file")
    p.add_argument("--output.dir", dest="output_dir", type=Path, required=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the inventory and write every generated file, printing each path."""
    from mspwatch.inventory import load_inventory, write_targets

    try:
        inv = load_inventory(args.inventory)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in write_targets(inv, args.output_dir):
        print(path)
    return 0
