"""The installed mspwatch version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def mspwatch_version() -> str:
    """The installed distribution's version, or a marker when run from a source tree."""
    try:
        return version("mspwatch")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0+unknown"
