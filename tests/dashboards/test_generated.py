"""The committed dashboard JSON is exactly what the builders produce (snmp_exporter's CI
diffs its generated snmp.yml the same way)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mspwatch.dashboards import generate

ROOT = Path(__file__).resolve().parents[2]


def test_committed_json_matches_the_builders() -> None:
    assert generate.stale() == [], "run `mspwatch dashboards generate` and commit the result"


def test_check_reports_a_changed_and_a_stray_file(tmp_path: Path) -> None:
    generate.write(tmp_path)
    assert generate.stale(tmp_path) == []
    noc = tmp_path / "noc" / "mspwatch-noc.json"
    noc.write_text(noc.read_text().replace('"editable": false', '"editable": true'))
    (tmp_path / "noc" / "old.json").write_text("{}")
    assert generate.stale(tmp_path) == ["noc/old.json", "noc/mspwatch-noc.json"]
    generate.write(tmp_path)
    assert generate.stale(tmp_path) == [] and not (tmp_path / "noc" / "old.json").exists()


def test_cli_check_exits_1_on_a_difference(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "mspwatch.cli", "dashboards", "generate", "--out", str(tmp_path)]
    wrote = subprocess.run(cli, capture_output=True, text=True, check=False, cwd=ROOT, timeout=120)
    assert wrote.returncode == 0 and wrote.stdout.startswith("wrote 10 dashboards under"), wrote.stderr
    (tmp_path / "sla" / "mspwatch-sla.json").write_text("{}\n")
    checked = subprocess.run(
        [*cli, "--check"], capture_output=True, text=True, check=False, cwd=ROOT, timeout=120
    )
    assert checked.returncode == 1
    assert checked.stdout == (
        "dashboards: sla/mspwatch-sla.json differs from its builder; run `mspwatch dashboards generate`\n"
    )
