"""The signals a tenant is read for; each is refreshed on its own interval."""

from __future__ import annotations

from typing import Literal

Signal = Literal["health", "issues", "licences", "secure_score", "mfa"]
SIGNALS: tuple[Signal, ...] = ("health", "issues", "licences", "secure_score", "mfa")
