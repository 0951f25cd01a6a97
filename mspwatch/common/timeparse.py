"""Timestamps as sources write them (Veeam, restic, Graph, drop files): ISO 8601 with up to 9
fractional digits and any offset, or Unix seconds. The one time parser of every exporter."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(raw: object) -> float | None:
    """Return Unix seconds, or ``None`` for an absent or unparsable value.

    A time without an offset is taken as UTC.

    >>> parse_time("2026-01-15T06:00:00.1234567+01:00")
    1768453200.123456
    >>> parse_time(1768456800), parse_time(""), parse_time("yesterday")
    (1768456800.0, None, None)
    """
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        return float(raw) if raw > 0 else None
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = _FRACTION.sub(r"\1", raw.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    ts = dt.timestamp()
    # .NET's DateTime.MinValue (0001-01-01) is how some APIs say "never".
    return ts if ts > 0 else None


def format_time(ts: float) -> str:
    """Unix seconds as ISO 8601 UTC with a ``Z``, as filters expect."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
