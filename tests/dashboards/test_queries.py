"""Every panel query, its variables filled in, runs against a real Prometheus holding the
demo estate's history (simulators/history, backfilled) with the recording rules backfilled
over the last two days by `promtool tsdb create-blocks-from rules`, in dependency order
(tests/rulepasses.py).

A query must execute (Prometheus is the parser: promtool has none); a query whose metrics
are all in the TSDB must return data over the last two days. A failure names the
dashboard, the panel and the query.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import httpx
import pytest

from mspwatch.common.procs import stop_process
from mspwatch.simulators.history.demo import estate_history, load_estate
from mspwatch.simulators.history.write import backfill, write_openmetrics
from tests.conftest import require_tool
from tests.dashboards import dashlint
from tests.dashboards.dashlint import ROOT
from tests.rulepasses import create_blocks, rule_layers, start_prometheus

END = 1_793_750_400  # 2026-11-03T00:00Z: fixed, so the history is the same every run
WINDOW = 2 * 86400  # the recording rules are backfilled over the last two days
RULES = [ROOT / "alertrules" / n for n in ("availability.yml", "recording.yml", "slo.yml", "slo-targets.yml")]


@pytest.fixture(scope="session")
def history_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary, promtool = require_tool("prometheus"), require_tool("promtool")
    base = tmp_path_factory.mktemp("dash-prometheus")
    data = base / "data"
    files = write_openmetrics(estate_history(load_estate(), END, days=7), base / "history")
    backfill(files, data, promtool)
    (base / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n", encoding="utf-8")
    proc, url = start_prometheus(binary, base, data)
    try:
        for n, layer in enumerate(rule_layers(RULES)):
            out = create_blocks(promtool, url, base / f"rules-{n}", layer, END - WINDOW, END)
            stop_process(proc)
            for block in out.iterdir():
                if block.is_dir():
                    shutil.move(str(block), data / f"{block.name}")
            proc, url = start_prometheus(binary, base, data)
        yield url
    finally:
        stop_process(proc)


def _fill(expr: str, values: dict[str, str]) -> str:
    expr = expr.replace("$__rate_interval", "4m").replace("$__range", "2d").replace("$__interval", "1m")
    return re.sub(r"\$(customer|site|device)\b", lambda m: values[m.group(1)], expr)


CASES = [
    (path, title, expr)
    for path, d in sorted(dashlint.dashboards().items())
    for title, expr in dashlint.exprs(d)
]


@pytest.fixture(scope="session")
def present(history_prometheus: str) -> set[str]:
    names = httpx.get(f"{history_prometheus}/api/v1/label/__name__/values", timeout=30).json()["data"]
    return set(names)


def _range(url: str, query: str) -> dict[str, object]:
    answer: dict[str, object] = httpx.get(
        f"{url}/api/v1/query_range",
        params={"query": query, "start": END - WINDOW + 3600, "end": END, "step": "5m"},
        timeout=60,
    ).json()
    return answer


# A trailing filter (`... == 0`, `... > 7 * 86400`): "nothing is red" is a right answer.
_FILTER = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*[0-9.* ]+\)?$")


@pytest.mark.parametrize(
    ("path", "title", "expr"), CASES, ids=[f"{p}:{t}:{i}" for i, (p, t, _) in enumerate(CASES)]
)
def test_panel_query_runs_and_returns_data(
    history_prometheus: str, present: set[str], path: str, title: str, expr: str
) -> None:
    """Variables at the dashboards' default (All); a filtered query may be empty only when
    the same query without its filter returns data (the selector is right, nothing is red)."""
    query = _fill(expr, {"customer": ".*", "site": ".*", "device": ".*"})
    answer = _range(history_prometheus, query)
    assert answer["status"] == "success", f"{path} / {title}: {query}: {answer.get('error')}"
    names = dashlint.metric_names(expr)
    plain = {n for n in names if not n.startswith("~")}
    regexes = [n[1:] for n in names if n.startswith("~")]
    if not (plain <= present and all(any(re.fullmatch(r, p) for p in present) for r in regexes)):
        return  # a metric the history does not generate: the query must still execute (above)
    result = answer["data"]["result"]  # type: ignore[index]
    if not result and _FILTER.search(query):
        unfiltered = _range(history_prometheus, _FILTER.sub(")" if query.endswith(")") else "", query))
        result = unfiltered["data"]["result"]  # type: ignore[index]
    assert result, f"{path} / {title}: no data for {query}"
