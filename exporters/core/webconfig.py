"""``--web.config.file``: TLS and basic auth in the format of Prometheus's exporter toolkit.

Example::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
      client_ca_file: ca.crt
      min_version: TLS12
    basic_auth_users:
      noc: $2b$12$hNf2lSsxfm0.i4a.1kVpSOVyBCfIB51VRjgBUyv6kdnyTlgWj81Ay
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import ssl
from pathlib import Path
from typing import Literal

import bcrypt
from pydantic import field_validator

from mspwatch.common.config import ConfigError, StrictModel, load_model, read_file

ClientAuth = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]


class TLSServerConfig(StrictModel):
    cert_file: Path
    key_file: Path
    client_auth_type: ClientAuth = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: Literal["TLS12", "TLS13"] = "TLS12"


class WebConfig(StrictModel):
    tls_server_config: TLSServerConfig | None = None
    basic_auth_users: dict[str, str] = {}

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            if not _BCRYPT.match(hashed) or not 4 <= bcrypt_cost(hashed) <= 31:
                # A malformed hash would lock the user out at every request instead.
                raise ValueError(f"user {user!r}: password must be a bcrypt hash ($2b$12$ and 53 characters)")
        return users


_BCRYPT = re.compile(r"^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$")


def bcrypt_cost(hashed: str | bytes) -> int:
    """The cost (log2 of the rounds) of a bcrypt hash.

    >>> bcrypt_cost("$2b$12$hNf2lSsxfm0.i4a.1kVpSOVyBCfIB51VRjgBUyv6kdnyTlgWj81Ay")
    12
    """
    text = hashed.decode("ascii") if isinstance(hashed, bytes) else hashed
    return int(text[4:6])


def load_web_config(path: Path | None) -> WebConfig:
    """Load the web config; ``None`` means plain HTTP without auth."""
    if path is None:
        return WebConfig()
    web = load_model(WebConfig, path)
    base = path.parent
    tls = web.tls_server_config
    if tls is None:
        return web
    files = [tls.cert_file, tls.key_file] + ([tls.client_ca_file] if tls.client_ca_file else [])
    for f in files:
        try:
            read_file(base / f)  # a FIFO is refused here, before OpenSSL would block on it
        except OSError as exc:
            raise ConfigError(f"{path}: tls_server_config: cannot read {f}: {exc.strerror or exc}") from None
    if tls.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert") and (
        tls.client_ca_file is None
    ):
        raise ConfigError(f"{path}: tls_server_config.client_ca_file: required by {tls.client_auth_type}")
    # Relative paths are relative to the web config file, as in the toolkit.
    resolved = tls.model_copy(
        update={
            "cert_file": base / tls.cert_file,
            "key_file": base / tls.key_file,
            "client_ca_file": base / tls.client_ca_file if tls.client_ca_file else None,
        }
    )
    try:
        ssl_context(resolved)  # what start-up does: --config.check must refuse what it refuses
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return web.model_copy(update={"tls_server_config": resolved})


def ssl_context(tls: TLSServerConfig) -> ssl.SSLContext:
    """Build the server-side TLS context the toolkit's settings describe."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if tls.min_version == "TLS13" else ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        if tls.client_ca_file is not None:
            ctx.load_verify_locations(cafile=str(tls.client_ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls_server_config: cannot load certificate: {exc}") from None
    ctx.verify_mode = {
        "NoClientCert": ssl.CERT_NONE,
        "RequestClientCert": ssl.CERT_OPTIONAL,
        "RequireAnyClientCert": ssl.CERT_REQUIRED,
        "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
        "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    }[tls.client_auth_type]
    return ctx


class BasicAuth:
    """Check ``Authorization: Basic`` headers against bcrypt hashes.

    bcrypt is deliberately slow (a cost-12 check takes about half a second), so checks run
    in a worker thread, a few at a time, never on the event loop that serves scrapes. A
    successful check is remembered as a keyed digest of the credentials (never the password
    itself). Unknown users are checked against a dummy hash of the highest cost among the
    configured users, so a wrong password takes as long for a user that does not exist as
    for one that does, and timing does not tell which user names exist.
    """

    def __init__(self, users: dict[str, str], max_concurrent: int = 2) -> None:
        self._users = {u: h.encode() for u, h in users.items()}
        cost = max((bcrypt_cost(h) for h in users.values()), default=4)
        self.dummy_hash: bytes = bcrypt.hashpw(b"mspwatch-unknown-user", bcrypt.gensalt(rounds=cost))
        self._key = hashlib.sha256(repr(sorted(users.items())).encode()).digest()
        self._verified: set[bytes] = set()
        self._slots = asyncio.Semaphore(max_concurrent)

    async def check(self, header: str | None) -> bool:
        """Return True when the header carries a known user and the right password."""
        if not self._users:
            return True
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        digest = hmac.new(self._key, decoded.encode(), hashlib.sha256).digest()
        if digest in self._verified:
            return True
        hashed = self._users.get(user)
        known = hashed is not None
        if hashed is None:
            hashed = self.dummy_hash
        elif hashed.startswith(b"$2y$"):  # PHP/htpasswd spelling of the same algorithm
            hashed = b"$2b$" + hashed[4:]
        async with self._slots:
            ok = await asyncio.to_thread(_checkpw, password.encode(), hashed)
        if ok and known:
            self._verified.add(digest)
        return ok and known


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bool(bcrypt.checkpw(password, hashed))
    except ValueError:
        return False
