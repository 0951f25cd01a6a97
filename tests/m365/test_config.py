"""Config validation (one bad file per rule, exact messages), inventory tenants, file_sd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mspwatch.common.config import ConfigError
from mspwatch.exporters.m365.config import load_config
from mspwatch.inventory import load_inventory, write_targets

INVALID = Path(__file__).parent / "invalid"
SECRET_VALUES = ("s3cret-value", "key-value")

# file -> message after "<file>: " (inventory files name themselves instead).
EXPECTED = {
    "bad-client-id.yml": "apps.msp.client_id: invalid client id 'my-app', want a GUID",
    "bad-duration.yml": (
        "refresh.health: invalid duration '5 minutes', want a duration such as 500ms, 30s, 1h30m or 7d"
    ),
    "bad-tenant-id.yml": (
        "tenants.0.tenant_id: invalid tenant id 'not a tenant', want a GUID or a domain name"
    ),
    "bad-tenant-name.yml": (
        "tenants.0.name: must be 1-63 lower-case letters, digits, '.', '_' or '-', "
        "starting with a letter or digit"
    ),
    "both-credentials.yml": "apps.msp: exactly one of client_secret or certificate is required",
    "duplicate-tenant.yml": "tenants.1.name: duplicate tenant name 'acme'",
    "http-graph-url.yml": "graph.url: must be an https:// URL, got 'http://graph.example'",
    "missing-ca.yml": "graph.ca_file: file not found: missing-ca.pem",
    "missing-certificate.yml": (
        "apps.msp.certificate.certificate_file: cannot read missing-app.pem: No such file or directory"
    ),
    "no-apps.yml": "apps: Dictionary should have at least 1 item after validation, not 0",
    "no-credential.yml": "apps.msp: exactly one of client_secret or certificate is required",
    "not-a-certificate.yml": "apps.msp.certificate.certificate_file: not a PEM certificate",
    "not-yaml.yml": "line 2: expected ',' or ']', but got '<stream end>'",
    "secret-env-unset.yml": (
        "apps.msp.client_secret: environment variable MSPWATCH_TEST_UNSET_SECRET is not set"
    ),
    "secret-wrong-type.yml": "apps.msp.client_secret: must be a string, {env: NAME} or {file: PATH}",
    "unknown-app.yml": "tenants.0.app: unknown app 'other' (apps in unknown-app.yml: msp)",
    "unknown-field.yml": "apps.msp.tenant: unknown field",
    "unknown-signal.yml": (
        "signals.1: Input should be 'health', 'issues', 'licences', 'secure_score' or 'mfa'"
    ),
    "zero-interval.yml": "refresh.licences: must be a positive duration",
}
FROM_INVENTORY = {
    "inventory-duplicate-tenant.yml": "customers.0.m365_tenants.0.name: duplicate tenant name 'acme'",
    "inventory-unknown-app.yml": (
        "customers.0.m365_tenants.0.app: unknown app 'partner' (apps in inventory-unknown-app.yml: msp)"
    ),
}


def test_every_invalid_file_has_an_expected_message() -> None:
    assert {p.name for p in INVALID.glob("*.yml")} == set(EXPECTED) | set(FROM_INVENTORY)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_config(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MSPWATCH_TEST_UNSET_SECRET", raising=False)
    path = INVALID / name
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: {EXPECTED[name]}"
    for secret in SECRET_VALUES:
        assert secret not in str(err.value)


@pytest.mark.parametrize("name", sorted(FROM_INVENTORY))
def test_invalid_inventory_tenant(name: str) -> None:
    path = INVALID / name
    inventory = INVALID / name.replace(".yml", ".inventory.yaml")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{inventory}: {FROM_INVENTORY[name]}"


def _write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


INVENTORY = {
    "customers": [
        {
            "name": "acme",
            "m365_tenants": [
                {"name": "acme", "tenant_id": "2b6f0c5e-0000-4000-8000-00000000c0de"},
                {"name": "acme-lab", "tenant_id": "acmelab.onmicrosoft.com", "app": "lab"},
            ],
        },
        {"name": "globex", "sites": []},
    ]
}


def test_tenants_come_from_the_inventory_and_the_config(tmp_path: Path) -> None:
    _write(tmp_path / "inventory.yml", INVENTORY)
    (tmp_path / "secret").write_text("from-a-file\n")
    cfg_path = _write(
        tmp_path / "m365.yml",
        {
            "inventory": "inventory.yml",
            "apps": {
                "msp": {"client_id": "4f1c2d9e-0000-4000-8000-000000000001", "client_secret": "x"},
                "lab": {
                    "client_id": "4f1c2d9e-0000-4000-8000-000000000002",
                    "client_secret": {"file": str(tmp_path / "secret")},
                },
            },
            "tenants": [{"name": "standalone", "tenant_id": "standalone.onmicrosoft.com"}],
            "refresh": {"health": "90s", "secure_score": "1d"},
        },
    )
    cfg, tenants = load_config(cfg_path)
    assert [t.name for t in tenants] == ["standalone", "acme", "acme-lab"]
    assert cfg.inventory == tmp_path / "inventory.yml"
    assert cfg.refresh.health == 90.0
    assert cfg.refresh.secure_score == 86400.0
    assert cfg.refresh.licences == 3600.0  # defaults: health minutes, licences hourly, score daily
    assert cfg.apps["lab"].client_secret is not None
    assert cfg.apps["lab"].client_secret.reveal() == "from-a-file"


def test_file_sd_has_one_group_per_tenant(tmp_path: Path) -> None:
    inv = load_inventory(_write(tmp_path / "inventory.yml", INVENTORY))
    write_targets(inv, tmp_path / "targets")
    groups = json.loads((tmp_path / "targets" / "m365.json").read_text())
    assert groups == [
        {"labels": {"customer": "acme", "tenant": "acme"}, "targets": ["acme"]},
        {"labels": {"customer": "acme", "tenant": "acme-lab"}, "targets": ["acme-lab"]},
    ]
