"""Strict YAML config loading shared by every exporter.

Unknown keys are errors and every message names the file and the field::

    inventory.yml: customers.0.sites.0.devices.2.adress: unknown field
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

T = TypeVar("T", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config model: unknown keys rejected, values immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, use_attribute_docstrings=True
    )


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: object) -> object:
    """Accept Prometheus-style durations (``500ms``, ``30s``, ``5m``, ``26h``, ``7d``) or seconds."""
    if isinstance(value, str):
        m = _DURATION.match(value.strip())
        if not m:
            raise ValueError(f"invalid duration {value!r}, want e.g. 500ms, 30s, 5m, 26h, 7d")
        return float(m.group(1)) * _UNITS[m.group(2)]
    return value


# A positive duration in seconds, written as a number or a Prometheus-style string.
Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class ConfigError(Exception):
    """A config file is missing, unparsable or invalid; the message is safe to print."""


def _format_loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def format_validation_error(source: str, exc: ValidationError) -> str:
    """Render pydantic errors as ``file: field.path: message`` lines, without input values."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        msg = msg.removeprefix("Value error, ")
        lines.append(f"{source}: {_format_loc(tuple(err['loc']))}: {msg}")
    return "\n".join(lines)


def parse_model(model: type[T], data: Any, source: str, base_dir: Path | None = None) -> T:
    """Validate already-parsed data against ``model``, raising :class:`ConfigError`.

    ``base_dir`` is where relative secret files are looked up (the config file's folder).
    """
    if data is None:
        data = {}
    try:
        return model.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_yaml(path: Path) -> Any:
    """Read one YAML document; errors name the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: {problem}") from None


def load_model(model: type[T], path: Path) -> T:
    """Load and validate one YAML config file."""
    return parse_model(model, load_yaml(path), str(path), path.parent)
