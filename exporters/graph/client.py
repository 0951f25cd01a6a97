"""Microsoft Graph REST reads: paging, throttling, retries, all bounded by a deadline.

- ``@odata.nextLink`` is followed exactly as given (an absolute URL; its ``$skiptoken`` is
  opaque and never rebuilt);
- 429 waits for ``Retry-After`` when the deadline allows it, else fails as ``throttled``
  and tells the caller when to come back;
- 5xx and network errors are retried with a short backoff (``Retry-After`` honoured);
- an expired skip token (``Directory_ExpiredPageToken``) restarts the listing from the
  first page, a bounded number of times;
- every request is bounded by the request timeout and by the caller's deadline.

Tokens and response bodies never reach a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import builtins
import email.utils
import json
import logging
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import httpx

from mspwatch.exporters.core.deadline import Deadline

from .auth import TokenProvider
from .config import GraphOptions
from .errors import GraphError, Reason

log = logging.getLogger("mspwatch.graph")

Record = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]

# Error codes Graph uses when a page token can no longer be used.
EXPIRED_PAGE_TOKEN_CODES = frozenset(
    {"directory_expiredpagetoken", "expiredpagetoken", "skiptokenexpired", "syncstatenotfound"}
)
# Status codes pre-created on the request counter (zero rather than nothing).
COMMON_STATUSES = ("200", "400", "401", "403", "404", "429", "500", "503", "error")


@dataclass
class RequestStats:
    """Cumulative request counts for one tenant (kept for the life of the exporter)."""

    by_status: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    retries: int = 0
    restarts: int = 0

    def __post_init__(self) -> None:
        for status in COMMON_STATUSES:
            self.by_status.setdefault(status, 0)


class Graph(Protocol):
    """What a collector needs from Graph; tests put a recording fake behind it."""

    async def list(
        self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None
    ) -> list[Record]:
        """GET a collection and every following page."""
        ...

    async def get(self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None) -> Record:
        """GET one object (or one page, no paging)."""
        ...


class _ExpiredPageToken(Exception):
    pass


def make_http_client(options: GraphOptions, max_connections: int = 64) -> httpx.AsyncClient:
    """One pooled HTTP client shared by every tenant (size the pool to the concurrency)."""
    verify: ssl.SSLContext | bool = True
    if options.ca_file is not None:
        # The bundle replaces the system's CAs, as it does for msal's requests session.
        verify = ssl.create_default_context(cafile=str(options.ca_file))
    return httpx.AsyncClient(
        verify=verify,
        timeout=options.request_timeout,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections // 2),
        headers={"Accept": "application/json", "User-Agent": "mspwatch"},
    )


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse ``Retry-After``: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, str) else ""
    return ""


class GraphClient:
    """Read-only Graph calls for one tenant."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: TokenProvider,
        options: GraphOptions,
        stats: RequestStats | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self._tokens = tokens
        self._options = options
        self.stats = stats if stats is not None else RequestStats()
        self._sleep = sleep
        self._base = options.url + "/v1.0"

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        url = self._base + "/" + path.lstrip("/")
        if params:
            url += "?" + urlencode(dict(params), safe="$,")
        return url

    async def list(
        self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None
    ) -> list[Record]:
        first = self.url(path, params)
        for attempt in range(self._options.max_restarts + 1):
            try:
                return await self._pages(first, deadline)
            except _ExpiredPageToken:
                self.stats.restarts += 1
                log.info(
                    "page token expired, restarting from the first page",
                    extra={"path": path, "attempt": attempt + 1},
                )
        raise GraphError(Reason.PROTOCOL, f"{path}: page token kept expiring")

    async def get(self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None) -> Record:
        body = await self._get(self.url(path, params), deadline, paging=False)
        return body

    async def _pages(self, first: str, deadline: Deadline) -> builtins.list[Record]:
        records: builtins.list[Record] = []
        url: str | None = first
        pages = 0
        origin = urlsplit(first)
        while url is not None:
            pages += 1
            if pages > self._options.max_pages:
                raise GraphError(Reason.PROTOCOL, f"more than {self._options.max_pages} pages")
            body = await self._get(url, deadline, paging=pages > 1)
            value = body.get("value")
            if not isinstance(value, list):
                raise GraphError(Reason.PROTOCOL, "collection without a 'value' list")
            records.extend(v for v in value if isinstance(v, dict))
            next_link = body.get("@odata.nextLink")
            if next_link is None:
                url = None
            elif isinstance(next_link, str):
                # Follow as given, but never send the token to another host.
                nxt = urlsplit(next_link)
                if (nxt.scheme, nxt.netloc) != (origin.scheme, origin.netloc):
                    raise GraphError(Reason.PROTOCOL, "nextLink points to another host")
                url = next_link
            else:
                raise GraphError(Reason.PROTOCOL, "nextLink is not a string")
        return records

    async def _get(self, url: str, deadline: Deadline, *, paging: bool) -> Record:
        """One GET with retries; returns the JSON object."""
        retries = 0
        fresh_token = False
        while True:
            if deadline.expired():
                raise GraphError(Reason.DEADLINE, "refresh deadline reached")
            token = await self._tokens.token(deadline)
            wait: float | None
            try:
                async with asyncio.timeout(min(self._options.request_timeout, deadline.remaining())):
                    response = await self._http.get(url, headers={"Authorization": f"Bearer {token}"})
            except TimeoutError:
                self.stats.by_status["error"] += 1
                if deadline.expired():
                    raise GraphError(Reason.DEADLINE, "refresh deadline reached") from None
                failure = GraphError(Reason.NETWORK, "request timed out")
                wait = None
            except httpx.HTTPError as exc:
                self.stats.by_status["error"] += 1
                failure = GraphError(Reason.NETWORK, type(exc).__name__)
                wait = None
            else:
                status = response.status_code
                self.stats.by_status[str(status)] += 1
                if status == 200:
                    try:
                        body = response.json()
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        raise GraphError(Reason.PROTOCOL, "answer is not JSON", status=200) from None
                    if not isinstance(body, dict):
                        raise GraphError(Reason.PROTOCOL, "answer is not a JSON object", status=200)
                    return body
                code = _error_code(response)
                wait = retry_after_seconds(response.headers.get("retry-after"))
                if paging and status in (400, 410) and code.lower() in EXPIRED_PAGE_TOKEN_CODES:
                    raise _ExpiredPageToken()
                if status == 429:
                    self.stats.throttled += 1
                    failure = GraphError(
                        Reason.THROTTLED, "429 Too Many Requests", status=429, code=code, retry_after=wait
                    )
                    if wait is not None and wait > deadline.remaining():
                        # Waiting would overrun: give up now, the caller backs off.
                        raise failure
                elif status >= 500:
                    failure = GraphError(Reason.UNAVAILABLE, f"HTTP {status}", status=status, code=code)
                elif status == 401:
                    failure = GraphError(Reason.AUTH, f"HTTP 401 {code}".strip(), status=401, code=code)
                    if fresh_token:
                        raise failure
                    # A cached token Graph no longer takes: fetch a new one, once.
                    self._tokens.invalidate()
                    fresh_token = True
                    continue
                elif status == 403:
                    raise GraphError(Reason.FORBIDDEN, f"HTTP 403 {code}".strip(), status=403, code=code)
                else:
                    raise GraphError(
                        Reason.PROTOCOL, f"HTTP {status} {code}".strip(), status=status, code=code
                    )
            if retries >= self._options.max_retries:
                raise failure
            retries += 1
            self.stats.retries += 1
            delay = wait if wait is not None else min(0.25 * 2 ** (retries - 1), 4.0)
            if delay >= deadline.remaining():
                raise failure
            await self._sleep(delay)
