"""Write every dashboard's JSON where Grafana's provisioning reads it.

``mspwatch dashboards generate [--check]`` (or ``python -m mspwatch.dashboards``)::

    $ mspwatch dashboards generate
    wrote 10 dashboards under dashboards/json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from mspwatch.dashboards import noc, slo
from mspwatch.dashboards.areas import alerts, backup, interface, m365, patch, platform, sla, snmp, status

JSON_DIR = Path(__file__).resolve().parent / "json"
# folder (one per area, Grafana folder uid "mspwatch-<folder>") -> builders
DASHBOARDS: dict[str, tuple[Callable[[], db.Dashboard], ...]] = {
    "noc": (noc.build, status.build, alerts.build),
    "network": (snmp.build, interface.build),
    "backup": (backup.build,),
    "patch": (patch.build,),
    "m365": (m365.build,),
    "sla": (sla.build,),
    "platform": (platform.build,),
}
FOLDER_TITLES = {
    "noc": "mspwatch NOC",
    "network": "mspwatch Network",
    "backup": "mspwatch Backup",
    "patch": "mspwatch Patch",
    "m365": "mspwatch Microsoft 365",
    "sla": "mspwatch SLA",
    "platform": "mspwatch Platform",
}


def render() -> dict[Path, str]:
    """``{folder/uid.json: JSON text}`` of every dashboard, sorted keys, ending in a newline."""
    out: dict[Path, str] = {}
    encoder = JSONEncoder(sort_keys=True, indent=2)
    for folder, builders in DASHBOARDS.items():
        for build in builders:
            model = build().build()
            out[Path(folder) / f"{model.uid}.json"] = encoder.encode(model) + "\n"
    return out


def write(root: Path = JSON_DIR) -> list[Path]:
    """Write the rendered dashboards under ``root`` and remove stale ones."""
    rendered = render()
    for old in root.rglob("*.json"):
        if old.relative_to(root) not in rendered:
            old.unlink()
    for rel, text in rendered.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return sorted(root / rel for rel in rendered)


def stale(root: Path = JSON_DIR) -> list[str]:
    """Files under ``root`` that differ from what the builders produce (empty when up to date)."""
    rendered = render()
    found = {p.relative_to(root) for p in root.rglob("*.json")}
    diff = [str(p) for p in sorted(found - set(rendered))]
    for rel, text in rendered.items():
        path = root / rel
        if not path.exists() or path.read_text() != text:
            diff.append(str(rel))
    return diff


def _run(args: argparse.Namespace) -> int:
    if args.check:
        diff = stale(args.out)
        for rel in diff:
            print(f"dashboards: {rel} differs from its builder; run `mspwatch dashboards generate`")
        return 1 if diff else 0
    print(f"wrote {len(write(args.out))} dashboards under {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("dashboards", help="generate the Grafana dashboards' JSON from the builders")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    gen = sub.add_parser("generate", help="write dashboards/json/<folder>/<uid>.json")
    gen.add_argument(
        "--out", type=Path, default=JSON_DIR, help="directory to write (default: json/ in the package)"
    )
    gen.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    gen.set_defaults(func=_run)
    slo.register(sub)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mspwatch.dashboards")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["dashboards", "generate", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))
