"""Access tokens for Graph: msal client credentials, one app object per tenant.

msal caches the token inside its app object, so one object per (tenant, app) lives as long
as the exporter. msal is synchronous and does network I/O (tenant discovery when the object
is built, the token request when the cache misses): both run in a worker thread, bounded by
the deadline, one at a time per tenant.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from typing import Any, Protocol

from mspwatch.exporters.core.deadline import Deadline

from .config import GraphApp, GraphOptions
from .errors import GraphError, Reason

log = logging.getLogger("mspwatch.graph.auth")

GRAPH_SCOPE_SUFFIX = "/.default"

# Token endpoint errors that mean "the service is having trouble", not "you are refused".
_TRANSIENT = {"temporarily_unavailable", "server_error"}
TOKEN_MARGIN = 300.0  # seconds before expiry at which a held token goes back to msal


class TokenProvider(Protocol):
    async def token(self, deadline: Deadline) -> str:
        """Return a bearer token for Graph, or raise :class:`GraphError`."""
        ...

    def invalidate(self) -> None:
        """Forget the cached token (Graph refused it: revoked, or rotated keys)."""
        ...


class MsalTokenProvider:
    """Client-credentials tokens for one tenant through one msal app object."""

    def __init__(
        self,
        tenant_id: str,
        app: GraphApp,
        options: GraphOptions,
        executor: Executor | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self._app_config = app
        self._options = options
        # msal blocks: its calls run here. A dedicated pool keeps hanging token endpoints
        # from starving asyncio's default executor.
        self._executor = executor
        self._scopes = [options.url + GRAPH_SCOPE_SUFFIX]
        self._msal: Any = None
        self._lock = asyncio.Lock()
        # A refused credential stays refused for a while: the tenant's signals share one
        # answer instead of each asking the token endpoint again.
        self._refused: tuple[GraphError, float] | None = None
        self._held: tuple[str, float] | None = None  # token, monotonic time to stop using it

    def _credential(self) -> str | dict[str, str]:
        app = self._app_config
        if app.client_secret is not None:
            return app.client_secret.reveal()
        assert app.certificate is not None
        cert = app.certificate
        cred = {
            "private_key": cert.private_key.reveal(),
            "public_certificate": cert.certificate_file.read_text(encoding="utf-8"),
        }
        if cert.passphrase is not None:
            cred["passphrase"] = cert.passphrase.reveal()
        return cred

    def _build(self) -> Any:
        import msal
        import requests

        session = requests.Session()  # trust_env: HTTPS_PROXY is honoured
        verify: str | bool = True
        if self._options.ca_file is not None:
            verify = str(self._options.ca_file)
        return msal.ConfidentialClientApplication(
            self._app_config.client_id,
            client_credential=self._credential(),
            authority=f"{self._options.authority_host}/{self.tenant_id}",
            # Our own authority host (a sovereign cloud, the simulator): no discovery call to
            # login.microsoftonline.com, no validation against Microsoft's list of hosts.
            validate_authority=False,
            instance_discovery=False,
            azure_region=False,
            http_client=_VerifyingHttp(session, verify),
            timeout=self._options.request_timeout,
        )

    def _acquire(self) -> dict[str, Any]:
        import requests

        try:
            if self._msal is None:
                self._msal = self._build()
            result: dict[str, Any] = self._msal.acquire_token_for_client(scopes=self._scopes)
        except requests.RequestException as exc:
            raise GraphError(Reason.NETWORK, f"token endpoint: {type(exc).__name__}") from None
        except ValueError as exc:
            # msal: tenant discovery answered 4xx (unknown tenant) or the credential is bad.
            text = str(exc)
            if "OIDC" in text or "authority" in text:
                raise GraphError(Reason.AUTH, "tenant discovery failed (unknown tenant?)") from None
            raise GraphError(Reason.AUTH, f"credential rejected by msal: {type(exc).__name__}") from None
        except OSError as exc:
            raise GraphError(Reason.AUTH, f"cannot read credential: {exc.strerror or exc}") from None
        return result

    async def token(self, deadline: Deadline) -> str:
        # msal's own cache lookup costs a thread hop; skip it while the token is fresh.
        held = self._held
        if held is not None and time.monotonic() < held[1]:
            return held[0]
        try:
            async with asyncio.timeout(deadline.remaining()):
                async with self._lock:
                    if self._refused is not None and time.monotonic() < self._refused[1]:
                        known = self._refused[0]
                        raise GraphError(known.reason, known.detail, code=known.code)
                    try:
                        loop = asyncio.get_running_loop()
                        result = await loop.run_in_executor(self._executor, self._acquire)
                        token = self._check(result)
                    except GraphError as exc:
                        if exc.reason == Reason.AUTH:
                            self._refused = (exc, time.monotonic() + self._options.token_failure_backoff)
                        raise
        except TimeoutError:
            raise GraphError(Reason.DEADLINE, "token request did not finish in time") from None
        lifetime = result.get("expires_in")
        if isinstance(lifetime, int | float) and lifetime > 2 * TOKEN_MARGIN:
            # Hand back to msal well before expiry: it refreshes, we never send a stale token.
            self._held = (token, time.monotonic() + lifetime - TOKEN_MARGIN)
        return token

    def invalidate(self) -> None:
        self._held = None
        app = self._msal
        if app is None:
            return
        cache = app.token_cache
        for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
            cache.remove_at(entry)

    def _check(self, result: dict[str, Any]) -> str:
        token = result.get("access_token")
        if isinstance(token, str) and token:
            return token
        error = str(result.get("error") or "unknown_error")
        codes = result.get("error_codes") or []
        detail = f"token endpoint refused: {error}"
        if codes:
            detail += f" (AADSTS{codes[0]})"
        reason = Reason.UNAVAILABLE if error in _TRANSIENT else Reason.AUTH
        raise GraphError(reason, detail, code=error)


class _VerifyingHttp:
    """Hand msal a session whose CA bundle wins over ``REQUESTS_CA_BUNDLE``.

    requests lets the environment's bundle override ``Session.verify``; passing ``verify``
    on every call is the documented way to make the configured bundle stick.
    """

    def __init__(self, session: Any, verify: str | bool) -> None:
        self._session = session
        self._verify = verify

    def get(self, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("verify", self._verify)
        return self._session.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("verify", self._verify)
        return self._session.post(url, **kwargs)

    def close(self) -> None:
        self._session.close()
