"""The customer inventory and the file_sd targets Prometheus reads from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mspwatch.common.config import ConfigError
from mspwatch.common.net import split_host_port
from mspwatch.inventory import load_inventory
from tests.conftest import assert_golden

HERE = Path(__file__).parent
CASES = yaml.safe_load((HERE / "invalid" / "expected.yaml").read_text())


def test_targets_command_writes_labelled_file_sd(tmp_path: Path, update_goldens: bool) -> None:
    out = tmp_path / "targets"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mspwatch.cli",
            "targets",
            f"--inventory={HERE / 'inventory.yml'}",
            f"--output.dir={out}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("snmp.json", "icmp.json"):
        assert_golden(HERE / "golden" / name, (out / name).read_text(), update_goldens)
    snmp = json.loads((out / "snmp.json").read_text())
    # Every group carries customer and site, so exporters never invent them.
    assert all({"customer", "site", "device", "role"} <= set(g["labels"]) for g in snmp)
    # A device without SNMP credentials is pinged but not polled.
    assert "printer1.acme.example" not in json.dumps(snmp)
    icmp = json.loads((out / "icmp.json").read_text())
    assert ["printer1.acme.example"] in [g["targets"] for g in icmp]
    assert ["192.168.10.2"] not in [g["targets"] for g in icmp]  # ping: false


def test_targets_command_rejects_a_bad_inventory(tmp_path: Path) -> None:
    bad = HERE / "invalid" / "duplicate-device.yml"
    proc = subprocess.run(
        [sys.executable, "-m", "mspwatch.cli", "targets", f"--inventory={bad}", f"--output.dir={tmp_path}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: " + CASES["duplicate-device.yml"].replace("{path}", str(bad))
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize("name", sorted(CASES))
def test_invalid_inventory(name: str) -> None:
    path = HERE / "invalid" / name
    with pytest.raises(ConfigError) as err:
        load_inventory(path)
    assert str(err.value) == CASES[name].replace("{path}", str(path))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.1", ("10.0.0.1", None)),
        ("10.0.0.1:1161", ("10.0.0.1", 1161)),
        ("[2001:db8::1]:161", ("2001:db8::1", 161)),
        ("2001:db8::1", ("2001:db8::1", None)),
        ("sw1.acme.example", ("sw1.acme.example", None)),
    ],
)
def test_split_host_port(address: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(address) == expected


@pytest.mark.parametrize("address", ["10.0.0.1:0", "10.0.0.300", "bad host", "[2001:db8::1]x", "a..b"])
def test_split_host_port_rejects(address: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(address)
