"""A throwaway certificate authority for serving the simulator over HTTPS.

msal only talks to ``https://`` authorities, so the simulator serves TLS with a server
certificate for ``localhost``/``127.0.0.1``/``::1`` signed by a CA made on the spot. Clients
trust that CA through their CA-bundle option (``graph.ca_file`` in the exporter).

The compose ``demo`` profile's Graph simulator is reached as ``graph-simulator``: its one-shot
``graph-tls`` container makes that certificate and its CA into a volume at the profile's
first start (and keeps them after), before the simulator and the exporters start::

    python -m mspwatch.simulators.tls --out=/var/lib/mspwatch/graph-tls --keep \
        --host=graph-simulator --host=localhost --host=127.0.0.1
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mspwatch simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_test_ca(
    directory: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1"), days: int = 30
) -> TlsFiles:
    """Write ``ca.pem``, ``server.pem`` (for ``hosts``, the first its common name) and
    ``server-key.pem`` into ``directory``, valid for ``days``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    until = now + dt.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("mspwatch simulator test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(_pem_key(key))
    files.key_file.chmod(0o600)
    return files


def make_client_certificate(directory: Path, name: str = "mspwatch-app") -> tuple[Path, Path]:
    """A self-signed RSA certificate for an app's certificate credential: (cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = _name(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(_pem_key(key))
    key_file.chmod(0o600)
    return cert_file, key_file


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mspwatch.simulators.tls", description="Write a test CA and a server certificate."
    )
    p.add_argument("--out", type=Path, required=True, help="directory for ca.pem, server.pem, server-key.pem")
    p.add_argument(
        "--host", action="append", required=True, help="a name or address of the server (repeatable)"
    )
    p.add_argument("--days", type=int, default=30, help="validity (default 30)")
    p.add_argument(
        "--keep", action="store_true", help="leave the three files alone when they exist (a restart)"
    )
    args = p.parse_args(argv)
    names = ("ca.pem", "server.pem", "server-key.pem")
    if args.keep and all((args.out / name).is_file() for name in names):
        print(f"kept the certificate in {args.out}")
        return 0
    files = make_test_ca(args.out, tuple(args.host), args.days)
    for path in (files.ca_file, files.cert_file, files.key_file):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
