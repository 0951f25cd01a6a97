"""A secret value that never renders: not in repr, str, logs, /metrics or errors.

In YAML a secret is written one of three ways::

    password: s3cret                     # inline (discouraged outside tests)
    password: {env: VEEAM_PASSWORD}      # read from an environment variable at load time
    password: {file: /run/secrets/veeam} # read from a file (relative: to the config file)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

from .config import decode_text, read_file

REDACTED = "<secret>"


class Secret:
    """Hold a credential; only :meth:`reveal` returns the raw value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the raw value, for handing to a client library only."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("secrets cannot be pickled")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(
            _parse_secret,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda _s: REDACTED),
        )


def _parse_secret(raw: Any, info: core_schema.ValidationInfo) -> Secret:
    if isinstance(raw, Secret):
        return raw
    if isinstance(raw, str):
        if not raw:
            raise PydanticCustomError("secret_empty", "must not be empty")
        return Secret(raw)
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, ref),) = raw.items()
        if kind == "env" and isinstance(ref, str):
            value = os.environ.get(ref)
            if not value:
                raise PydanticCustomError("secret_env", "environment variable {var} is not set", {"var": ref})
            return Secret(value)
        if kind == "file" and isinstance(ref, str):
            path = Path(ref)
            base = (info.context or {}).get("base_dir")
            if not path.is_absolute() and base is not None:
                path = Path(base) / path  # relative to the config file, as Prometheus does
            try:
                value = decode_text(read_file(path)).rstrip("\r\n")
            except OSError as exc:
                raise PydanticCustomError(
                    "secret_file",
                    "cannot read secret file {path}: {reason}",
                    {"path": ref, "reason": exc.strerror or type(exc).__name__},
                ) from None
            except ValueError:  # not even the offending byte: it is part of the secret
                raise PydanticCustomError(
                    "secret_file", "secret file {path} is not UTF-8 text", {"path": ref}
                ) from None
            if not value:
                raise PydanticCustomError("secret_file", "secret file {path} is empty", {"path": ref})
            return Secret(value)
    raise PydanticCustomError("secret_type", "must be a string, {env: NAME} or {file: PATH}")
