"""Split the rule files between the Prometheus shards and vmalert (the ``scale`` profile).

    python -m mspwatch.targets.rulesplit --rules=alertrules --config=compose/prometheus.yml \\
        --out=compose/scale/rules

writes ``shard/<file>.yml`` (the groups every shard evaluates on its own targets) and
``estate/<file>.yml`` (the groups vmalert evaluates on VictoriaMetrics, which holds what every
shard scraped). The shards hash a target's customer, site and host (``mspwatch.targets.shards``),
so all series of one device, source or tenant are on one shard, and a rule gives the whole
estate's answer on a shard exactly when it never combines two targets. A rule stays on the
shards when every part of its expression keeps the target apart:

- every aggregation keeps ``instance``, or ``customer``, ``site`` and ``device``
  (``max by (customer, site, device, role)``: yes; ``max by (customer, site)``: no);
- every join of two vectors matches on those labels (or on all labels), so it only pairs
  series of one target, and neither side reads a job of one fixed target (the inventory
  exporter's series name devices of every shard, but are scraped by one);
- no ``absent()`` / ``absent_over_time()`` (missing on one shard is not missing), no
  ``scalar()`` of a vector, no ``ALERTS`` (vmalert's alerts are not on the shard), and no
  series recorded by a group that runs in vmalert;
- no recorded constant (``vector(0.995)``): every shard would send its own copy.

A group moves whole (its rules run in order): one rule that fails a test moves the group.
Each generated group carries a comment saying why it is where it is. The output is committed;
a test regenerates it and fails on any difference, so edit ``alertrules/`` and rerun this.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser as pp
import yaml

# The labels that name one target. The shards hash customer, site and host, so one target's
# series are all on one shard. ``instance`` (the target's address or source name) names a
# target: the rules already join on it (a single Prometheus would pair two targets with one
# address just the same). ``device`` names one only within its customer and site.
INSTANCE = "instance"
DEVICE = ("customer", "site", "device")
# Series a shard cannot see whole: alerts of vmalert live only in VictoriaMetrics.
ESTATE_SERIES = frozenset({"ALERTS", "ALERTS_FOR_STATE"})
ABSENT = frozenset({"absent", "absent_over_time"})
LABEL_WRITERS = frozenset({"label_replace", "label_join"})


def _keeps_target(labels: Iterable[str], by: bool) -> bool:
    """Whether grouping or matching ``by``/``on`` (else ``without``/``ignoring``) these labels
    keeps every target apart.

    >>> _keeps_target(["job", "instance"], True), _keeps_target(["customer", "site"], True)
    (True, False)
    >>> _keeps_target(["le"], False), _keeps_target(["instance"], False)
    (True, False)
    """
    names = set(labels)
    if by:
        return INSTANCE in names or set(DEVICE) <= names
    return INSTANCE not in names


def _selectors(expr: pp.Expr) -> list[pp.VectorSelector]:
    found: list[pp.VectorSelector] = []

    def visit(node: pp.Expr) -> None:
        if isinstance(node, pp.VectorSelector):
            found.append(node)
        elif isinstance(node, pp.MatrixSelector):
            found.append(node.vector_selector)

    pp.walk(expr, visit)
    return found


def _name(sel: pp.VectorSelector) -> str | None:
    if sel.name:
        return sel.name
    return next((str(m.value) for m in sel.matchers.matchers if m.name == "__name__"), None)


def series_read(expr: str) -> set[str]:
    """Metric names an expression reads.

    >>> sorted(series_read('max by (customer) (a{job="x"}) / on (customer) b'))
    ['a', 'b']
    """
    return {n for n in (_name(s) for s in _selectors(pp.parse(expr))) if n}


def _job(sel: pp.VectorSelector) -> str | None:
    for m in sel.matchers.matchers:
        if m.name == "job" and m.op == pp.MatchOp.Equal:
            return str(m.value)
    return None


def why_not_local(expr: str, static_jobs: frozenset[str] = frozenset()) -> list[str]:
    """Each reason the expression cannot be evaluated per shard (empty: it can).

    ``static_jobs``: jobs of one fixed target (the inventory exporter's), hashed to one shard
    like any target, whose series name customers, sites and devices of every shard: joined
    with a target's series they may be on the other shard, whatever the matching labels.

    >>> why_not_local('max by (customer, site, device) (probe_success{job="icmp"})')
    []
    >>> why_not_local('max by (customer, site) (probe_success{job="icmp"})')
    ['`max by (customer, site)` merges targets']
    >>> why_not_local('a unless on (customer, site, device) b{job="inventory"}', frozenset({"inventory"}))
    ['`unless` joins series of job inventory (one target, on one shard)']
    """
    reasons: list[str] = []

    def visit(node: pp.Expr) -> None:
        if isinstance(node, pp.AggregateExpr):
            mod = node.modifier
            if mod is None:
                reasons.append(f"`{node.op}` without `by` merges targets")
            else:
                by = mod.type == pp.AggModifierType.By
                if not _keeps_target(mod.labels, by):
                    word = "by" if by else "without"
                    reasons.append(f"`{node.op} {word} ({', '.join(mod.labels)})` merges targets")
        elif isinstance(node, pp.Call):
            name = node.func.name
            if name in ABSENT:
                reasons.append(f"`{name}()` on one shard does not see the others")
            elif name == "scalar" and _selectors(node):
                reasons.append("`scalar()` of a vector merges targets")
            elif name in LABEL_WRITERS and len(node.args) > 1:
                dst = getattr(node.args[1], "val", None)
                if dst == INSTANCE:
                    reasons.append(f"`{name}()` rewrites the target label {dst}")
        elif isinstance(node, pp.BinaryExpr):
            left, right = _selectors(node.lhs), _selectors(node.rhs)
            if not (left and right):
                return  # a vector and a number: one target at a time
            matching = node.modifier.matching if node.modifier is not None else None
            # Default matching pairs equal label sets: one target's series with each other.
            if matching is not None:
                on = matching.type == pp.LabelModifierType.Include
                if not _keeps_target(matching.labels, on):
                    word = "on" if on else "ignoring"
                    reasons.append(f"`{node.op} {word} ({', '.join(matching.labels)})` joins targets")
            jobs = {j for j in (_job(sel) for sel in left + right) if j is not None}
            for job in sorted(jobs & static_jobs):
                reasons.append(f"`{node.op}` joins series of job {job} (one target, on one shard)")
        elif isinstance(node, pp.VectorSelector) and _name(node) in ESTATE_SERIES:
            reasons.append(f"reads {_name(node)} (vmalert's alerts are not on the shards)")

    pp.walk(pp.parse(expr), visit)
    return list(dict.fromkeys(reasons))


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions and descriptions as literal blocks, as they are written."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


@dataclass
class Placed:
    """One rule group and where it runs."""

    file: str
    group: dict[str, Any]
    estate: bool = False
    reasons: list[str] = field(default_factory=list)


def split(files: dict[str, dict[str, Any]], static_jobs: frozenset[str] = frozenset()) -> list[Placed]:
    """Place every group of every rule file (name -> parsed YAML), in file and group order.

    A group runs in vmalert when a rule of it fails the per-shard test or reads a series that
    a vmalert group records; this repeats until nothing moves.
    """
    placed = [Placed(name, g) for name, doc in sorted(files.items()) for g in doc.get("groups") or []]
    while True:
        estate_series = {r["record"] for p in placed if p.estate for r in p.group["rules"] if "record" in r}
        moved = False
        for p in placed:
            if p.estate:
                continue
            reasons = []
            for rule in p.group["rules"]:
                what = rule.get("record") or rule.get("alert")
                expr = str(rule["expr"])
                reasons += [f"{what}: {r}" for r in why_not_local(expr, static_jobs)]
                if "record" in rule and not series_read(expr):
                    # A constant recorded on every shard would reach VictoriaMetrics once per
                    # shard (told apart only by the shard label) and break joins on it there.
                    reasons.append(f"{what}: a constant, recorded once rather than once per shard")
                reasons += [
                    f"{what}: reads {s}, recorded in vmalert"
                    for s in sorted(series_read(expr) & estate_series)
                ]
            if reasons:
                p.estate, p.reasons, moved = True, list(dict.fromkeys(reasons)), True
        if not moved:
            return placed


def render(placed: list[Placed], estate: bool, source: str) -> str | None:
    """One generated rule file: the groups of ``source`` placed on this side, or None."""
    mine = [p for p in placed if p.file == source and p.estate == estate]
    if not mine:
        return None
    where = "vmalert, on VictoriaMetrics" if estate else "every Prometheus shard"
    out = [
        f"# GENERATED by `python -m mspwatch.targets.rulesplit` from alertrules/{source}:",
        f"# the groups evaluated by {where}. Do not edit; edit alertrules/ and regenerate.",
        "groups:",
    ]
    for p in mine:
        if estate:
            out.append(f"  # {p.group['name']} needs the whole estate:")
            out += [f"  #   {r}" for r in p.reasons]
        else:
            out.append(f"  # {p.group['name']}: every rule keeps the targets apart")
        body = yaml.dump([p.group], Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
        out += ["  " + line if line else line for line in body.splitlines()]
    return "\n".join(out) + "\n"


def static_jobs(prometheus_config: dict[str, Any]) -> frozenset[str]:
    """Jobs of fixed targets (no file_sd) other than each shard's own Prometheus."""
    from .shards import SELF_JOBS

    jobs = prometheus_config.get("scrape_configs") or []
    return frozenset(j["job_name"] for j in jobs if not j.get("file_sd_configs")) - SELF_JOBS


def generate(rules: Path, config: Path) -> dict[str, str]:
    """Every generated file (``shard/<name>`` or ``estate/<name>``) and its text; ``config``
    is the canonical prometheus.yml (which jobs have one fixed target)."""
    files = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) or {} for p in sorted(rules.glob("*.yml"))}
    placed = split(files, static_jobs(yaml.safe_load(config.read_text(encoding="utf-8"))))
    out: dict[str, str] = {}
    for name in files:
        for side, estate in (("shard", False), ("estate", True)):
            text = render(placed, estate, name)
            if text is not None:
                out[f"{side}/{name}"] = text
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mspwatch.targets.rulesplit", description=__doc__.split("\n")[0]
    )
    p.add_argument("--rules", type=Path, required=True, help="the directory of rule files (alertrules/)")
    p.add_argument("--config", type=Path, required=True, help="the canonical prometheus.yml")
    p.add_argument("--out", type=Path, required=True, help="writes <out>/shard/*.yml and <out>/estate/*.yml")
    args = p.parse_args(argv)
    files = generate(args.rules, args.config)
    for side in ("shard", "estate"):
        (args.out / side).mkdir(parents=True, exist_ok=True)
        # A group that moved leaves no stale file behind.
        for old in (args.out / side).glob("*.yml"):
            if f"{side}/{old.name}" not in files:
                old.unlink()
    for rel, text in files.items():
        (args.out / rel).write_text(text, encoding="utf-8")
        print(args.out / rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
