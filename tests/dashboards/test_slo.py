"""alertrules/slo-targets.yml is what the inventory says: each customer's contract target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from mspwatch.dashboards import slo
from mspwatch.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[2]
ESTATE = ROOT / "simulators" / "estate" / "inventory.yml"
TARGETS = ROOT / "alertrules" / "slo-targets.yml"


def test_committed_targets_match_the_estate_inventory() -> None:
    assert TARGETS.read_text() == slo.render(load_inventory(ESTATE), ESTATE.name)


def test_targets_are_the_contract_percent_as_a_ratio() -> None:
    rules = yaml.safe_load(TARGETS.read_text())["groups"][0]["rules"]
    assert [(r["labels"]["customer"], r["expr"]) for r in rules] == [
        ("acme-dental", "0.995"),
        ("bolt-logistics", "0.999"),
    ]


def test_cli_check_fails_on_a_changed_target(tmp_path: Path) -> None:
    out = tmp_path / "slo-targets.yml"
    out.write_text(TARGETS.read_text().replace("0.999", "0.99"))
    cmd = [sys.executable, "-m", "mspwatch.cli", "dashboards", "slo-targets", "--inventory", str(ESTATE)]
    proc = subprocess.run(
        [*cmd, "--out", str(out), "--check"], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 1 and "differs from" in proc.stdout
    proc = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0 and out.read_text() == TARGETS.read_text()
