"""Access tokens for Graph: msal client credentials, one app object per tenant.

msal caches the token inside its app object, so one object per (tenant, app) lives as long
as the exporter. msal is synchronous and does network I/O (tenant discovery when the object
is built, the token request when the cache misses): both run in a worker thread, bounded by
the deadline, one at a time per tenant.

Every HTTP request msal makes carries a timeout of min(request timeout, deadline remaining):
msal ignores its own ``timeout`` argument once it is handed an HTTP client, so ours sets it
on each call. A tenant never has more than one worker thread: a new attempt waits for the
previous one's thread, whose requests end by that attempt's deadline.

The token endpoint answering 5xx (or a gateway's 502/503) is ``unavailable`` and retried
within the deadline, after ``Retry-After`` or msal's own throttle window: msal keeps a 5xx
answer for that long and hands it back without asking again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
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
# msal (ThrottledHttpClient) replays a 5xx/429 answer without Retry-After for this long:
# retrying sooner only reads msal's copy.
MSAL_THROTTLE_SECONDS = 5.0
# Failures worth another attempt within the same deadline.
_RETRYABLE = {Reason.UNAVAILABLE, Reason.NETWORK, Reason.THROTTLED}


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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.tenant_id = tenant_id
        # Waits between attempts are real in service: msal's throttle window is wall time.
        self._sleep = sleep
        self._app_config = app
        self._options = options
        # msal blocks: its calls run here. A dedicated pool keeps hanging token endpoints
        # from starving asyncio's default executor.
        self._executor = executor
        self._scopes = [options.url + GRAPH_SCOPE_SUFFIX]
        self._msal: Any = None
        self._http: _BoundedHttp | None = None
        self._lock = asyncio.Lock()
        # A failure the tenant's signals share until then instead of each asking the token
        # endpoint again: a refused credential (for token_failure_backoff), a 5xx (for its
        # Retry-After, while msal would only replay it anyway).
        self._known: tuple[GraphError, float] | None = None
        self._held: tuple[str, float] | None = None  # token, monotonic time to stop using it
        # Done once the worker thread of the latest attempt has returned.
        self._worker: asyncio.Future[None] | None = None

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

    def _build(self, http: _BoundedHttp) -> Any:
        import msal

        return msal.ConfidentialClientApplication(
            self._app_config.client_id,
            client_credential=self._credential(),
            authority=f"{self._options.authority_host}/{self.tenant_id}",
            # Our own authority host (a sovereign cloud, the simulator): no discovery call to
            # login.microsoftonline.com, no validation against Microsoft's list of hosts.
            validate_authority=False,
            instance_discovery=False,
            azure_region=False,
            # msal ignores ``timeout`` when given an http_client: the client bounds each call.
            http_client=http,
        )

    def _acquire(self, deadline: Deadline) -> dict[str, Any]:
        """One token request (and tenant discovery the first time); runs in a worker thread."""
        import msal
        import requests

        if self._http is None:
            verify: str | bool = True
            if self._options.ca_file is not None:
                verify = str(self._options.ca_file)
            # trust_env stays on: HTTPS_PROXY is honoured.
            self._http = _BoundedHttp(requests.Session(), verify, self._options.request_timeout)
        http = self._http
        http.deadline = deadline
        try:
            if self._msal is None:
                self._msal = self._build(http)
            result: dict[str, Any] = self._msal.acquire_token_for_client(scopes=self._scopes)
        except requests.Timeout:
            if deadline.expired():
                raise GraphError(Reason.DEADLINE, "token endpoint did not answer in time") from None
            raise GraphError(Reason.NETWORK, "token endpoint: request timed out") from None
        except requests.RequestException as exc:
            raise GraphError(Reason.NETWORK, f"token endpoint: {type(exc).__name__}") from None
        except msal.exceptions.MsalServiceError:
            # msal raises this for a 5xx answer (token or discovery), without the status.
            raise http.failure() from None
        except ValueError as exc:
            # msal: tenant discovery answered 4xx (unknown tenant) or the credential is bad.
            text = str(exc)
            if "OIDC" in text or "authority" in text:
                raise GraphError(Reason.AUTH, "tenant discovery failed (unknown tenant?)") from None
            raise GraphError(Reason.AUTH, f"credential rejected by msal: {type(exc).__name__}") from None
        except OSError as exc:
            raise GraphError(Reason.AUTH, f"cannot read credential: {exc.strerror or exc}") from None
        if http.last_status == 429 and "access_token" not in result:
            raise http.failure()
        return result

    async def _attempt(self, deadline: Deadline) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        previous = self._worker
        if previous is not None and not previous.done():
            # The last attempt gave up on its thread, which ends by that attempt's deadline:
            # wait for it rather than hold a second thread for this tenant.
            await asyncio.shield(previous)
        finished: asyncio.Future[None] = loop.create_future()
        self._worker = finished

        def run() -> dict[str, Any]:
            try:
                return self._acquire(deadline)
            finally:
                # A closed loop (the exporter stopped) has nobody waiting any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_finish, finished)

        return await loop.run_in_executor(self._executor, run)

    async def _acquire_retrying(self, deadline: Deadline) -> tuple[dict[str, Any], str]:
        attempt = 0
        while True:
            known = self._known
            now = time.monotonic()
            if known is not None and now < known[1]:
                exc = known[0]
                wait = None if exc.retry_after is None else known[1] - now
                raise GraphError(exc.reason, exc.detail, status=exc.status, code=exc.code, retry_after=wait)
            try:
                result = await self._attempt(deadline)
                return result, self._check(result)
            except GraphError as exc:
                if exc.reason == Reason.AUTH:
                    self._known = (exc, time.monotonic() + self._options.token_failure_backoff)
                    raise
                delay = exc.retry_after if exc.retry_after is not None else min(0.25 * 2**attempt, 4.0)
                if (
                    exc.reason not in _RETRYABLE
                    or attempt >= self._options.max_retries
                    or delay >= deadline.remaining()
                ):
                    if exc.retry_after is not None:
                        self._known = (exc, time.monotonic() + exc.retry_after)
                    raise
                attempt += 1
                log.info(
                    "token request failed, retrying",
                    extra={
                        "tenant": self.tenant_id,
                        "reason": exc.reason,
                        "detail": exc.detail,
                        "wait": delay,
                    },
                )
                await self._sleep(delay)

    async def token(self, deadline: Deadline) -> str:
        # msal's own cache lookup costs a thread hop; skip it while the token is fresh.
        held = self._held
        if held is not None and time.monotonic() < held[1]:
            return held[0]
        try:
            async with asyncio.timeout(deadline.remaining()):
                async with self._lock:
                    result, token = await self._acquire_retrying(deadline)
        except TimeoutError:
            raise GraphError(Reason.DEADLINE, "token request did not finish in time") from None
        self._known = None
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


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _BoundedHttp:
    """The HTTP client msal uses: our CA bundle and a timeout on every request.

    requests lets the environment's ``REQUESTS_CA_BUNDLE`` override ``Session.verify`` and
    has no session-wide timeout, so both go on each call. The timeout is
    min(request timeout, what is left of the current attempt's deadline). The last answer's
    status and ``Retry-After`` are kept: msal turns a 5xx into an exception without them.
    """

    def __init__(self, session: Any, verify: str | bool, request_timeout: float) -> None:
        self._session = session
        self._verify = verify
        self._request_timeout = request_timeout
        self.deadline: Deadline | None = None  # set before each attempt (one thread at a time)
        self.last_status: int | None = None
        self.last_retry_after: str | None = None

    def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> Any:
        import requests

        timeout = self._request_timeout
        if self.deadline is not None:
            remaining = self.deadline.remaining()
            if remaining <= 0:
                raise requests.Timeout("deadline reached")
            timeout = min(timeout, remaining)
        kwargs.setdefault("verify", self._verify)
        kwargs["timeout"] = timeout
        response = self._session.request(method, url, **kwargs)
        self.last_status = int(response.status_code)
        self.last_retry_after = response.headers.get("Retry-After")
        return response

    def get(self, url: str, **kwargs: Any) -> Any:
        return self._send("GET", url, kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self._send("POST", url, kwargs)

    def close(self) -> None:
        self._session.close()

    def failure(self) -> GraphError:
        """The last answer as an error: 5xx is ``unavailable``, 429 ``throttled``.

        ``retry_after`` is what msal throttles by: ``Retry-After`` in whole seconds, else 5 s.

        >>> http = _BoundedHttp(None, True, 10.0)
        >>> http.last_status, http.last_retry_after = 503, "2"
        >>> str(http.failure().reason), http.failure().retry_after
        ('unavailable', 2.0)
        """
        status = self.last_status
        if status is None:
            return GraphError(Reason.PROTOCOL, "token endpoint: msal refused the answer")
        try:
            wait = float(min(3600, int(self.last_retry_after or "")))
        except ValueError:
            wait = MSAL_THROTTLE_SECONDS
        if status == 429:
            return GraphError(Reason.THROTTLED, "token endpoint: HTTP 429", status=429, retry_after=wait)
        if status >= 500:
            detail = f"token endpoint: HTTP {status}"
            return GraphError(Reason.UNAVAILABLE, detail, status=status, retry_after=wait)
        return GraphError(Reason.PROTOCOL, f"token endpoint: HTTP {status}", status=status)
