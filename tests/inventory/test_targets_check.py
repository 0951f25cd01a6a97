"""`mspwatch targets --check`: nothing written; exit 1 and a diff when a committed file is stale."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .test_targets import COMPOSE, targets  # noqa: F401 (the fixture)

ESTATE = [
    "--inventory=simulators/estate/inventory.yml",
    "--alertmanager.base=compose/alertmanager.base.yml",
    "--snmp.config=simulators/estate/snmp.yml",
    "--backup.config=simulators/estate/backup.yml",
    "--m365.config=simulators/estate/m365.yml",
    "--patch.config=simulators/estate/patch.yml",
]


def test_the_committed_files_are_up_to_date(targets: Any) -> None:  # noqa: F811
    proc = targets("--check", "--output.dir=compose/targets", *ESTATE)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "targets: 6 files up to date\n", "")


def test_a_stale_or_missing_file_is_a_diff_and_exit_1(tmp_path: Path, targets: Any) -> None:  # noqa: F811
    out = tmp_path / "targets"
    shutil.copytree(COMPOSE / "targets", out)
    snmp = out / "snmp.json"
    committed = snmp.read_text()
    snmp.write_text(committed.replace('"acme-dental"', '"acme-dentist"', 1))
    (out / "patch.json").unlink()
    am = tmp_path / "alertmanager.yml"
    shutil.copy(COMPOSE / "alertmanager.yml", am)
    proc = targets("--check", f"--output.dir={out}", f"--alertmanager.output={am}", *ESTATE)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert f"--- {snmp} (committed)" in lines
    assert f"+++ {snmp} (from simulators/estate/inventory.yml)" in lines
    start = lines.index(f"--- {snmp} (committed)")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("--- "))
    changed = [ln for ln in lines[start + 2 : end] if ln[:1] in "+-"]
    assert len(changed) == 2 and "acme-dentist" in changed[0] and '"acme-dental"' in changed[1]
    assert f"--- {out / 'patch.json'} (missing)" in lines
    assert lines[-1] == "targets: 2 of 6 files stale; run the same command without --check"
    assert "alertmanager.yml" not in proc.stdout  # the current file is not listed
    # Nothing was written.
    assert not (out / "patch.json").exists()
    assert "acme-dentist" in snmp.read_text()
