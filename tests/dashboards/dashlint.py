"""Grafana's dashboard-linter rules as plain functions over a dashboard's JSON (the linter
itself is a Go binary that does not run here). Each returns the problems it finds, so a
test can show a rule catches a broken dashboard as well as pass the committed ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JSON_DIR = ROOT / "dashboards" / "json"
GRID_COLUMNS = 24
# Kiosk mode at 1080 px: 27 grid units of 30 px + 8 px margin fit without scrolling.
WALL_SCREEN_UNITS = 27
RATE_FUNCTIONS = ("rate", "irate", "increase")
# PromQL words that are not metric names.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}  # fmt: skip


def dashboards() -> dict[str, dict[str, object]]:
    """``{folder/uid.json: dashboard}`` of every committed dashboard."""
    return {str(p.relative_to(JSON_DIR)): json.loads(p.read_text()) for p in sorted(JSON_DIR.rglob("*.json"))}


def panels(d: dict[str, object]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for p in d.get("panels", []):  # type: ignore[union-attr]
        out.append(p)
        out += p.get("panels", [])
    return [p for p in out if p.get("type") != "row"]


def exprs(d: dict[str, object]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every target."""
    for p in panels(d):
        for t in p.get("targets", []):  # type: ignore[attr-defined]
            yield str(p.get("title")), str(t.get("expr", ""))


def check_settings(d: dict[str, object], path: str) -> list[str]:
    problems = []
    if d.get("editable") is not False:
        problems.append("editable is not false")
    if not d.get("uid") or Path(path).stem != d["uid"]:
        problems.append(f"uid {d.get('uid')!r} is not fixed to the file name")
    variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}  # type: ignore[attr-defined]
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no `datasource` variable of type prometheus")
    for child, parent in (("site", "customer"), ("device", "site")):
        if child in variables and f"${parent}" not in json.dumps(variables[child].get("query")):
            problems.append(f"variable {child} is not chained to ${parent}")
    for v in variables.values():
        if v.get("type") == "query" and v.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"variable {v['name']} does not use the datasource variable")
    return problems


def check_panels(d: dict[str, object]) -> list[str]:
    problems = []
    for p in panels(d):
        title = p.get("title")
        if not title:
            problems.append(f"panel {p.get('id')} has no title")
        if not p.get("description"):
            problems.append(f"{title}: no description")
        if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):  # type: ignore[attr-defined]
            problems.append(f"{title}: no unit")
        if p.get("datasource", {}).get("uid") != "${datasource}":  # type: ignore[attr-defined]
            problems.append(f"{title}: panel datasource is not ${{datasource}}")
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{title}: no query")
        for t in targets:  # type: ignore[attr-defined]
            if not t.get("expr"):
                problems.append(f"{title}: empty query")
            if t.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"{title}: query datasource is not ${{datasource}}")
    return problems


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def check_rate_interval(expr: str) -> list[str]:
    """``rate``/``irate``/``increase`` take ``[$__rate_interval]``.

    >>> check_rate_interval('rate(x_total[5m])')
    ['rate(...[5m]): use $__rate_interval']
    >>> check_rate_interval('sum(rate(x_total{a="b"}[$__rate_interval]))')
    []
    """
    problems = []
    s = _strip_strings(expr)
    for m in re.finditer(r"\b(rate|irate|increase)\s*\(", s):
        depth, i = 1, m.end()
        while i < len(s) and depth:
            depth += {"(": 1, ")": -1}.get(s[i], 0)
            i += 1
        ranges = re.findall(r"\[([^\]]*)\]", s[m.end() : i])
        if ranges != ["$__rate_interval"]:
            problems.append(f"{m.group(1)}(...[{','.join(ranges)}]): use $__rate_interval")
    return problems


def check_counters_under_rate(expr: str) -> list[str]:
    """A counter (``*_total``) appears only inside ``rate``/``irate``/``increase``.

    >>> check_counters_under_rate('sum(x_total)')
    ['x_total outside rate()']
    >>> check_counters_under_rate('sum by (a) (rate(x_total[$__rate_interval]))')
    []
    """
    s = _strip_strings(expr)
    stack: list[str] = []
    problems = []
    for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\(|\(|\)|([A-Za-z_:][A-Za-z0-9_:]*_total)\b", s):
        if m.group(1) is not None:
            stack.append(m.group(1))
        elif m.group(0) == "(":
            stack.append("")
        elif m.group(0) == ")":
            if stack:
                stack.pop()
        elif not any(f in RATE_FUNCTIONS for f in stack):
            problems.append(f"{m.group(2)} outside rate()")
    return problems


def metric_names(expr: str) -> set[str]:
    """Metric names a query selects (``{__name__=~...}`` regexes are returned as ``~regex``).

    >>> sorted(metric_names('sum by (job) (rate(a_total{x="y"}[$__rate_interval])) / on (i) b'))
    ['a_total', 'b']
    """
    names = {"~" + r for r in re.findall(r'__name__\s*=~\s*"([^"]*)"', expr)}
    s = re.sub(r"\{[^}]*\}", " ", _strip_strings(expr))
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    for m in re.finditer(r"(?<![\w$.])([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if not call and word.lower() not in KEYWORDS:
            names.add(word)
    return names


def check_grid(d: dict[str, object], *, wall_screen: bool = False) -> list[str]:
    problems = []
    boxes = []
    for p in panels(d):
        g = p["gridPos"]
        x, y, w, h = g["x"], g["y"], g["w"], g["h"]  # type: ignore[index]
        if x < 0 or w <= 0 or h <= 0 or x + w > GRID_COLUMNS:
            problems.append(f"{p['title']}: outside the {GRID_COLUMNS}-column grid ({x}+{w})")
        for title, (bx, by, bw, bh) in boxes:
            if x < bx + bw and bx < x + w and y < by + bh and by < y + h:
                problems.append(f"{p['title']} overlaps {title}")
        boxes.append((p["title"], (x, y, w, h)))
    if wall_screen:
        bottom = max(b[1] + b[3] for _, b in boxes)
        if bottom > WALL_SCREEN_UNITS:
            problems.append(f"wall screen is {bottom} grid units tall; 1080 px fit {WALL_SCREEN_UNITS}")
    return problems


def linked_uids(d: dict[str, object]) -> set[str]:
    return set(re.findall(r"/d/([A-Za-z0-9_-]+)", json.dumps(d)))
