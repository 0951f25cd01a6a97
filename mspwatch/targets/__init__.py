"""``mspwatch targets``: write what Prometheus and Alertmanager read from the inventory.

    mspwatch targets --inventory=inventory.yml --output.dir=targets/ \\
        --alertmanager.base=alertmanager.base.yml --alertmanager.output=alertmanager.yml \\
        --snmp.config=snmp.yml --backup.config=backup.yml --m365.config=m365.yml

writes one file_sd file per scrape job (``snmp.json``, ``icmp.json``, ``backup.json``,
``m365.json``, ``patch.json``) and, given a base, the Alertmanager config with each
customer's routes and maintenance windows. The inventory is first checked against the
exporter configs that are given; on any error nothing is written.

``--check`` writes nothing: it exits 1 with a diff when a committed file is stale (for CI)::

    $ mspwatch targets --check --inventory=inventory.yml --output.dir=targets/
    --- targets/snmp.json (committed)
    +++ targets/snmp.json (from inventory.yml)
    ...
    targets: 1 of 5 files stale; run the same command without --check
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from mspwatch.common.config import ConfigError

DESCRIPTION = """\
Write what Prometheus and Alertmanager read from the inventory: one file_sd file per scrape
job (snmp.json, icmp.json, backup.json, m365.json, patch.json) and, given a base, the
Alertmanager config with each customer's routes and maintenance windows. The inventory is
first checked against the exporter configs that are given; on any error nothing is written.

example:
  mspwatch targets --inventory=inventory.yml --output.dir=targets/ \\
      --alertmanager.base=alertmanager.base.yml --snmp.config=snmp.yml \\
      --backup.config=backup.yml --m365.config=m365.yml --patch.config=patch.yml

With --check nothing is written: the exit code is 1, with a diff, when a file on disk
differs from what the inventory gives (a CI step that keeps the committed files current).
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "targets",
        help="write what Prometheus and Alertmanager read from the inventory",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--inventory", type=Path, required=True, help="inventory YAML file")
    p.add_argument("--output.dir", dest="output_dir", type=Path, required=True, help="for the file_sd files")
    p.add_argument(
        "--alertmanager.base",
        dest="alertmanager_base",
        type=Path,
        help="hand-written Alertmanager config with one route '- mspwatch: customer-routes'",
    )
    p.add_argument(
        "--alertmanager.output",
        dest="alertmanager_output",
        type=Path,
        help="where to write the merged Alertmanager config (default: alertmanager.yml next to the base)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; print a diff and exit 1 if a file on disk is stale or missing",
    )
    for area, exporter, what in (
        ("snmp", "SNMP", "snmp_auth and profiles of every device"),
        ("backup", "backup", "credentials of every backup source"),
        ("m365", "Microsoft 365", "app of every tenant"),
        ("patch", "patch", "credentials of every patch source"),
    ):
        p.add_argument(
            f"--{area}.config",
            dest=f"{area}_config",
            type=Path,
            help=f"the {exporter} exporter's config: check the {what} against it",
        )
    p.set_defaults(func=run)


def generate(args: argparse.Namespace) -> dict[Path, str]:
    """Every file to write and its content; raises ``ConfigError`` naming the file and field."""
    from mspwatch.common.config import load_yaml
    from mspwatch.inventory import load_inventory, render_targets

    from .alertmanager import render
    from .crosscheck import ExporterConfigs, cross_check

    inv = load_inventory(args.inventory)
    configs = ExporterConfigs(args.snmp_config, args.backup_config, args.m365_config, args.patch_config)
    cross_check(inv, str(args.inventory), configs)
    files = {args.output_dir / name: text for name, text in render_targets(inv).items()}
    base: Path | None = args.alertmanager_base
    if base is not None:
        doc = load_yaml(base)
        if not isinstance(doc, dict):
            raise ConfigError(f"{base}: (top level): must be a mapping")
        out = args.alertmanager_output or base.with_name("alertmanager.yml")
        if out.resolve() == base.resolve():
            raise ConfigError(f"{base}: --alertmanager.output must not overwrite the base")
        files[out] = render(doc, inv, str(base), str(args.inventory))
    elif args.alertmanager_output is not None:
        raise ConfigError("--alertmanager.output needs --alertmanager.base")
    return files


def run(args: argparse.Namespace) -> int:
    """Check everything first, then write every file atomically and print its path."""
    from mspwatch.inventory.file_sd import write_atomically

    try:
        files = generate(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        return check(files, args.inventory)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
        print(path)
    return 0


def check(files: dict[Path, str], inventory: Path) -> int:
    """Print a unified diff of every file whose text on disk is not ``files``'; 1 if any."""
    stale = 0
    for path, text in files.items():
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        stale += 1
        sys.stdout.writelines(
            difflib.unified_diff(
                (current or "").splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"{path} ({'committed' if current is not None else 'missing'})",
                tofile=f"{path} (from {inventory})",
            )
        )
    if stale:
        print(f"targets: {stale} of {len(files)} files stale; run the same command without --check")
        return 1
    print(f"targets: {len(files)} files up to date")
    return 0
