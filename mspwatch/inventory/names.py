"""Names the inventory uses as label values, file names and Alertmanager keys."""

from __future__ import annotations

import re
from typing import Annotated, Protocol, TypeVar

from pydantic import AfterValidator

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lowercase letters, digits, '-' or '_' "
            "(at most 63, e.g. acme-dental)"
        )
    return value


def _source_name(value: str) -> str:
    if not _SOURCE.match(value):
        raise ValueError(
            "must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


# Label values that are safe in file names, URLs and PromQL regexes alike.
Slug = Annotated[str, AfterValidator(_slug)]
# The target of a multi-target exporter (``?target=acme-vbr``): a slug that may hold dots.
SourceName = Annotated[str, AfterValidator(_source_name)]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


def no_duplicates(items: list[N], what: str) -> list[N]:
    """Refuse two items of one list with the same name.

    >>> from types import SimpleNamespace as O
    >>> no_duplicates([O(name="hq"), O(name="hq")], "site")
    Traceback (most recent call last):
    ...
    ValueError: duplicate site name 'hq'
    """
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"duplicate {what} name {item.name!r}")
        seen.add(item.name)
    return items
