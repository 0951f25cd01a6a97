"""Write a history as OpenMetrics day files and backfill them into a Prometheus data dir.

Day files, because promtool re-reads its input once per block: one day per file with
``--max-block-duration=24h`` is the fast shape (REFERENCE section 8).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mspwatch.common.procs import free_port, spawn, stop_process, wait_for_url
from mspwatch.simulators.history.model import History
from mspwatch.simulators.history.series import DAY, Series, history_series


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_text(labels: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels)


def sample_lines(series: Iterable[Series], lo: int, hi: int, ms: bool) -> Iterator[str]:
    for s in series:
        a, b = np.searchsorted(s.times, [lo, hi])
        if a == b:
            continue
        prefix = f"{s.name}{{{_label_text(s.labels)}}} "
        times = s.times[a:b] * 1000 if ms else s.times[a:b]
        for value, t in zip(s.values[a:b].tolist(), times.tolist(), strict=True):
            yield f"{prefix}{value!r} {t}\n"


def day_bounds(history: History) -> list[tuple[int, int]]:
    """The UTC days the history touches, clipped to its span."""
    first = history.start - history.start % DAY
    return [(max(d, history.start), min(d + DAY, history.end)) for d in range(first, history.end, DAY)]


def write_openmetrics(history: History, out_dir: Path) -> list[Path]:
    """One ``YYYY-MM-DD.om`` file per UTC day: seconds timestamps, ending in ``# EOF``."""
    import datetime as dt

    out_dir.mkdir(parents=True, exist_ok=True)
    series = history_series(history)
    paths = []
    for lo, hi in day_bounds(history):
        path = out_dir / f"{dt.datetime.fromtimestamp(lo, dt.UTC):%Y-%m-%d}.om"
        with path.open("w", encoding="utf-8") as f:
            f.writelines(sample_lines(series, lo, hi, ms=False))
            f.write("# EOF\n")
        paths.append(path)
    return paths


def prometheus_import_chunks(history: History) -> Iterator[str]:
    """The same samples as Prometheus text with millisecond timestamps, one day per chunk
    (what VictoriaMetrics's ``/api/v1/import/prometheus`` reads)."""
    series = history_series(history)
    for lo, hi in day_bounds(history):
        yield "".join(sample_lines(series, lo, hi, ms=True))


def create_blocks(path: Path, out: Path, promtool: str = "promtool", max_block: str = "24h") -> list[Path]:
    """``promtool tsdb create-blocks-from openmetrics`` of one day file into ``out``; return
    the new block directories. (A file of many days wants a ``max_block`` as long: promtool
    reads its input once per block.)"""
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            f"--max-block-duration={max_block}",
            str(path),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"promtool failed on {path.name}: {proc.stderr.strip()[-500:]}")
    return sorted(p for p in out.iterdir() if p.is_dir())


def backfill(files: list[Path], data_dir: Path, promtool: str = "promtool", workers: int = 2) -> int:
    """Create TSDB blocks from the day files and move them into ``data_dir``; return the count.

    Move the blocks in before Prometheus starts (a running server picks them up only after
    about a minute). Raise its retention (``--storage.tsdb.retention.time``) above the history's
    age, or the oldest blocks are deleted at once.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="backfill-", dir=data_dir.parent) as tmp:

        def one(path: Path) -> list[Path]:
            return create_blocks(path, Path(tmp) / path.stem, promtool)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            blocks = [b for bs in pool.map(one, files) for b in bs]
        for block in blocks:
            shutil.move(str(block), data_dir / block.name)
    return len(blocks)


ROOT = Path(__file__).resolve().parents[2]
AVAILABILITY_RULES = ROOT / "alertrules" / "availability.yml"


def rule_levels(rule_files: Sequence[Path]) -> list[dict[str, Any]]:
    """The recording rules as rule-file documents, one per dependency level: promtool
    evaluates rules against the server's data only, so a rule that reads another recorded
    series must be backfilled in a later pass, after the blocks of the first are loaded.

    >>> levels = rule_levels([AVAILABILITY_RULES])
    >>> [[r["record"] for g in d["groups"] for r in g["rules"]] for d in levels][1][2:]
    ['customer_site:reachable:max', 'customer:availability_up_devices:sum']
    """
    rules = [
        (g.get("interval"), r)
        for f in rule_files
        for g in yaml.safe_load(f.read_text(encoding="utf-8"))["groups"]
        for r in g["rules"]
        if "record" in r
    ]
    # A name may be recorded by several rules (one per customer in slo-targets.yml): its
    # level is that of the name, after everything any of its rules reads.
    names = {r["record"] for _, r in rules}
    deps: dict[str, set[str]] = {name: set() for name in names}
    for _, r in rules:
        deps[r["record"]] |= {
            n for n in names if n != r["record"] and re.search(rf"\b{re.escape(n)}\b", r["expr"])
        }
    level: dict[str, int] = {}
    while len(level) < len(names):
        ready = {
            n: 1 + max((level[d] for d in deps[n]), default=-1)
            for n in names - set(level)
            if deps[n] <= set(level)
        }
        if not ready:
            raise ValueError("recording rules depend on each other in a cycle")
        level.update(ready)
    docs = []
    for n in range(max(level.values(), default=-1) + 1):
        mine = [(iv, r) for iv, r in rules if level[r["record"]] == n]
        docs.append(
            {
                "groups": [
                    {"name": f"backfill-{n}-{i}", "interval": iv or "1m", "rules": [r]}
                    for i, (iv, r) in enumerate(mine)
                ]
            }
        )
    return docs


def start_prometheus(
    binary: str, data_dir: Path, config: Path, log: Path, timeout: float = 300.0
) -> tuple[subprocess.Popen[bytes], str]:
    """A Prometheus on a free loopback port over ``data_dir`` (retention unbounded: history
    is never dropped), ready once its TSDB with the backfilled blocks is open, bounded by
    ``timeout`` (a large TSDB takes a while); (process, URL). Stop it with ``stop_process``."""
    port = free_port()
    proc = spawn(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_url(f"{url}/-/ready", timeout=timeout, proc=proc, log=log)
    except BaseException:
        stop_process(proc)
        raise
    return proc, url


def backfill_rules(
    data_dir: Path,
    start: int,
    end: int,
    rule_files: Sequence[Path] = (AVAILABILITY_RULES,),
    *,
    prometheus: str = "prometheus",
    promtool: str = "promtool",
    workers: int = 2,
) -> int:
    """Evaluate the recording rules every minute of ``(start, end]`` over the history in
    ``data_dir`` and add their blocks to it; return the number of blocks.

    Starts a Prometheus of its own on a free loopback port (stopped by PID before
    returning), asks it for each rule's expression as a range query at whole-minute steps
    and turns the answers into blocks with ``promtool tsdb create-blocks-from openmetrics``;
    one pass per dependency level (:func:`rule_levels`). Not ``create-blocks-from rules``:
    promtool stamps its evaluations at an offset within the minute hashed from the group and
    file name (+6.432 s for one name here, so a fresh temporary file moves it every run),
    and a series whose minute ends mid-minute shifts an outage across a maintenance or
    contract-hours boundary by a minute. Run it before the real server starts on ``data_dir``.
    """
    from mspwatch.reports.query import Prometheus

    first = start - start % 60 + 60
    count = 0
    with tempfile.TemporaryDirectory(prefix="rules-", dir=data_dir.parent) as tmp_name:
        tmp = Path(tmp_name)
        config = tmp / "prometheus.yml"
        config.write_text("global: {scrape_interval: 1m}\n", encoding="utf-8")
        days = [(lo, min(end, lo + DAY)) for lo in range(first, end, DAY)]
        for n, doc in enumerate(rule_levels(rule_files)):
            rules = [r for g in doc["groups"] for r in g["rules"]]
            proc, url = start_prometheus(prometheus, data_dir, config, tmp / "prometheus.log")
            try:
                with Prometheus(url, timeout=600) as prom:

                    def one(day: tuple[int, int], n: int = n, rules: list[dict[str, Any]] = rules) -> Path:
                        path = tmp / f"level-{n}-{day[0]}.om"
                        with path.open("w", encoding="utf-8") as f:
                            for rule in rules:
                                for r in prom.range(rule["expr"], day[0], day[1] - 1, 60):
                                    labels = tuple(sorted((dict(r.labels) | rule.get("labels", {})).items()))
                                    f.writelines(
                                        sample_lines(
                                            [Series(rule["record"], labels, r.times, r.values)],
                                            day[0],
                                            day[1],
                                            ms=False,
                                        )
                                    )
                            f.write("# EOF\n")
                        return path

                    with ThreadPoolExecutor(max_workers=workers) as pool:
                        files = list(pool.map(one, days))
            finally:
                stop_process(proc)
            count += backfill(files, data_dir, promtool, workers)
    return count


def backfill_history(
    history: History,
    data_dir: Path,
    *,
    rule_files: Sequence[Path] = (AVAILABILITY_RULES,),
    prometheus: str = "prometheus",
    promtool: str = "promtool",
    workers: int = 2,
) -> tuple[int, int]:
    """The one entry point: write ``history`` as OpenMetrics day files, create its blocks in
    ``data_dir``, then backfill the recording rules over it (:func:`backfill_rules`).
    Return (raw blocks, rule blocks). Start Prometheus on ``data_dir`` afterwards, with a
    retention longer than the history's age.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="history-", dir=data_dir.parent) as tmp:
        files = write_openmetrics(history, Path(tmp))
        raw = backfill(files, data_dir, promtool, workers)
    rules = (
        backfill_rules(
            data_dir,
            history.start,
            history.end,
            rule_files,
            prometheus=prometheus,
            promtool=promtool,
            workers=workers,
        )
        if rule_files
        else 0
    )
    return raw, rules
