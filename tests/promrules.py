"""Run alert rules over canned series with `promtool test rules` (shared by the areas'
alert-golden tests)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.conftest import require_tool


def series_labels(labels: dict[str, str]) -> str:
    """``{a="1",b="2"}`` in promtool's series notation."""
    return "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"


def assert_firing(
    tmp_path: Path,
    rules: Path,
    input_series: list[dict[str, str]],
    minutes: int,
    exp_samples: list[dict[str, object]],
) -> None:
    """Evaluate ``rules`` for ``minutes``; the firing ALERTS must be exactly ``exp_samples``."""
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": input_series,
                "promql_expr_test": [
                    {
                        "expr": 'ALERTS{alertstate="firing"}',
                        "eval_time": f"{minutes}m",
                        "exp_samples": exp_samples,
                    }
                ],
            }
        ],
    }
    path = tmp_path / "golden_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    proc = subprocess.run(
        [require_tool("promtool"), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
