"""Veeam B&R REST API v1 over the core HTTP client: tokens, GETs and paging.

Every request carries ``x-api-version`` and goes through :class:`~mspwatch.exporters.core.
http.JsonClient`, so data calls and token grants share one retry policy: a 429 or 5xx with
``Retry-After`` is waited out when the deadline allows, else the scrape fails at once with
the reason. Tokens come from the OAuth2 password grant and are renewed with the refresh
token, which works once: the new refresh token from every answer replaces the old one.
Lists are read with ``skip``/``limit`` to the last page.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mspwatch.common.secrets import Secret
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.http import Failure, HttpError, JsonClient, Params, RequestStats
from mspwatch.inventory import VeeamSource, resolve

from .records import Reason, SourceError

log = logging.getLogger("mspwatch.backup.veeam")

TOKEN_PATH = "/api/oauth2/token"  # noqa: S105  (a path, not a password)
# The HTTP statuses counted by backup_api_errors_total; any other error status is "other".
API_ERROR_STATUSES: tuple[str, ...] = ("400", "401", "403", "404", "429", "500", "502", "503", "504")
_TOKEN_SLACK = 30.0  # renew this long before the server says the access token expires
_MAX_PAGES = 10_000
# The core's reasons in the backup exporter's words (backup_scrape_error{reason}).
_REASONS: dict[Failure, Reason] = {
    Failure.UNREACHABLE: Reason.UNREACHABLE,
    Failure.TIMEOUT: Reason.TIMEOUT,
    Failure.DEADLINE: Reason.DEADLINE,
    Failure.TLS: Reason.TLS,
    Failure.THROTTLED: Reason.THROTTLED,
    Failure.UNAVAILABLE: Reason.SERVER_ERROR,
    Failure.AUTH: Reason.AUTH,
    Failure.FORBIDDEN: Reason.AUTH,
    Failure.PROTOCOL: Reason.HTTP_ERROR,
    Failure.MALFORMED: Reason.MALFORMED,
}


def source_error(exc: HttpError) -> SourceError:
    return SourceError(_REASONS[exc.reason], exc.detail)


def tls_verify(source: VeeamSource, base_dir: Path) -> ssl.SSLContext | bool:
    """TLS verification on by default; a custom CA bundle; off only when asked by name."""
    if source.insecure_skip_verify:
        return False
    ca = resolve(base_dir, source.ca_file)
    if ca is None:
        return True
    return ssl.create_default_context(cafile=str(ca))


@dataclass
class _Tokens:
    access: str | None
    refresh: str | None
    expires_at: float  # monotonic


class _Bearer:
    """The core client's auth hook for one call: remembers the token it handed out, so a
    401 invalidates that token only (a concurrent call may already hold a newer one)."""

    def __init__(self, api: VeeamApi, stats: RequestStats) -> None:
        self._api = api
        self._stats = stats
        self._last: str | None = None

    async def token(self, deadline: Deadline) -> str:
        self._last = await self._api.access_token(deadline, self._stats)
        return self._last

    def invalidate(self) -> None:
        self._api.invalidate(self._last)


class VeeamApi:
    """One VBR server's REST API: holds its tokens and its request counts since start."""

    def __init__(
        self,
        source: VeeamSource,
        username: str,
        password: Secret,
        *,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.source = source
        self._username = username
        self._password = password
        self._http = JsonClient(
            httpx.AsyncClient(
                base_url=source.url.rstrip("/"),
                verify=verify,
                headers={"x-api-version": source.api_version, "accept": "application/json"},
                trust_env=False,
                follow_redirects=False,
                transport=transport,
            ),
            request_timeout=source.request_timeout,
            owns_http=True,
            name=source.name,
        )
        self._tokens: _Tokens | None = None
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def api_errors(self) -> dict[str, int]:
        """HTTP error answers since start, by status (``other`` for the unlisted ones)."""
        return self._http.stats.errors_by_status(API_ERROR_STATUSES)

    async def get(
        self, path: str, deadline: Deadline, stats: RequestStats, params: Params | None = None
    ) -> Any:
        """GET with a valid token (renewed once on 401), retried by the core's policy."""
        try:
            return await self._http.get_json(
                path, deadline, params=params, auth=_Bearer(self, stats), stats=stats
            )
        except HttpError as exc:
            raise source_error(exc) from None

    async def paged(
        self, path: str, deadline: Deadline, stats: RequestStats, params: Params | None = None
    ) -> list[dict[str, Any]]:
        """Read every page: ``skip`` advances by what came back until ``total`` is reached."""
        out: list[dict[str, Any]] = []
        limit = self.source.page_size
        skip = 0
        for _ in range(_MAX_PAGES):
            body = await self.get(path, deadline, stats, {**(params or {}), "skip": skip, "limit": limit})
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise SourceError(Reason.MALFORMED, f"{path}: no 'data' list in the answer")
            out.extend(item for item in data if isinstance(item, dict))
            skip += len(data)
            pagination = body.get("pagination")
            total = pagination.get("total") if isinstance(pagination, dict) else None
            if not data:
                break
            if isinstance(total, int):
                if skip >= total:
                    break
            elif len(data) < limit:
                break
        else:
            log.warning("paging stopped", extra={"source": self.source.name, "path": path})
        return out

    # --- tokens ----------------------------------------------------------------------------

    def invalidate(self, token: str | None) -> None:
        if self._tokens is not None and self._tokens.access == token:
            self._tokens.access = None

    async def access_token(self, deadline: Deadline, stats: RequestStats) -> str:
        """A valid access token: held, refreshed, or a new login; one grant at a time."""
        try:
            # Waiting for another call's grant counts against this call's deadline.
            async with asyncio.timeout(deadline.remaining()):
                await self._token_lock.acquire()
        except TimeoutError:
            raise SourceError(Reason.DEADLINE, "deadline reached waiting for a token") from None
        try:
            t = self._tokens
            if t is not None and t.access and time.monotonic() < t.expires_at:
                return t.access
            if t is not None and t.refresh:
                try:
                    return await self._grant(
                        {"grant_type": "refresh_token", "refresh_token": t.refresh}, deadline, stats
                    )
                except SourceError as exc:
                    if exc.reason not in (Reason.AUTH, Reason.HTTP_ERROR):
                        raise
                    log.info("refresh token refused, logging in again", extra={"source": self.source.name})
            return await self._grant(
                {"grant_type": "password", "username": self._username, "password": self._password.reveal()},
                deadline,
                stats,
            )
        finally:
            self._token_lock.release()

    async def _grant(self, form: dict[str, str], deadline: Deadline, stats: RequestStats) -> str:
        self._tokens = None  # a refresh token is spent once sent
        grant = form["grant_type"]
        try:
            resp = await self._http.send("POST", TOKEN_PATH, deadline, form=form, stats=stats)
        except HttpError as exc:
            if exc.status in (400, 401, 403):
                raise SourceError(
                    Reason.AUTH, f"{grant} grant refused: HTTP {exc.status} {exc.code}"
                ) from None
            raise source_error(exc) from None
        try:
            body = resp.json()
        except ValueError:
            raise SourceError(Reason.MALFORMED, f"{TOKEN_PATH}: answer is not JSON") from None
        access = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(access, str) or not access:
            raise SourceError(Reason.MALFORMED, "token answer without access_token")
        refresh = body.get("refresh_token")
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 900.0
        self._tokens = _Tokens(
            access=access,
            refresh=refresh if isinstance(refresh, str) and refresh else None,
            expires_at=time.monotonic() + max(lifetime - _TOKEN_SLACK, 1.0),
        )
        log.debug("token granted", extra={"source": self.source.name, "grant": grant})
        return access
