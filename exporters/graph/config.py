"""Graph settings: app registrations (client credentials) and transport options.

Example (embedded in an exporter's config)::

    apps:
      msp:
        client_id: 4f1c2d9e-0000-4000-8000-000000000001
        client_secret: {env: M365_CLIENT_SECRET}
      msp-cert:
        client_id: 4f1c2d9e-0000-4000-8000-000000000002
        certificate:
          certificate_file: msp.crt            # PEM; relative to the config file
          private_key: {file: /run/secrets/msp.key}
    graph:
      url: https://graph.microsoft.com
      authority_host: https://login.microsoftonline.com
      ca_file: null                          # extra CA bundle (a private or test CA)
      request_timeout: 10s
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509
from pydantic import Field, field_validator, model_validator

from mspwatch.common.config import ConfigError, Duration, StrictModel, check_ca_file, read_file
from mspwatch.common.secrets import Secret

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class Certificate(StrictModel):
    """A certificate credential: msal signs a client assertion with the private key."""

    certificate_file: Path
    """PEM certificate uploaded to the app registration (relative to the config file)."""
    private_key: Secret
    """The certificate's PEM private key."""
    passphrase: Secret | None = None
    """Passphrase of an encrypted private key."""


class GraphApp(StrictModel):
    """One app registration (commonly one multi-tenant app consented in every customer)."""

    client_id: str
    """Application (client) ID of the app registration."""
    client_secret: Secret | None = None
    """Client secret; give this or `certificate`."""
    certificate: Certificate | None = None
    """Certificate credential instead of a client secret (recommended)."""

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        if not _GUID.match(value):
            raise ValueError(f"invalid client id {value!r}, want a GUID")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> GraphApp:
        if (self.client_secret is None) == (self.certificate is None):
            raise ValueError("exactly one of client_secret or certificate is required")
        return self


class GraphOptions(StrictModel):
    url: str = "https://graph.microsoft.com"
    """Microsoft Graph base URL (national clouds differ)."""
    authority_host: str = "https://login.microsoftonline.com"
    """Microsoft identity platform host that issues tokens."""
    ca_file: Path | None = None
    """PEM CA bundle to trust instead of the system's (relative to the config file)."""
    request_timeout: Duration = 10.0
    """Time one Graph or token request may take."""
    max_retries: int = Field(default=3, ge=0, le=10)  # per request, for 429/5xx/network
    """Retries of one request after 429, 5xx or a network error, within the deadline."""
    max_pages: int = Field(default=500, ge=1, le=100_000)
    """Pages followed through @odata.nextLink before the answer counts as malformed."""
    max_restarts: int = Field(default=2, ge=0, le=10)  # expired skip token: start over
    """Restarts from page one after an expired skip token."""
    token_failure_backoff: Duration = 30.0  # a refused credential is not retried sooner
    """A refused credential is not retried sooner than this."""

    @field_validator("url", "authority_host")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"must be an https:// URL, got {value!r}")
        return value.rstrip("/")


def resolve_files(
    graph: GraphOptions, apps: dict[str, GraphApp], path: Path
) -> tuple[GraphOptions, dict[str, GraphApp]]:
    """Make ``graph.ca_file`` and each app's ``certificate_file`` absolute (relative to the
    config file ``path``) and load them now, so a bad one fails at start and ``--config.check``.

    Used by every exporter that embeds Graph settings (m365.yml, patch.yml)::

        >>> resolve_files(GraphOptions(ca_file=Path("ca.pem")), {}, Path("/etc/mspwatch/m365.yml"))
        Traceback (most recent call last):
        ...
        mspwatch.common.config.ConfigError: /etc/mspwatch/m365.yml: graph.ca_file: file not found: ca.pem
    """
    base = path.parent
    if graph.ca_file is not None:
        ca = graph.ca_file if graph.ca_file.is_absolute() else base / graph.ca_file
        if not ca.is_file():
            raise ConfigError(f"{path}: graph.ca_file: file not found: {graph.ca_file}")
        check_ca_file(ca, f"{path}: graph.ca_file")
        graph = graph.model_copy(update={"ca_file": ca})
    resolved = {}
    for name, app in apps.items():
        if app.certificate is not None:
            file = app.certificate.certificate_file
            cert = file if file.is_absolute() else base / file
            where = f"{path}: apps.{name}.certificate.certificate_file"
            try:
                x509.load_pem_x509_certificate(read_file(cert))
            except OSError as exc:
                raise ConfigError(f"{where}: cannot read {cert.name}: {exc.strerror}") from None
            except ValueError:
                raise ConfigError(f"{where}: not a PEM certificate") from None
            app = app.model_copy(
                update={"certificate": app.certificate.model_copy(update={"certificate_file": cert})}
            )
        resolved[name] = app
    return graph, resolved
