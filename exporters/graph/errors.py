"""Graph failures with a bounded reason, safe to log and to put in a label."""

from __future__ import annotations

from typing import Literal

Reason = Literal[
    "auth",  # the token endpoint refused the app (wrong secret, unknown tenant) or Graph said 401
    "forbidden",  # Graph said 403: the app lacks consent or a permission in this tenant
    "throttled",  # 429 whose Retry-After lies beyond the deadline, or too many 429s
    "unavailable",  # 5xx after the retries
    "network",  # connection refused, TLS failure, reset, DNS
    "protocol",  # an answer we cannot use: not JSON, unexpected shape, other 4xx
    "deadline",  # the refresh ran out of time
]
REASONS: tuple[Reason, ...] = (
    "auth",
    "forbidden",
    "throttled",
    "unavailable",
    "network",
    "protocol",
    "deadline",
)


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
