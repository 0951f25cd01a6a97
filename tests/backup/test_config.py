"""Invalid configs as data: each file under invalid/ maps to its exact message."""

from __future__ import annotations

from pathlib import Path

import pytest

from mspwatch.common.config import ConfigError
from mspwatch.exporters.backup.main import BackupApp

INVALID = Path(__file__).parent / "invalid"

CASES = {
    "unknown-field": "unknown-field.backup.yml: restore_test_logs: unknown field",
    "missing-inventory": "missing-inventory.backup.yml: inventory: required field is missing",
    "unknown-credentials": "valid.inventory.yml: customers.0.backup_sources.0.credentials: "
    "unknown credentials 'acme_veeam' (not in unknown-credentials.backup.yml)",
    "no-username": "no-username.backup.yml: credentials.acme_veeam.username: a Veeam source needs a username",
    "unset-env": "unset-env.backup.yml: credentials.acme_veeam.password: "
    "environment variable MSPWATCH_TEST_SURELY_UNSET is not set",
    "in-flight": "in-flight.backup.yml: max_sources_in_flight: Input should be greater than or equal to 1",
    "duplicate-source": "duplicate-source.inventory.yml: customers: duplicate backup source name "
    "'shared-vbr' (customers.0.backup_sources.0.name and customers.1.backup_sources.0.name)",
    "unknown-kind": "unknown-kind.inventory.yml: customers.0.backup_sources.0: Input tag 'tsm' "
    "found using 'kind' does not match any of the expected tags: 'veeam', 'restic', 'folder'",
    "bad-url": "bad-url.inventory.yml: customers.0.backup_sources.0.url: "
    "must be http(s)://host[:port] without a path or credentials, e.g. https://vbr:9419",
    "url-with-password": "url-with-password.inventory.yml: customers.0.backup_sources.0.url: "
    "must be http(s)://host[:port] without a path or credentials, e.g. https://vbr:9419",
    "bad-name": "bad-name.inventory.yml: customers.0.backup_sources.0.name: must be 1-63 "
    "lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
    "tls-conflict": "tls-conflict.inventory.yml: customers.0.backup_sources.0: "
    "ca_file and insecure_skip_verify are mutually exclusive",
    "missing-ca-file": "missing-ca-file.inventory.yml: customers.0.backup_sources.0.ca_file: "
    "cannot read no-such-ca.pem: No such file or directory",
    "garbage-ca": "garbage-ca.inventory.yml: customers.0.backup_sources.0.ca_file: "
    "garbage-ca.pem is not a PEM CA bundle",
    "page-size": "page-size.inventory.yml: customers.0.backup_sources.0.page_size: "
    "Input should be less than or equal to 1000",
    "rpo-duration": "rpo-duration.inventory.yml: customers.0.backup_sources.0.rpo.default: "
    "invalid duration '1 day', want a duration such as 500ms, 30s, 1h30m or 7d",
    "rpo-rule-typo": "rpo-rule-typo.inventory.yml: "
    "customers.0.backup_sources.0.rpo.jobs.0.match: required field is missing\n"
    "rpo-rule-typo.inventory.yml: customers.0.backup_sources.0.rpo.jobs.0.glob: "
    "unknown field",
    "restic-two-inputs": "restic-two-inputs.inventory.yml: customers.0.backup_sources.0: "
    "set exactly one of snapshots_file and command",
    "restic-no-input": "restic-no-input.inventory.yml: customers.0.backup_sources.0: "
    "set exactly one of snapshots_file and command",
    "restic-group-by": "restic-group-by.inventory.yml: "
    "customers.0.backup_sources.0.group_by.1: Input should be 'host', 'paths' or 'tags'",
    "source-typo": "source-typo.inventory.yml: customers.0.backup_sources.0.rpo_default: unknown field",
}


def test_every_invalid_file_has_a_case() -> None:
    files = {p.name.removesuffix(".backup.yml") for p in INVALID.glob("*.backup.yml")}
    assert files == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_config(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)  # messages name files as given: relative here
    monkeypatch.delenv("MSPWATCH_TEST_SURELY_UNSET", raising=False)
    with pytest.raises(ConfigError) as err:
        BackupApp(Path(f"{case}.backup.yml"))
    assert str(err.value) == CASES[case]
    assert "secret-value" not in str(err.value)
    assert "Pa55w0rd" not in str(err.value)


def test_config_check_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mspwatch.cli import main

    bad = INVALID / "bad-url.backup.yml"
    assert main(["backup-exporter", f"--config.file={bad}", "--config.check"]) == 1
    assert "url: must be http(s)://host[:port]" in capsys.readouterr().err
    (tmp_path / "inventory.yml").write_text(
        "customers:\n  - name: acme\n    backup_sources:\n"
        "      - {name: acme-drop, kind: folder, path: drop}\n"
    )
    good = tmp_path / "backup.yml"
    good.write_text("inventory: inventory.yml\n")
    assert main(["backup-exporter", f"--config.file={good}", "--config.check"]) == 0
    assert capsys.readouterr().out == f"{good}: OK\n"


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from mspwatch.cli import main

    monkeypatch.setenv("MSPWATCH_VEEAM_PASSWORD", "example")
    example = Path(__file__).parent.parent.parent / "docs" / "backup-example" / "backup.yml"
    assert main(["backup-exporter", f"--config.file={example}", "--config.check"]) == 0
    assert capsys.readouterr().out.endswith(": OK\n")
