"""Reference pages for the inventory and every config file, generated from the pydantic models.

    python -m mspwatch.refdocs            # rewrite docs/reference/*.md
    python -m mspwatch.refdocs --check    # exit 1 if a page is out of date

Each page lists every field by its YAML path with its type, default, allowed values and
description (the field's docstring or ``Field(description=...)``), then one example::

    | field | type | default | description |
    | --- | --- | --- | --- |
    | `walk.timeout` | duration | `2s` | Time to wait for one SNMP answer ... |
"""

from __future__ import annotations

import argparse
import enum
import importlib
import inspect
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from mspwatch.common.secrets import Secret

DOCS = Path(__file__).resolve().parent.parent / "docs" / "reference"


@dataclass(frozen=True)
class Page:
    """One reference page: a root model and where its example lives."""

    name: str  # file stem under docs/reference/
    title: str
    model: str  # "module:Class"
    intro: str
    example: str  # path of an example file, relative to the repository


PAGES: tuple[Page, ...] = (
    Page(
        "inventory",
        "Customer inventory (`inventory.yml`)",
        "mspwatch.inventory:Inventory",
        "What exists: customers, their sites and devices, backup sources, Microsoft 365 tenants, "
        "patch sources, contracts and maintenance windows. Read by `mspwatch targets`, every "
        "exporter, the report and the dashboards.",
        "simulators/estate/inventory.yml",
    ),
    Page(
        "snmp",
        "SNMP exporter (`snmp.yml`)",
        "mspwatch.exporters.snmp.config:SnmpConfig",
        "Credentials by name (`auths`), walk options and limits of `mspwatch snmp-exporter`.",
        "simulators/estate/snmp.yml",
    ),
    Page(
        "backup",
        "Backup exporter (`backup.yml`)",
        "mspwatch.exporters.backup.config:BackupConfig",
        "Credentials per backup source and limits of `mspwatch backup-exporter`; the sources "
        "themselves are in the inventory.",
        "simulators/estate/backup.yml",
    ),
    Page(
        "m365",
        "Microsoft 365 exporter (`m365.yml`)",
        "mspwatch.exporters.m365.config:M365Config",
        "The Graph app, refresh intervals and limits of `mspwatch m365-exporter`; the tenants "
        "are in the inventory.",
        "simulators/estate/m365.yml",
    ),
    Page(
        "patch",
        "Patch exporter (`patch.yml`)",
        "mspwatch.exporters.patch.config:PatchConfig",
        "NinjaOne API clients, Graph apps for Intune, the quality-update table and limits of "
        "`mspwatch patch-exporter`; the sources and each customer's policy are in the inventory.",
        "simulators/estate/patch.yml",
    ),
)


def _load(spec: str) -> type[BaseModel]:
    module, _, name = spec.partition(":")
    model = getattr(importlib.import_module(module), name)
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model


def _strip_annotated(tp: Any) -> Any:
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_none(tp: Any) -> bool:
    return tp is type(None)


def type_name(tp: Any) -> str:
    """A reader's name for a field type.

    >>> type_name(list[int] | None)
    'list of integer'
    >>> type_name(Literal["24x7", "business"])
    'one of `24x7`, `business`'
    """
    tp = _strip_annotated(tp)
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        parts = [type_name(a) for a in get_args(tp) if not _is_none(a)]
        return " or ".join(dict.fromkeys(parts))
    if origin is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in get_args(tp))
    if origin in (list, tuple, set, frozenset):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return "list of " + (type_name(args[0]) if args else "values")
    if origin is dict:
        key, value = get_args(tp)
        return f"map of {type_name(key)} to {type_name(value)}"
    if isinstance(tp, type):
        if issubclass(tp, BaseModel):
            return "object (below)"
        if issubclass(tp, enum.Enum):
            return "one of " + ", ".join(f"`{m.value}`" for m in tp)
        if tp is Secret:
            return "secret (`value`, `{env: NAME}` or `{file: PATH}`)"
        simple = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "path"}
        if tp in simple:
            return simple[tp]
        return tp.__name__
    return str(tp).replace("typing.", "")


def _nested_models(tp: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """The models inside a type, with the path suffix that reaches them (``[]``, ``.<key>``)."""
    tp = _strip_annotated(tp)
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in get_args(tp):
            yield from _nested_models(arg)
    elif origin in (list, tuple, set, frozenset):
        for arg in get_args(tp):
            for suffix, model in _nested_models(arg):
                yield "[]" + suffix, model
    elif origin is dict:
        for suffix, model in _nested_models(get_args(tp)[1]):
            yield ".<name>" + suffix, model
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        yield "", tp


def _is_duration(info: FieldInfo) -> bool:
    return any(getattr(getattr(m, "func", None), "__name__", "") == "parse_duration" for m in info.metadata)


def _default(info: FieldInfo, duration: bool) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, BaseModel):
        return "see below"
    if duration and isinstance(value, int | float):
        return f"`{format_duration(float(value))}`"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value in ([], {}, ""):
        return "empty"
    return f"`{value}`"


def format_duration(seconds: float) -> str:
    """Seconds as the shortest Prometheus duration.

    >>> format_duration(5400.0), format_duration(0.5), format_duration(93600.0)
    ('1h30m', '500ms', '1d2h')
    """
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out, rest = "", round(seconds)
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


def _bounds(info: FieldInfo) -> str:
    """Limits declared with ``Field(ge=..., le=..., min_length=...)``, as a reader says them."""
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "at least", "max_length": "at most"}
    out = []
    for meta in info.metadata:
        for attr, word in words.items():
            value = getattr(meta, attr, None)
            if value is not None:
                unit = " items" if "length" in attr else ""
                out.append(f"{word} {value}{unit}")
    return f" ({', '.join(out)})" if out else ""


def _description(info: FieldInfo) -> str:
    return " ".join((info.description or "").split())


def field_rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """``(path, type, default, description)`` for every field, nested models after their parent."""
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = f"{prefix}{key}"
        duration = _is_duration(info)
        kind = "duration (`30s`, `5m`, `1h30m`)" if duration else type_name(info.annotation)
        yield path, kind + _bounds(info), _default(info, duration), _description(info)
        for suffix, sub in _nested_models(info.annotation):
            nested.append((f"{path}{suffix}.", sub))
    for sub_prefix, sub in nested:
        yield from field_rows(sub, sub_prefix)


def render(page: Page, root: Path) -> str:
    """The markdown of one page."""
    model = _load(page.model)
    lines = [
        f"# {page.title}",
        "",
        "<!-- Generated by `python -m mspwatch.refdocs` from the pydantic models; do not edit. -->",
        "",
        page.intro,
        "",
        "Unknown fields are errors; every error names the file and the field. Durations are "
        "Prometheus-style (`500ms`, `30s`, `5m`, `1h30m`, `7d`).",
        "",
        "| field | type | default | description |",
        "| --- | --- | --- | --- |",
    ]
    for path, kind, default, description in field_rows(model):
        lines.append(f"| `{path}` | {kind} | {default} | {description or '-'} |")
    example = root / page.example
    lines += [
        "",
        f"## Example (`{page.example}`)",
        "",
        "```yaml",
        example.read_text(encoding="utf-8").rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(lines)


def undocumented(page: Page) -> list[str]:
    """Fields of a page's models without a description."""
    return [path for path, _, _, description in field_rows(_load(page.model)) if not description]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mspwatch.refdocs", description=inspect.cleandoc(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="fail if a page is out of date")
    args = parser.parse_args(argv)
    root = DOCS.parent.parent
    DOCS.mkdir(parents=True, exist_ok=True)
    stale = []
    for page in PAGES:
        path = DOCS / f"{page.name}.md"
        text = render(page, root)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(root)))
        else:
            path.write_text(text, encoding="utf-8")
    for name in stale:
        print(f"out of date: {name} (run python -m mspwatch.refdocs)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
