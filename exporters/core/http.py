"""One HTTP JSON client for the REST sources (Veeam, Graph, the patch RMMs).

What every call gets, whichever exporter makes it:

- a deadline: each attempt is bounded by ``min(request_timeout, deadline.remaining())`` for
  connect, read, write and pool, and the whole attempt by the same figure, so a server that
  accepts and never answers (or trickles bytes) costs at most the deadline;
- one retry policy: network errors, timeouts and 5xx are retried with a doubling backoff;
  429 and 5xx honour ``Retry-After`` (seconds or an HTTP date) when the wait fits in the
  deadline, and fail at once otherwise;
- a bearer-token hook: the token is asked for before each attempt, and a 401 invalidates it
  and retries once with a fresh one (token grants themselves go through :meth:`send` without
  the hook, so a throttled token endpoint is waited out exactly as a data call is);
- bounded failure reasons (:class:`Failure`) and request counts (:class:`RequestStats`).

A failed call raises :class:`HttpError`; its ``detail`` names the path and status, never a
token, a query string or a response body::

    >>> str(HttpError(Failure.THROTTLED, "HTTP 429 on /api/v1/jobs/states", status=429))
    'throttled: HTTP 429 on /api/v1/jobs/states'
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import httpx

from .deadline import Deadline

log = logging.getLogger("mspwatch.http")

Sleep = Callable[[float], Awaitable[None]]
# Query values: a list goes out as a repeated parameter (an API array).
Params = Mapping[str, str | int | float | list[str]]
# Below this much time left an attempt cannot complete: fail as ``deadline`` instead of sending.
MIN_ATTEMPT = 0.02


class Failure(StrEnum):
    """Why a call failed: one bounded value, safe for logs and labels."""

    UNREACHABLE = "unreachable"  # connection refused or reset, no route, name does not resolve
    TIMEOUT = "timeout"  # no answer within request_timeout (the deadline was still ahead)
    DEADLINE = "deadline"  # the caller's deadline ran out before an answer
    TLS = "tls"  # handshake or certificate verification failed (not retried)
    THROTTLED = "throttled"  # 429, and Retry-After lies beyond the deadline or retries ran out
    UNAVAILABLE = "unavailable"  # 5xx after the retries (or Retry-After beyond the deadline)
    AUTH = "auth"  # 401 (after one token renewal)
    FORBIDDEN = "forbidden"  # 403
    PROTOCOL = "protocol"  # another status we did not ask for (other 4xx, 3xx)
    MALFORMED = "malformed"  # a 2xx whose body is not JSON (or not the documented shape)


class HttpError(Exception):
    """A failed call. ``detail`` is for logs: path and status, never a secret or a body."""

    def __init__(
        self,
        reason: Failure,
        detail: str,
        *,
        status: int | None = None,
        code: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status
        self.code = code  # the API's own error code (``errorCode``, ``error.code``), bounded
        self.retry_after = retry_after  # seconds, from the last answer's Retry-After


@dataclass
class RequestStats:
    """Request counts: a client's since start, or one scrape's (the caller decides).

    ``by_status`` counts answers by HTTP status, ``"error"`` for no answer at all.

    >>> s = RequestStats()
    >>> s.record(429); s.record(None); s.record(200)
    >>> (s.requests, s.throttled, dict(s.by_status))
    (3, 1, {'429': 1, 'error': 1, '200': 1})
    """

    requests: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    retries: int = 0  # attempts repeated (after a 401, 429, 5xx, timeout or network error)
    throttled: int = 0  # 429 answers
    restarts: int = 0  # paged listings restarted from the first page (expired page token)

    def record(self, status: int | None) -> None:
        """Count one attempt and its answer (``None``: no answer)."""
        self.requests += 1
        self.by_status["error" if status is None else str(status)] += 1
        if status == 429:
            self.throttled += 1

    def errors_by_status(self, statuses: Iterable[str]) -> dict[str, int]:
        """HTTP error answers (>= 400) for ``statuses``, the rest summed as ``"other"``.

        >>> s = RequestStats(by_status=Counter({"200": 5, "401": 1, "418": 2, "error": 3}))
        >>> s.errors_by_status(["401", "500"])
        {'401': 1, '500': 0, 'other': 2}
        """
        listed = list(statuses)
        out = {s: self.by_status.get(s, 0) for s in listed}
        out["other"] = sum(
            n for s, n in self.by_status.items() if s.isdigit() and int(s) >= 400 and s not in listed
        )
        return out


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before repeating an attempt.

    >>> [RetryPolicy().backoff_for(n) for n in range(6)]
    [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    """

    max_retries: int = 2  # repeats after a timeout, network error, 429 or 5xx (a 401 renewal aside)
    backoff: float = 0.25  # the first wait when the server gave no Retry-After, then doubled
    max_backoff: float = 4.0

    def backoff_for(self, retry: int) -> float:
        return min(self.backoff * 2.0**retry, self.max_backoff)


class TokenSource(Protocol):
    """The auth hook: a bearer token for each attempt; forgotten when the server says 401."""

    async def token(self, deadline: Deadline) -> str: ...

    def invalidate(self) -> None: ...


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta seconds or an HTTP date; else ``None``.

    >>> retry_after_seconds("7"), retry_after_seconds("1.5"), retry_after_seconds("soon")
    (7.0, 1.5, None)
    >>> retry_after_seconds("Mon, 02 Nov 2026 07:55:10 GMT", now=1_793_606_100.0)
    10.0
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_code(response: httpx.Response) -> str:
    """The API's documented error code, bounded; ``""`` if there is none.

    Veeam writes ``{"errorCode": ..}``, Graph ``{"error": {"code": ..}}``, OAuth2 token
    endpoints ``{"error": "invalid_grant"}``. Messages are never read: they may echo input.
    """
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(body, dict):
        return ""
    code: object = body.get("errorCode")
    if code is None:
        err = body.get("error")
        code = err.get("code") if isinstance(err, dict) else err
    if not isinstance(code, str) or not code.strip() or len(code) > 64:
        return ""
    return code.strip()


def decode_json(response: httpx.Response, path: str) -> Any:
    """The body as JSON, or :class:`HttpError` ``malformed``."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise HttpError(
            Failure.MALFORMED, f"{path}: answer is not JSON", status=response.status_code
        ) from None


def _is_tls_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLError):
            return True
        cur = cur.__cause__ or cur.__context__
    text = str(exc)
    return "SSL" in text or "CERTIFICATE" in text.upper()


def _cause(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).replace("\n", " ")[:200]


class JsonClient:
    """Deadline-bound, retrying JSON calls over one httpx client.

    ``stats`` counts every attempt since the client was made; a call's own ``stats``
    argument (for example one scrape's) is counted as well. ``http`` may be shared by many
    JsonClients (one pool for every tenant): :meth:`aclose` closes it only when ``owns_http``.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        request_timeout: float,
        policy: RetryPolicy | None = None,
        stats: RequestStats | None = None,
        sleep: Sleep = asyncio.sleep,
        owns_http: bool = False,
        name: str = "",
    ) -> None:
        self.http = http
        self.request_timeout = request_timeout
        self.policy = policy if policy is not None else RetryPolicy()
        self.stats = stats if stats is not None else RequestStats()
        self._sleep = sleep
        self._owns_http = owns_http
        self._name = name  # for log lines: the source or tenant

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def get_json(
        self,
        url: str,
        deadline: Deadline,
        *,
        params: Params | None = None,
        auth: TokenSource | None = None,
        stats: RequestStats | None = None,
    ) -> Any:
        """GET ``url`` and decode the JSON answer."""
        response = await self.send("GET", url, deadline, params=params, auth=auth, stats=stats)
        return decode_json(response, response.url.path)

    async def send(
        self,
        method: str,
        url: str,
        deadline: Deadline,
        *,
        params: Params | None = None,
        form: Mapping[str, str] | None = None,
        auth: TokenSource | None = None,
        stats: RequestStats | None = None,
    ) -> httpx.Response:
        """One call with the retry policy; returns a 2xx answer or raises :class:`HttpError`."""
        path = httpx.URL(url).path  # for messages: no query string, no host
        policy = self.policy
        retries = 0
        renewed = False
        while True:
            if deadline.remaining() <= MIN_ATTEMPT:
                raise HttpError(Failure.DEADLINE, f"deadline reached before {method} {path}")
            headers: dict[str, str] = {}
            if auth is not None:
                headers["authorization"] = f"Bearer {await auth.token(deadline)}"
            failure, wait, response = await self._attempt(method, url, path, deadline, params, form, headers)
            self._record(response.status_code if response is not None else None, stats)
            if response is not None:
                status = response.status_code
                if status < 300:
                    return response
                code = error_code(response)
                wait = retry_after_seconds(response.headers.get("retry-after"))
                detail = f"HTTP {status} on {path}" + (f" ({code})" if code else "")
                if status == 401 and auth is not None and not renewed:
                    # A token the server no longer takes (expired on its clock, revoked): renew once.
                    auth.invalidate()
                    renewed = True
                    self._count_retry(stats)
                    continue
                if status == 429:
                    failure = HttpError(Failure.THROTTLED, detail, status=status, code=code, retry_after=wait)
                elif status >= 500:
                    failure = HttpError(
                        Failure.UNAVAILABLE, detail, status=status, code=code, retry_after=wait
                    )
                else:
                    reason = {401: Failure.AUTH, 403: Failure.FORBIDDEN}.get(status, Failure.PROTOCOL)
                    raise HttpError(reason, detail, status=status, code=code)
            assert failure is not None
            if failure.reason in (Failure.TLS, Failure.DEADLINE) or retries >= policy.max_retries:
                raise failure
            delay = wait if wait is not None else policy.backoff_for(retries)
            if delay + MIN_ATTEMPT >= deadline.remaining():
                # The wait would overrun the deadline: fail now with the reason, not "deadline".
                raise failure
            retries += 1
            self._count_retry(stats)
            log.info(
                "retrying",
                extra={"source": self._name, "path": path, "reason": str(failure.reason), "wait": delay},
            )
            await self._sleep(delay)

    async def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        deadline: Deadline,
        params: Params | None,
        form: Mapping[str, str] | None,
        headers: dict[str, str],
    ) -> tuple[HttpError | None, float | None, httpx.Response | None]:
        """One attempt: the answer, or the failure it met (retryable or not)."""
        budget = min(self.request_timeout, deadline.remaining())
        try:
            # httpx bounds each phase; the outer timeout bounds the sum (a trickling server).
            async with asyncio.timeout(budget):
                response = await self.http.request(
                    method,
                    url,
                    params=params,
                    data=form,
                    headers=headers,
                    timeout=httpx.Timeout(budget),
                )
        except (TimeoutError, httpx.TimeoutException):
            if deadline.remaining() <= MIN_ATTEMPT:
                return HttpError(Failure.DEADLINE, f"no answer to {path} before the deadline"), None, None
            return HttpError(Failure.TIMEOUT, f"no answer to {path} within {budget:.1f}s"), None, None
        except httpx.ConnectError as exc:
            if _is_tls_error(exc):
                return HttpError(Failure.TLS, f"TLS handshake failed: {_cause(exc)}"), None, None
            return HttpError(Failure.UNREACHABLE, f"cannot connect: {_cause(exc)}"), None, None
        except httpx.TransportError as exc:
            return HttpError(Failure.UNREACHABLE, f"{type(exc).__name__} on {path}"), None, None
        return None, None, response

    def _record(self, status: int | None, stats: RequestStats | None) -> None:
        self.stats.record(status)
        if stats is not None and stats is not self.stats:
            stats.record(status)

    def _count_retry(self, stats: RequestStats | None) -> None:
        self.stats.retries += 1
        if stats is not None and stats is not self.stats:
            stats.retries += 1
