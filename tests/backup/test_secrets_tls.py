"""Credentials never appear in logs, /metrics or errors; TLS verification with a custom CA.

These run the real ``mspwatch backup-exporter`` process against the simulator.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port, wait_for_port

from .conftest import PASSWORD, SCENARIOS, Sim, value, veeam_source, write_config
from .test_faults import reason_of

WRONG = "Wr0ng-but-Secret-5f2a"
RESTIC_PW = "restic-repo-Secret-91c4"


def test_credentials_never_leak(acme: Sim, tmp_path: Path, start_process: Any) -> None:
    fail_cmd = [
        sys.executable,
        "-c",
        "import os, sys; sys.stderr.write('Fatal: wrong password ' + os.environ['RESTIC_PASSWORD'])"
        "; sys.exit(1)",
    ]
    config = write_config(
        tmp_path,
        [
            veeam_source(acme.url),
            {**veeam_source(acme.url), "name": "acme-wrong", "credentials": "wrong"},
            {
                "name": "acme-restic",
                "kind": "restic",
                "command": fail_cmd,
                "credentials": "restic",
            },
        ],
        password={"env": "ACME_VEEAM_PASSWORD"},
        extra_credentials={
            "wrong": {"username": "svc-monitor", "password": {"env": "WRONG_PASSWORD"}},
            "restic": {"password": {"file": str(tmp_path / "restic.pw")}},
        },
    )
    (tmp_path / "restic.pw").write_text(RESTIC_PW + "\n")
    port = free_port()
    env = {"ACME_VEEAM_PASSWORD": PASSWORD, "WRONG_PASSWORD": WRONG}
    proc = start_process(
        [
            sys.executable,
            "-m",
            "mspwatch.cli",
            "backup-exporter",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=debug",
        ],
        "exporter",
        env,
    )
    wait_for_port(port, proc=proc)
    seen = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as c:
        good = c.get("/backup", params={"target": "acme-vbr"})
        assert value(good.text, "backup_source_up") == 1
        bad = c.get("/backup", params={"target": "acme-wrong"})
        assert reason_of(bad.text) == "auth"
        restic = c.get("/backup", params={"target": "acme-restic"})
        assert reason_of(restic.text) == "command_failed"
        seen += [good.text, bad.text, restic.text, c.get("/metrics").text, c.get("/").text]
        assert c.post("/-/reload").status_code == 200
    proc.terminate()
    proc.wait(timeout=10)
    log = (tmp_path / "exporter.log").read_text()
    assert "source down" in log and "acme-wrong" in log  # the failures were logged...
    assert "Fatal: wrong password <secret>" in log  # ...with the secret redacted
    for text in [*seen, log]:
        for secret in (PASSWORD, WRONG, RESTIC_PW):
            assert secret not in text


def _cert(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mspwatch test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vbr-sim")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "vbr.pem", tmp_path / "vbr.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


async def test_tls_verification_with_custom_ca(tmp_path: Path, start_process: Any, exporters: Any) -> None:
    ca_file, cert_file, key_file = _cert(tmp_path)
    port = free_port()
    proc = start_process(
        [
            sys.executable,
            "-m",
            "simulators.veeam",
            f"--listen=127.0.0.1:{port}",
            f"--scenario={SCENARIOS / 'smallbiz.yaml'}",
            f"--tls-cert={cert_file}",
            f"--tls-key={key_file}",
        ],
        "tls-sim",
    )
    wait_for_port(port, proc=proc)
    url = f"https://127.0.0.1:{port}"
    cases = {
        "default-trust": ({}, "tls"),
        "custom-ca": ({"ca_file": str(ca_file)}, None),
        "insecure": ({"insecure_skip_verify": True}, None),
    }
    for name, (extra, reason) in cases.items():
        config = write_config(tmp_path / name, [veeam_source(url, **extra)])
        text = await exporters(config).scrape("acme-vbr")
        assert reason_of(text) == reason, name
        assert value(text, "backup_source_up") == (0 if reason else 1), name
