"""Invalid configs and profiles as data files, each mapped to its exact message."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mspwatch.common.config import ConfigError
from mspwatch.exporters.snmp.main import SnmpApp
from mspwatch.exporters.snmp.profile import BUILTIN_DIR, load_profiles

HERE = Path(__file__).parent
INVALID = HERE / "invalid"
INVALID_PROFILES = HERE / "invalid_profiles"
CONFIG_CASES = yaml.safe_load((INVALID / "expected.yaml").read_text())
PROFILE_CASES = yaml.safe_load((INVALID_PROFILES / "expected.yaml").read_text())


def test_every_invalid_file_has_an_expected_message() -> None:
    assert sorted(CONFIG_CASES) == sorted(p.name for p in INVALID.glob("*.yml"))
    assert sorted(PROFILE_CASES) == sorted(
        p.name for p in INVALID_PROFILES.glob("*.yaml") if p.name != "expected.yaml"
    )


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_invalid_config(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MSPWATCH_TEST_UNSET_VARIABLE", raising=False)
    path = INVALID / name
    with pytest.raises(ConfigError) as err:
        SnmpApp(path)
    assert str(err.value) == CONFIG_CASES[name].replace("{path}", str(path))


@pytest.mark.parametrize("name", sorted(PROFILE_CASES))
def test_invalid_profile(name: str, tmp_path: Path) -> None:
    shutil.copy(INVALID_PROFILES / name, tmp_path / name)
    with pytest.raises(ConfigError) as err:
        load_profiles([tmp_path])
    assert str(err.value) == PROFILE_CASES[name].replace("{path}", str(tmp_path / name))


def test_builtin_profiles_load() -> None:
    profiles = load_profiles()
    assert {p.stem for p in BUILTIN_DIR.glob("*.yaml")} == set(profiles)


def test_config_check_flag_names_the_field(tmp_path: Path) -> None:
    """`--config.check` validates and exits: 0 and OK, or 1 and the message on stderr."""
    cmd = [sys.executable, "-m", "mspwatch.cli", "snmp-exporter", "--config.check"]
    bad = subprocess.run(
        [*cmd, f"--config.file={INVALID / 'unknown-walk-key.yml'}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == f"error: {INVALID / 'unknown-walk-key.yml'}: walk.retrys: unknown field"
    good_cfg = tmp_path / "snmp.yml"
    good_cfg.write_text("auths:\n  lab:\n    community: public\n")
    good = subprocess.run(
        [*cmd, f"--config.file={good_cfg}"], capture_output=True, text=True, check=False, timeout=60
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == f"{good_cfg}: OK"


def test_relative_secret_file_is_read_next_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "community.txt").write_text("from-the-file\n")
    cfg = tmp_path / "snmp.yml"
    cfg.write_text("auths:\n  lab:\n    community: {file: community.txt}\n")
    app = SnmpApp(cfg)
    community = app.config.auths["lab"].community
    assert community is not None and community.reveal() == "from-the-file"
