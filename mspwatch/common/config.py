"""Strict YAML config loading shared by every exporter.

Unknown keys are errors and every message is one line naming the file and the field::

    inventory.yml: customers.0.sites.0.devices.2.adress: unknown field
    snmp.yml: walk.timeout: must be a duration such as 500ms, 30s, 1h30m or 7d, not a boolean
    snmp.yml: line 7: duplicate key 'walk' (first on line 2)
"""

from __future__ import annotations

import codecs
import math
import os
import re
import ssl
import stat
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, GetCoreSchemaHandler, ValidationError
from pydantic_core import core_schema

T = TypeVar("T", bound=BaseModel)

MAX_FILE_BYTES = 16 * 1024 * 1024  # configs, inventories, profiles, secrets: far below this
MAX_NESTING = 64  # YAML levels; our deepest schema is under ten
MAX_NODES = 1_000_000  # YAML nodes once aliases are expanded (a "billion laughs" file is refused)


class ConfigError(Exception):
    """A config file is missing, unparsable or invalid; the message is safe to print."""


def _strict_scalars(node: Any) -> None:
    """Make the int, float and bool schemas strict and keep booleans out of int literals."""
    if isinstance(node, list):
        for item in node:
            _strict_scalars(item)
        return
    if not isinstance(node, dict):
        return
    for value in list(node.values()):
        _strict_scalars(value)
    kind = node.get("type")
    if kind in ("int", "float", "bool"):
        node["strict"] = True
    elif kind == "literal" and any(type(v) is int for v in node.get("expected", ())):
        literal = dict(node)
        node.clear()  # replaced in place: the parent schema holds this very dict
        node.update(core_schema.no_info_before_validator_function(_not_a_boolean, literal))


def yaml_repr(value: object) -> str:
    """A value as the user wrote it in YAML, cut short for one-line messages.

    >>> yaml_repr(True), yaml_repr(None), yaml_repr("x" * 50)
    ('true', 'null', "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'")
    """
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, str) and len(value) > 40:
        return repr(value[:40] + "...")
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not the boolean {str(value).lower()}")
    return value


class StrictModel(BaseModel):
    """Base for every config model: unknown keys rejected, values immutable, YAML types kept.

    pydantic's lax mode would read ``true`` as 1 and ``"30"`` as 30 and accept ``true`` for
    ``Literal[1, 2, 3]``; here a number field takes a YAML number, a boolean field a YAML
    boolean, and a literal choice of numbers refuses booleans. Paths, patterns and the other
    types parsed from strings keep their string input.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, use_attribute_docstrings=True
    )

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        _strict_scalars(schema)
        return schema


# Prometheus's duration syntax (units in this order, integers), and a single decimal value
# with a unit ("1.5s"), which mspwatch has always read.
_PROM_DURATION = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?"
)
_PROM_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_DECIMAL_DURATION = re.compile(r"([0-9]{1,15}\.[0-9]{1,9})(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
MAX_DURATION = 365 * 86400.0  # 1y: no interval or timeout of ours is longer
_WANT = "a duration such as 500ms, 30s, 1h30m or 7d"


def parse_duration(value: object) -> float:
    """Seconds from a Prometheus duration (``500ms``, ``30s``, ``1h30m``, ``1d12h``) or a number.

    >>> parse_duration("1h30m"), parse_duration("500ms"), parse_duration(2)
    (5400.0, 0.5, 2.0)
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be {_WANT}, got {yaml_repr(value)}")
    if isinstance(value, str):
        text = value.strip()
        if text == "0":  # Prometheus's spelling of zero
            seconds: float = 0.0
        elif m := _DECIMAL_DURATION.fullmatch(text):
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
        elif text and (m := _PROM_DURATION.fullmatch(text)):
            # Exact integer arithmetic first: a 400-digit count must not overflow a float.
            ms = sum(int(g) * round(u * 1000) for g, u in zip(m.groups(), _PROM_UNITS, strict=True) if g)
            seconds = ms / 1000 if ms <= MAX_DURATION * 1000 else math.inf
        else:
            raise ValueError(f"invalid duration {yaml_repr(value)}, want {_WANT}")
    elif isinstance(value, int):
        seconds = float(value) if value <= MAX_DURATION else math.inf
    else:
        seconds = value
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError("must be a positive duration")
    if seconds > MAX_DURATION:
        raise ValueError("must be at most 1y (365d)")
    return seconds


# A positive duration in seconds (at most a year), written as a number or a Prometheus duration.
Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


def _user_path(loc: tuple[int | str, ...], data: Any, last_is_key: bool) -> str:
    """The part of a pydantic location the user wrote, without pydantic's schema steps.

    pydantic puts union members and validator names into locations
    (``allowed_targets.0.lax-or-strict[...]``, ``backup_sources.0.veeam.url``). A step is
    kept when it indexes the input data, or names a missing field of a mapping.
    """
    parts: list[str] = []
    for i, step in enumerate(loc):
        indexes_data = (isinstance(data, dict) and step in data) or (
            isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data)
        )
        if indexes_data:
            data = data[step]
        elif i == len(loc) - 1 and last_is_key and isinstance(data, dict):
            pass  # the name of a missing field
        else:
            continue
        parts.append(str(step))
    return ".".join(parts) or "(top level)"


def format_validation_error(source: str, exc: ValidationError, data: Any = None) -> str:
    """Render pydantic errors as ``file: field.path: message`` lines, without input values."""
    lines: list[str] = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        msg = msg.removeprefix("Value error, ")
        where = _user_path(tuple(err["loc"]), data, last_is_key=err["type"] == "missing")
        line = f"{source}: {where}: {msg}"
        if line not in lines:  # one per union member otherwise
            lines.append(line)
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
        raise ConfigError(format_validation_error(source, exc, data)) from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None


def read_file(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """Read a regular file of at most ``limit`` bytes; anything else raises :class:`OSError`.

    A FIFO, a device or a directory is refused without waiting for a writer: the file is
    opened non-blocking and checked before a byte is read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(0, f"larger than {limit // (1024 * 1024)} MiB")
    return data


def decode_text(data: bytes) -> str:
    """UTF-8 text (a BOM is allowed); otherwise a :class:`ValueError` naming the line.

    >>> decode_text(b"a: 1\\nb: \\xff\\n")
    Traceback (most recent call last):
    ValueError: line 2: not UTF-8 text (byte 0xff)
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError("UTF-16 text, save the file as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, deep nesting and alias bombs."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_NESTING} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            _check_size(node)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *defaults" then overriding a key is what merge keys are for
            key = self.construct_object(key_node, deep=True)
            try:
                mark = first.setdefault(key, key_node.start_mark)
            except TypeError:
                continue  # an unhashable key: SafeLoader reports it below
            if mark is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {mark.line + 1})", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) reads 1e-3 as a string; strict number fields would then refuse what a
# user wrote as a number. YAML 1.2 reads it as a float, and so do we.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _check_size(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand to more than MAX_NODES nodes, or loop."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in visiting:
            raise yaml.composer.ComposerError(None, None, "an alias refers to itself", node.start_mark)
        visiting.add(id(node))
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(n) for n in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        visiting.discard(id(node))
        if total > MAX_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"more than {MAX_NODES} values once aliases are expanded", node.start_mark
            )
        sizes[id(node)] = total
        return total

    size(root)


def load_yaml(path: Path) -> Any:
    """Read one YAML document; errors are one line naming the file (and the line)."""
    try:
        text = decode_text(read_file(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 -- _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}:{_yaml_problem(exc, text)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return f" line {line}: unacceptable character #x{exc.character:04x}"
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or "invalid YAML"
    return f"{where}: {problem}"


def load_model(model: type[T], path: Path) -> T:
    """Load and validate one YAML config file."""
    return parse_model(model, load_yaml(path), str(path), path.parent)


def check_ca_file(path: Path, where: str) -> None:
    """Load a PEM CA bundle now, so a bad one fails ``--config.check``, not every scrape."""
    try:
        read_file(path)  # a FIFO or a directory is refused here, before OpenSSL blocks on it
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError:  # a subclass of OSError: first
        raise ConfigError(f"{where}: {path} is not a PEM CA bundle") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
