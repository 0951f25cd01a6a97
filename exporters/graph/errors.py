"""Graph failures with a bounded reason, safe to log and to put in a label."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a Graph read failed: the ``reason`` of ``m365_scrape_error``."""

    AUTH = "auth"  # the token endpoint refused the app (wrong secret, unknown tenant) or Graph said 401
    FORBIDDEN = "forbidden"  # Graph said 403: the app lacks consent or a permission in this tenant
    THROTTLED = "throttled"  # 429 whose Retry-After lies beyond the deadline, or too many 429s
    UNAVAILABLE = "unavailable"  # 5xx after the retries
    NETWORK = "network"  # connection refused, TLS failure, reset, DNS
    PROTOCOL = "protocol"  # an answer we cannot use: not JSON, unexpected shape, other 4xx
    DEADLINE = "deadline"  # the refresh ran out of time
    INTERNAL = "internal"  # the scrape or refresh crashed (a bug): see the exporter's log


class GraphError(Exception):
    """A failed Graph call. ``detail`` is for logs: never a token, secret or response body."""

    def __init__(
        self,
        reason: Reason,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail
        self.status = status
        self.code = code
        self.retry_after = retry_after
