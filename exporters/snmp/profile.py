"""Profiles: what to read from a device and how it becomes metrics, as YAML data.

A profile names the OIDs to GET (``scalars``) or walk (``tables``) and the vendor-neutral
metric each becomes. Generic profiles (no ``match``) are tried on every device; vendor
profiles apply when the device's sysObjectID starts with one of their ``match`` prefixes.
See ``exporters/snmp/profiles/*.yaml`` and ``docs/snmp-metrics.md``.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from mspwatch.common.config import ConfigError, StrictModel, load_model

Oid = tuple[int, ...]

_OID = re.compile(r"^\.?\d+(\.\d+)+$")
_METRIC = re.compile(r"^[a-z_][a-z0-9_]*$")
_LABEL = re.compile(r"^[a-z_][a-z0-9_]*$")

BUILTIN_DIR = Path(__file__).parent / "profiles"


def parse_oid(text: str) -> Oid:
    if not _OID.match(text):
        raise ValueError(f"invalid OID {text!r}, want numeric dotted form")
    return tuple(int(p) for p in text.strip(".").split("."))


def oid_str(oid: Oid) -> str:
    return ".".join(map(str, oid))


def _to_oid(value: object) -> object:
    return parse_oid(value) if isinstance(value, str) else value


OidField = Annotated[Oid, BeforeValidator(_to_oid)]


class Source(StrictModel):
    """One OID a value may come from, with its unit conversion."""

    oid: OidField
    scale: float = 1.0


def _sources(value: object) -> object:
    items = value if isinstance(value, list) else [value]
    return [{"oid": v} if isinstance(v, str) else v for v in items]


def _oid_list(value: object) -> object:
    return value if isinstance(value, list) else [value]


class LabelSpec(StrictModel):
    """A label looked up per row: the first OID with a non-empty value wins."""

    oids: Annotated[list[OidField], BeforeValidator(_oid_list)] = []
    value: str | None = None  # a constant (a scalar CPU's cpu="0")
    strip: re.Pattern[str] | None = None  # removed from the text (a state in a sensor name)
    index_part: int | None = Field(default=None, ge=0)  # look up by this index component
    format: Literal["auto", "hex"] = "auto"  # hex: MAC addresses, binary ids
    map: dict[int, str] = {}  # enum values to names (entPhysicalClass 3 -> chassis)
    fallback_to_index: bool = False  # no value: use the row index, so rows stay distinct

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: object) -> object:
        if isinstance(value, str | list):
            return {"oids": value}
        return value

    @model_validator(mode="after")
    def _source(self) -> LabelSpec:
        if (self.value is None) == (not self.oids):
            raise ValueError("give oids or a constant value")
        return self


class Where(StrictModel):
    """Keep a row only when a column's value is (``in``) or is not (``not_in``) listed."""

    oid: OidField
    values: list[str] | None = Field(default=None, alias="in", min_length=1)
    not_values: list[str] | None = Field(default=None, alias="not_in", min_length=1)

    @field_validator("values", "not_values", mode="before")
    @classmethod
    def _str(cls, value: object) -> object:
        return [str(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _one(self) -> Where:
        if (self.values is None) == (self.not_values is None):
            raise ValueError("give exactly one of in, not_in")
        return self

    def keeps(self, text: str) -> bool:
        if self.values is not None:
            return text in self.values
        return text not in (self.not_values or [])


def _where_list(value: object) -> object:
    return [value] if isinstance(value, dict) else value


MetricType = Literal["gauge", "counter", "state", "bool", "info"]


class MetricSpec(StrictModel):
    name: str
    help: str
    type: MetricType = "gauge"
    sources: Annotated[list[Source], BeforeValidator(_sources)] = Field(alias="oid")
    scale: float = 1.0
    multiply_by: OidField | None = None
    add: OidField | None = None  # e.g. size = used + free
    transform: Literal["boot_time", "entity_sensor"] | None = None
    states: dict[int, str] | None = None
    state_label: str = "state"
    true_values: list[int] | None = None
    # Keep a row only when every condition holds (e.g. sensor type and status).
    where: Annotated[list[Where], BeforeValidator(_where_list)] = []
    labels: dict[str, LabelSpec] = {}

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _METRIC.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        return name

    @model_validator(mode="after")
    def _by_type(self) -> MetricSpec:
        if (self.type == "counter") != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: counter names, and only they, end in _total")
        if self.type == "info" and not self.name.endswith("_info"):
            raise ValueError(f"{self.name}: info metric names end in _info")
        if self.type == "state" and not self.states:
            raise ValueError(f"{self.name}: type state needs states")
        if self.type == "bool" and not self.true_values:
            raise ValueError(f"{self.name}: type bool needs true_values")
        for label in self.labels:
            if not _LABEL.match(label):
                raise ValueError(f"{self.name}: invalid label name {label!r}")
        return self

    @property
    def columns(self) -> list[Oid]:
        """Every column this metric reads (values, multipliers, filters, own labels)."""
        cols = [s.oid for s in self.sources]
        if self.multiply_by:
            cols.append(self.multiply_by)
        if self.add:
            cols.append(self.add)
        cols += [w.oid for w in self.where]
        if self.transform == "entity_sensor":
            base = self.sources[0].oid[:-1]
            cols += [(*base, 2), (*base, 3)]  # entPhySensorScale, entPhySensorPrecision
        for spec in self.labels.values():
            cols += spec.oids
        return cols


class TableSpec(StrictModel):
    # Label names for the row index components; a name starting with "_" is not exported.
    index: list[str] = Field(min_length=1)
    labels: dict[str, LabelSpec] = {}
    change_oids: list[OidField] = []  # scalars whose change invalidates cached labels
    metrics: list[MetricSpec] = Field(min_length=1)


class Profile(StrictModel):
    name: str
    description: str
    match: list[str] = []
    scalars: list[MetricSpec] = []
    tables: list[TableSpec] = []

    @field_validator("match")
    @classmethod
    def _prefixes(cls, match: list[str]) -> list[str]:
        for prefix in match:
            parse_oid(prefix)
        return [p.strip(".") for p in match]

    @cached_property
    def match_oids(self) -> list[Oid]:
        return [parse_oid(p) for p in self.match]

    def applies_to(self, sys_object_id: Oid | None) -> bool:
        if not self.match:
            return True
        if sys_object_id is None:
            return False
        return any(sys_object_id[: len(p)] == p for p in self.match_oids)


def load_profiles(extra_dirs: list[Path] | None = None) -> dict[str, Profile]:
    """Load the built-in profiles, then any from ``extra_dirs`` (which may replace them)."""
    profiles: dict[str, Profile] = {}
    for directory in [BUILTIN_DIR, *(extra_dirs or [])]:
        if not directory.is_dir():
            raise ConfigError(f"profile_dirs: not a directory: {directory}")
        for path in sorted(directory.glob("*.yaml")):
            profile = load_model(Profile, path)
            if profile.name != path.stem:
                raise ConfigError(f"{path}: name: must match the file name ({path.stem!r})")
            profiles[profile.name] = profile
    _check_metric_types(profiles)
    return profiles


def _label_names(spec: MetricSpec, index: list[str], table_labels: list[str]) -> frozenset[str]:
    names = [n for n in index if not n.startswith("_")] + table_labels + list(spec.labels)
    if spec.type == "state":
        names.append(spec.state_label)
    return frozenset(names)


def metric_entries(profile: Profile) -> list[tuple[MetricSpec, frozenset[str]]]:
    """Every metric of a profile with the label names its series carry."""
    out = [(s, _label_names(s, [], [])) for s in profile.scalars]
    out += [(m, _label_names(m, t.index, list(t.labels))) for t in profile.tables for m in t.metrics]
    return out


def _check_metric_types(profiles: dict[str, Profile]) -> None:
    """One metric name has one type and one set of label names across every profile, so
    dashboards and alerts written for one vendor work for all."""
    seen: dict[str, tuple[str, frozenset[str], str]] = {}
    for profile in profiles.values():
        for spec, labels in metric_entries(profile):
            kind, names, first = seen.setdefault(spec.name, (spec.type, labels, profile.name))
            if kind != spec.type:
                raise ConfigError(
                    f"profile {profile.name}: {spec.name}: type {spec.type} differs from "
                    f"{kind} in profile {first}"
                )
            if names != labels:
                raise ConfigError(
                    f"profile {profile.name}: {spec.name}: labels {sorted(labels)} differ from "
                    f"{sorted(names)} in profile {first}"
                )
