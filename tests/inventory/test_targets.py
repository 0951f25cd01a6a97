"""`mspwatch targets`: the committed generated files, and the cross-check against the
exporters' configs that refuses what every scrape would otherwise answer with HTTP 400."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mspwatch.cli import main
from tests.conftest import assert_golden

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
CHECK = HERE / "crosscheck"
ESTATE = ROOT / "simulators" / "estate"
COMPOSE = ROOT / "compose"

# Each inventory and the exact one-line error; {path} is the inventory's path, {dir} the
# folder of the exporter configs.
CROSS_CHECK = {
    "snmp-auth-typo.yml": "{path}: customers.0.sites.0.devices.1.snmp_auth: device acme-dental/hq/fw1: "
    "unknown auth 'acme_v3x' (auths in snmp.yml: acme_v3, bolt_v2, public_v2)",
    "snmp-profile-typo.yml": "{path}: customers.0.sites.0.devices.1.profiles.1: device acme-dental/hq/ups1: "
    "unknown profile 'ups_apcc' (profiles: apcups, arista_sw, aruba, cisco, cisco_wlc, entity, "
    "entity_sensor, fortigate, fortinet, h3c, host_resources, hpe_procurve, hrDevice, hrStorage, "
    "hrSystem, huawei, if_mib, interfaces, juniper, lldp, paloalto_fw, system, ucd, ucd_la_table, "
    "ups_apc, ups_mib)",
    "backup-credentials-typo.yml": "{path}: customers.0.backup_sources.0.credentials: backup source "
    "acme-dental/acme-vbr: unknown credentials 'acme_vbr' (credentials in backup.yml: acme_veeam, no_user)",
    "backup-restic-credentials-typo.yml": "{path}: customers.0.backup_sources.0.credentials: backup source "
    "acme-dental/acme-restic: unknown credentials 'acme_restic' (credentials in backup.yml: acme_veeam, "
    "no_user)",
    "backup-veeam-no-username.yml": "{dir}/backup.yml: credentials.no_user.username: backup source "
    "acme-dental/acme-vbr: a Veeam source needs a username",
    "m365-unknown-app.yml": "{path}: customers.0.m365_tenants.0.app: tenant acme-dental/acme: "
    "unknown app 'other' (apps in m365.yml: msp, partner)",
    "patch-credentials-typo.yml": "{path}: customers.0.patch_sources.0.credentials: patch source "
    "acme-dental/acme-ninja: unknown credentials 'acme_ninjaa' (credentials in patch.yml: acme_ninja)",
    "patch-intune-app.yml": "{path}: customers.0.patch_sources.0.tenant: patch source "
    "acme-dental/acme-intune: tenant 'acme' uses app 'partner', which is not in patch.yml (apps: msp)",
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def targets(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `mspwatch targets` in this process, from the repository's root."""
    monkeypatch.chdir(ROOT)

    def run(*args: str) -> Run:
        code = main(["targets", *args])
        out = capsys.readouterr()
        return Run(code, out.out, out.err)

    return run


def _with_configs(targets: Any, inventory: Path, out: Path) -> Run:
    result: Run = targets(
        f"--inventory={inventory}",
        f"--output.dir={out}",
        f"--snmp.config={CHECK / 'snmp.yml'}",
        f"--backup.config={CHECK / 'backup.yml'}",
        f"--m365.config={CHECK / 'm365.yml'}",
        f"--patch.config={CHECK / 'patch.yml'}",
    )
    return result


def test_every_cross_check_case_has_a_file() -> None:
    files = {p.name for p in CHECK.glob("*-*.yml")}
    assert files == set(CROSS_CHECK)


@pytest.mark.parametrize("name", sorted(CROSS_CHECK))
def test_cross_check_refuses_names_the_exporters_do_not_know(name: str, tmp_path: Path, targets: Any) -> None:
    """A typo'd snmp_auth or profile used to pass `mspwatch targets` and then fail every scrape."""
    out = tmp_path / "out"
    proc = _with_configs(targets, CHECK / name, out)
    expected = CROSS_CHECK[name].replace("{path}", str(CHECK / name)).replace("{dir}", str(CHECK))
    assert (proc.returncode, proc.stderr) == (1, f"error: {expected}\n")
    assert proc.stdout == ""
    assert not out.exists(), "nothing is written when a check fails"


def test_cross_check_accepts_known_names_without_resolving_secrets(tmp_path: Path, targets: Any) -> None:
    proc = _with_configs(targets, CHECK / "valid.yml", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "backup.json",
        "icmp.json",
        "m365.json",
        "patch.json",
        "snmp.json",
    ]


def test_an_address_that_is_not_an_ip_fails_naming_the_device(tmp_path: Path, targets: Any) -> None:
    bad = HERE / "invalid" / "address-not-an-ip.yml"
    proc = targets(f"--inventory={bad}", f"--output.dir={tmp_path}")
    assert proc.returncode == 1
    assert (
        proc.stderr
        == f"error: {bad}: customers.0.sites.0.devices.0.address: invalid IP address '10.0.0.300'\n"
    )


def test_committed_estate_files_are_what_the_generator_writes(
    tmp_path: Path, update_goldens: bool, targets: Any
) -> None:
    """compose/targets/*.json and compose/alertmanager.yml come from the demo estate's inventory."""
    out = tmp_path / "targets"
    proc = targets(
        "--inventory=simulators/estate/inventory.yml",
        f"--output.dir={out}",
        "--alertmanager.base=compose/alertmanager.base.yml",
        f"--alertmanager.output={tmp_path / 'alertmanager.yml'}",
        "--snmp.config=simulators/estate/snmp.yml",
        "--backup.config=simulators/estate/backup.yml",
        "--m365.config=simulators/estate/m365.yml",
        "--patch.config=simulators/estate/patch.yml",
    )
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p in (COMPOSE / "targets").glob("*.json"))
    for name in written:
        assert_golden(COMPOSE / "targets" / name, (out / name).read_text(), update_goldens)
    assert_golden(COMPOSE / "alertmanager.yml", (tmp_path / "alertmanager.yml").read_text(), update_goldens)


def test_the_generated_alertmanager_config_names_no_machine_path() -> None:
    text = (COMPOSE / "alertmanager.yml").read_text()
    assert text.startswith("# GENERATED by `mspwatch targets` from alertmanager.base.yml and inventory.yml")
    assert str(ROOT) not in text


def test_alertmanager_output_must_not_overwrite_the_base(tmp_path: Path, targets: Any) -> None:
    base = tmp_path / "alertmanager.yml"
    base.write_bytes((COMPOSE / "alertmanager.base.yml").read_bytes())
    proc = targets(
        f"--inventory={HERE / 'inventory.yml'}",
        f"--output.dir={tmp_path / 't'}",
        f"--alertmanager.base={base}",
    )
    assert (proc.returncode, proc.stderr) == (
        1,
        f"error: {base}: --alertmanager.output must not overwrite the base\n",
    )
