"""Recording rules backfilled over a stored history, in dependency order.

`promtool tsdb create-blocks-from rules` evaluates each rule over the data already stored,
so a rule reading another rule's series needs that series written first: pass 1 holds the
rules that read only scraped series, pass 2 those reading pass 1's output, and so on. Each
rule is evaluated once (no two blocks with different values at one time).

Each pass writes the rule files under their own names and runs promtool from their folder:
promtool, like Prometheus, offsets a group's evaluations within the interval by a hash of its
file and name, so every pass evaluates at the same instants and a rule reading another
group's output of the same evaluation (``last_over_time(x[30s])``) finds it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mspwatch.simulators.history.write import start_prometheus as serve

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def rule_layers(paths: Sequence[Path]) -> list[dict[str, dict[str, Any]]]:
    """Per pass, {file name: rule-file document with only that pass's recording rules}."""
    docs = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in paths}
    exprs: dict[str, list[str]] = {}
    for doc in docs.values():
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    exprs.setdefault(rule["record"], []).append(str(rule["expr"]))
    depth: dict[str, int] = {}

    def depth_of(name: str, path: tuple[str, ...] = ()) -> int:
        if name not in depth:
            if name in path:
                raise ValueError(f"recording rules read each other in a cycle: {' -> '.join(path)}")
            reads = {t for e in exprs[name] for t in _NAME.findall(e) if t in exprs and t != name}
            depth[name] = 1 + max((depth_of(r, (*path, name)) for r in reads), default=0)
        return depth[name]

    layers: list[dict[str, dict[str, Any]]] = [{} for _ in range(max(map(depth_of, exprs), default=0))]
    for file, doc in docs.items():
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "record" not in rule:
                    continue
                layer = layers[depth_of(rule["record"]) - 1].setdefault(file, {"groups": []})
                if not layer["groups"] or layer["groups"][-1]["name"] != group["name"]:
                    layer["groups"].append({**group, "rules": []})
                layer["groups"][-1]["rules"].append(rule)
    return layers


def create_blocks(
    promtool: str, url: str, folder: Path, layer: dict[str, dict[str, Any]], start: int, end: int
) -> Path:
    """Evaluate one pass against the Prometheus at ``url``; return the folder of new blocks."""
    folder.mkdir(parents=True, exist_ok=True)
    for file, doc in layer.items():
        (folder / file).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    out = folder / "blocks"
    cmd = [
        promtool, "tsdb", "create-blocks-from", "rules",
        f"--start={start}", f"--end={end}", f"--url={url}",
        "--eval-interval=1m", f"--output-dir={out}", *sorted(layer),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900, cwd=folder)
    if done.returncode != 0:
        raise RuntimeError(f"promtool create-blocks-from rules failed: {done.stderr[-2000:]}")
    return out


def start_prometheus(binary: str, base: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Prometheus on ``data`` (its config at ``base/prometheus.yml``, its log beside it),
    ready within 60 s once the TSDB with the backfilled blocks is open; stop it with
    ``stop_process``."""
    return serve(binary, data, base / "prometheus.yml", base / "prometheus.log", timeout=60)
