"""``mspwatch``: one command, a subcommand per job.

mspwatch snmp-exporter --config.file=snmp.yml
mspwatch targets --inventory=inventory.yml --output.dir=targets/

Only the module of the subcommand that runs is imported: ``mspwatch snmp-exporter`` loads
neither the demo nor the simulators.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

from mspwatch.common.version import mspwatch_version

# subcommand -> (module with ``register(subparsers)``, one-line help for ``mspwatch --help``).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "snmp-exporter": (
        "mspwatch.exporters.snmp.main",
        "serve SNMP device metrics (multi-target, snmp_exporter-compatible URL)",
    ),
    "backup-exporter": ("mspwatch.exporters.backup.main", "serve backup job metrics per backup source"),
    "m365-exporter": ("mspwatch.exporters.m365.main", "serve Microsoft 365 metrics per tenant"),
    "patch-exporter": ("mspwatch.exporters.patch.main", "serve patch compliance metrics per patch source"),
    "inventory-exporter": (
        "mspwatch.exporters.inventory.main",
        "serve the inventory's devices, maintenance windows and contract hours for the SLO rules",
    ),
    "backup": ("mspwatch.exporters.backup.main", "backup tools: record-restore-test, remove-restore-test"),
    "targets": ("mspwatch.targets", "write what Prometheus and Alertmanager read from the inventory"),
    "demo": ("mspwatch.demo.main", "run the whole stack on the built-in simulated estate"),
    "report": ("mspwatch.reports.main", "write the monthly SLA and risk PDFs per customer"),
    "dashboards": ("mspwatch.dashboards.generate", "write the Grafana dashboards' JSON from their builders"),
    "grafana": ("mspwatch.dashboards.push", "push the dashboards to an existing Grafana or Grafana Cloud"),
}


def _chosen(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def plain(text: str | None) -> str | None:
    """Help text without reStructuredText markup, as a terminal shows it.

    >>> plain("``mspwatch demo``: see :class:`~mspwatch.demo.kit.Ports`")
    'mspwatch demo: see mspwatch.demo.kit.Ports'
    """
    if text is None:
        return None
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text).replace("``", "")


def _plain_help(parser: argparse.ArgumentParser) -> None:
    parser.description = plain(parser.description)
    parser.epilog = plain(parser.epilog)
    for action in parser._actions:
        action.help = plain(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _plain_help(child)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser with the chosen subcommand's flags; the others are listed by name only."""
    parser = argparse.ArgumentParser(
        prog="mspwatch", description="mspwatch: one command, a subcommand per job."
    )
    parser.add_argument("--version", action="version", version=f"mspwatch {mspwatch_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(argv)
    if chosen in SUBCOMMANDS:
        importlib.import_module(SUBCOMMANDS[chosen][0]).register(sub)
    for name, (_, help_text) in SUBCOMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=help_text)
    _plain_help(parser)  # module docstrings double as descriptions
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
