"""Config loading as every exporter's ``--config.check`` runs it: one line naming file and field.

Invalid files are data (``invalid/*.yml`` -> ``invalid/expected.yaml``); the files that cannot
be committed (a FIFO, bytes that are not UTF-8, a UTF-16 file, very deep nesting) are written
by the tests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import yaml

from mspwatch.cli import main
from mspwatch.common.config import MAX_NESTING, ConfigError, load_yaml, parse_duration
from mspwatch.exporters.core.webconfig import BasicAuth, load_web_config
from mspwatch.simulators.tls import make_test_ca

INVALID = Path(__file__).parent / "invalid"
CASES: dict[str, str] = yaml.safe_load((INVALID / "expected.yaml").read_text(encoding="utf-8"))
SNMP_OK = "auths:\n  lab: {version: 2, community: public}\n"


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """``run_exporter`` configures the root logger for a command; give pytest its own back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_check(
    capsys: pytest.CaptureFixture[str], exporter: str, config: Path, *extra: str
) -> tuple[int, str]:
    """``mspwatch <exporter> --config.check`` in this process: exit code and output."""
    code = main([exporter, "--config.check", f"--config.file={config}", *extra])
    out, err = capsys.readouterr()
    return code, (out + err).rstrip("\n")


def _exporter(name: str) -> str:
    return name.split("-", 1)[0] + "-exporter"


def test_every_invalid_file_has_an_expected_message() -> None:
    cases = {p.name for p in INVALID.glob("*.yml") if not p.name.endswith(".inventory.yml")}
    assert cases == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_invalid_config(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = INVALID / name
    code, output = run_check(capsys, _exporter(name), path)
    expected = CASES[name].replace("{path}", str(path)).replace("{dir}", str(INVALID))
    assert (code, output) == (1, f"error: {expected}")


def _check_one_line(capsys: pytest.CaptureFixture[str], exporter: str, config: Path, expected: str) -> None:
    code, output = run_check(capsys, exporter, config)
    assert (code, output) == (1, f"error: {expected}")


@pytest.mark.parametrize("exporter", ["snmp-exporter", "backup-exporter", "m365-exporter"])
def test_not_utf8_and_utf16_configs(
    exporter: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin1 = tmp_path / "latin1.yml"
    latin1.write_bytes(b"# configuration\n# caf\xe9\n")
    _check_one_line(capsys, exporter, latin1, f"{latin1}: line 2: not UTF-8 text (byte 0xe9)")
    utf16 = tmp_path / "utf16.yml"
    utf16.write_text(SNMP_OK, encoding="utf-16")
    _check_one_line(capsys, exporter, utf16, f"{utf16}: UTF-16 text, save the file as UTF-8")


def test_not_utf8_inventory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "backup.yml").write_text("inventory: inventory.yml\n")
    inventory = tmp_path / "inventory.yml"
    inventory.write_bytes(b"customers:\n  - name: acme\n    display_name: \xff\n")
    _check_one_line(
        capsys, "backup-exporter", tmp_path / "backup.yml", f"{inventory}: line 3: not UTF-8 text (byte 0xff)"
    )


def test_not_utf8_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "profiles").mkdir()
    profile = tmp_path / "profiles" / "mine.yaml"
    profile.write_bytes(b"name: mine\ndescription: \xc3\x28\n")
    (tmp_path / "snmp.yml").write_text(SNMP_OK + "profile_dirs: [profiles]\n")
    _check_one_line(
        capsys, "snmp-exporter", tmp_path / "snmp.yml", f"{profile}: line 2: not UTF-8 text (byte 0xc3)"
    )


def test_fifo_is_refused_not_waited_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "snmp.yml"
    os.mkfifo(fifo)  # nobody ever writes: reading it would block for ever
    _check_one_line(capsys, "snmp-exporter", fifo, f"{fifo}: cannot read: not a regular file")
    secret = tmp_path / "community"
    os.mkfifo(secret)
    config = tmp_path / "fifo-secret.yml"
    config.write_text("auths:\n  lab: {version: 2, community: {file: community}}\n")
    _check_one_line(
        capsys,
        "snmp-exporter",
        config,
        f"{config}: auths.lab.community: cannot read secret file community: not a regular file",
    )


def test_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _check_one_line(capsys, "snmp-exporter", tmp_path, f"{tmp_path}: cannot read: not a regular file")


def test_not_utf8_secret_file_names_no_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "community").write_bytes(b"s3cr\xe9t\n")
    config = tmp_path / "snmp.yml"
    config.write_text("auths:\n  lab: {version: 2, community: {file: community}}\n")
    _check_one_line(
        capsys,
        "snmp-exporter",
        config,
        f"{config}: auths.lab.community: secret file community is not UTF-8 text",
    )


def test_deep_nesting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.yml"
    deep.write_text("auths: " + "[" * 5000 + "]" * 5000 + "\n")  # RecursionError before
    _check_one_line(capsys, "snmp-exporter", deep, f"{deep}: line 1: nested deeper than {MAX_NESTING} levels")


def test_alias_bomb(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yml"
    bomb.write_text("\n".join(lines) + "\n")  # 10**9 values once expanded
    with pytest.raises(ConfigError) as err:
        load_yaml(bomb)
    assert str(err.value) == f"{bomb}: line 6: more than 1000000 values once aliases are expanded"


def test_merge_keys_may_override() -> None:
    """``<<: *defaults`` followed by one of its keys is an override, not a duplicate."""
    path = INVALID.parent / "merge-keys.yaml"
    assert load_yaml(path) == {"base": {"a": 1, "b": 2}, "derived": {"a": 1, "b": 3}}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1d12h", 129600.0),
        ("2w", 1209600.0),
        ("1y", 31536000.0),
        ("1h0m30s250ms", 3630.25),
        ("1.5s", 1.5),
        (90, 90.0),
        (0.25, 0.25),
    ],
)
def test_every_prometheus_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad",
    ["", "0", "1m30", "30 s", "1s1h", "-1s", "\u0661s", "1e3s", True, False, None, [], float("nan"), 0, -5],
)
def test_invalid_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_web_config_certificate_is_loaded_by_config_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Start-up loads the TLS certificate; --config.check must refuse what start-up refuses."""
    ca = make_test_ca(tmp_path / "tls")
    (tmp_path / "garbage.key").write_text("not a key\n")
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump({"tls_server_config": {"cert_file": str(ca.cert_file), "key_file": "garbage.key"}})
    )
    snmp = tmp_path / "snmp.yml"
    snmp.write_text(SNMP_OK)
    code, output = run_check(capsys, "snmp-exporter", snmp, f"--web.config.file={web}")
    assert code == 1
    assert output.startswith(f"error: {web}: tls_server_config: cannot load certificate: ")
    assert "\n" not in output


def test_web_config_malformed_bcrypt_hash(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"noc": "$2b$12$tooshort"}}))
    with pytest.raises(ConfigError) as err:
        load_web_config(web)
    assert str(err.value) == (
        f"{web}: basic_auth_users: user 'noc': password must be a bcrypt hash ($2b$12$ and 53 characters)"
    )


def test_unknown_users_are_checked_at_the_users_cost() -> None:
    """The dummy hash for unknown users costs what the real ones cost (it was 10 against 12)."""
    users = {
        "noc": bcrypt.hashpw(b"a", bcrypt.gensalt(rounds=6)).decode(),
        "ops": bcrypt.hashpw(b"b", bcrypt.gensalt(rounds=7)).decode(),
    }
    auth = BasicAuth(users)
    assert auth.dummy_hash.startswith(b"$2b$07$")
    assert BasicAuth({"noc": users["noc"]}).dummy_hash.startswith(b"$2b$06$")


def test_listen_address_is_checked_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snmp = tmp_path / "snmp.yml"
    snmp.write_text(SNMP_OK)
    code, output = run_check(capsys, "snmp-exporter", snmp, "--web.listen-address=127.0.0.1:99999")
    assert (code, output) == (
        1,
        "error: --web.listen-address: invalid address '127.0.0.1:99999', want host:port",
    )


def test_exponent_floats_are_numbers(tmp_path: Path) -> None:
    """YAML 1.1 reads ``1e-3`` as a string; strict number fields must still take it."""
    path = tmp_path / "numbers.yml"
    path.write_text('a: 1e-3\nb: 2.5E+2\nc: "1e-3"\nd: 1e\n')
    assert load_yaml(path) == {"a": 0.001, "b": 250.0, "c": "1e-3", "d": "1e"}
