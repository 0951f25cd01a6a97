"""docs/m365-setup.md stays true: its inventory and config examples load, and its
permission table agrees with the one in docs/m365-metrics.md."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mspwatch.exporters.m365.config import SIGNALS, load_config

DOCS = Path(__file__).resolve().parents[2] / "docs"
SETUP = DOCS / "m365-setup.md"


def _yaml_blocks(text: str) -> dict[str, str]:
    """Fenced yaml blocks keyed by the file name in their first comment line."""
    blocks: dict[str, str] = {}
    for body in re.findall(r"```yaml\n(.*?)```", text, re.S):
        first = body.splitlines()[0]
        m = re.match(r"# ([\w.-]+)", first)
        assert m, f"yaml block without a '# <file>' first line: {first!r}"
        blocks[m.group(1)] = body
    return blocks


def _permissions(text: str) -> dict[str, str]:
    """signal -> application permission, from a markdown table with those columns."""
    rows = [r for r in text.splitlines() if r.startswith("| `")]
    out: dict[str, str] = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        signal = cells[0].strip("`")
        if signal in SIGNALS:
            perms = [c for c in cells if re.fullmatch(r"[A-Za-z]+\.Read\.All", c)]
            assert len(perms) == 1, row
            out[signal] = perms[0]
    return out


def _write_certificate(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mspwatch monitoring")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_setup_examples_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _yaml_blocks(SETUP.read_text())
    assert set(blocks) == {"inventory.yml", "m365.yml"}
    for name, body in blocks.items():
        (tmp_path / name).write_text(body)
    _write_certificate(tmp_path / "msp-app.pem", tmp_path / "msp-app.key")
    monkeypatch.setenv("M365_CLIENT_SECRET", "doc-example-secret")

    cfg, tenants = load_config(tmp_path / "m365.yml")

    assert sorted(cfg.apps) == ["msp", "msp-cert"]
    by_name = {t.name: t for t in tenants}
    assert sorted(by_name) == ["acme", "globex"]
    assert by_name["acme"].app == "msp" and by_name["acme"].signals is None
    assert by_name["globex"].app == "msp-cert"
    assert by_name["globex"].signals == ["health", "issues", "licences", "secure_score"]


def test_setup_permissions_match_the_metrics_doc() -> None:
    setup = _permissions(SETUP.read_text())
    metrics = _permissions((DOCS / "m365-metrics.md").read_text())
    assert set(setup) == set(SIGNALS)
    assert setup == metrics
