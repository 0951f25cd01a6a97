"""A small Prometheus HTTP API client for the report: instant and range queries.

Range queries are cut into chunks of at most 10,000 points per series (Prometheus refuses
more than 11,000), and every error is one line naming the server::

    >>> Prometheus("http://127.0.0.1:1").instant("vector(1)", 0)
    Traceback (most recent call last):
    ...
    mspwatch.reports.query.QueryError: Prometheus at http://127.0.0.1:1 is unreachable (ConnectError)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

MAX_POINTS = 10_000  # per series and request; the server's limit is 11,000
Labels = tuple[tuple[str, str], ...]


class QueryError(Exception):
    """A query failed; the message is one line fit for the terminal."""


class NoDataError(QueryError):
    """The server answered, but holds nothing for a customer in the month."""


@dataclass(frozen=True)
class Sample:
    labels: Labels
    value: float

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, "")


@dataclass(frozen=True)
class RangeSeries:
    labels: Labels
    times: npt.NDArray[np.int64]  # Unix seconds, ascending
    values: npt.NDArray[np.float64]

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, "")


def _labels(metric: dict[str, str]) -> Labels:
    return tuple(sorted(metric.items()))


class Prometheus:
    """Queries one Prometheus-compatible server (Prometheus, VictoriaMetrics)."""

    def __init__(self, url: str, *, timeout: float = 60.0, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        # One bounded timeout for connect, read and write: a server that accepts and never
        # answers costs at most this long per request.
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout))
        self.requests = 0
        self._lock = threading.Lock()  # the report asks up to two queries at once

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, str]) -> Any:
        with self._lock:
            self.requests += 1
        try:
            resp = self._client.post(f"{self.url}{path}", data=params)
        except httpx.TimeoutException:
            raise QueryError(f"Prometheus at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise QueryError(f"Prometheus at {self.url} is unreachable ({type(exc).__name__})") from None
        try:
            body = resp.json()
        except ValueError:
            raise QueryError(
                f"Prometheus at {self.url} answered HTTP {resp.status_code} without JSON"
            ) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = str(body.get("error", "")) if isinstance(body, dict) else ""
            first = error.splitlines()[0][:300] if error else f"HTTP {resp.status_code}"
            raise QueryError(f"Prometheus at {self.url} refused the query: {first}")
        return body.get("data", {})

    def instant(self, expr: str, at: int) -> list[Sample]:
        data = self._get("/api/v1/query", {"query": expr, "time": str(at)})
        if data.get("resultType") != "vector":
            raise QueryError(
                f"Prometheus at {self.url} answered a {data.get('resultType')} to an instant query"
            )
        return [Sample(_labels(r["metric"]), float(r["value"][1])) for r in data.get("result", [])]

    def series(self, match: str, start: int, end: int) -> list[Labels]:
        """The label sets of the series ``match`` selects that may have samples in
        ``[start, end]``, from the index and chunk ranges (no sample is read). A superset at
        the edges: Prometheus answers per chunk (about two hours of one-minute samples; a
        series that starts within a block is not listed before its first chunk),
        VictoriaMetrics per day."""
        data = self._get("/api/v1/series", {"match[]": match, "start": str(start), "end": str(end)})
        if not isinstance(data, list):
            raise QueryError(f"Prometheus at {self.url} answered a series list that is not a list")
        return sorted({_labels(m) for m in data if isinstance(m, dict)})

    def range(self, expr: str, start: int, end: int, step: int) -> list[RangeSeries]:
        """Points at ``start, start+step, ... <= end``, fetched in chunks; series merged."""
        parts: dict[Labels, list[tuple[list[int], list[float]]]] = {}
        chunk = step * MAX_POINTS
        lo = start
        while lo <= end:
            hi = min(end, lo + chunk - step)
            data = self._get(
                "/api/v1/query_range", {"query": expr, "start": str(lo), "end": str(hi), "step": str(step)}
            )
            for r in data.get("result", []):
                ts = [int(float(t)) for t, _ in r["values"]]
                vs = [float(v) for _, v in r["values"]]
                parts.setdefault(_labels(r["metric"]), []).append((ts, vs))
            lo = hi + step
        out = []
        for labels, chunks in sorted(parts.items()):
            times = np.array([t for ts, _ in chunks for t in ts], dtype=np.int64)
            values = np.array([v for _, vs in chunks for v in vs], dtype=np.float64)
            out.append(RangeSeries(labels, times, values))
        return out


def quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
