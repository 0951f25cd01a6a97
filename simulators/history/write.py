"""Write a history as OpenMetrics day files and backfill them into a Prometheus data dir.

Day files, because promtool re-reads its input once per block: one day per file with
``--max-block-duration=24h`` is the fast shape (REFERENCE section 8).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

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


def backfill(files: list[Path], data_dir: Path, promtool: str = "promtool", workers: int = 2) -> int:
    """Create TSDB blocks from the day files and move them into ``data_dir``; return the count.

    Move the blocks in before Prometheus starts (a running server picks them up only after
    about a minute). Raise its retention (``--storage.tsdb.retention.time``) above the history's
    age, or the oldest blocks are deleted at once.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="backfill-", dir=data_dir.parent) as tmp:

        def one(path: Path) -> Path:
            out = Path(tmp) / path.stem
            out.mkdir()
            proc = subprocess.run(
                [
                    promtool,
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    "--max-block-duration=24h",
                    str(path),
                    str(out),
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"promtool failed on {path.name}: {proc.stderr.strip()[-500:]}")
            return out

        with ThreadPoolExecutor(max_workers=workers) as pool:
            outs = list(pool.map(one, files))
        count = 0
        for out in outs:
            for block in sorted(out.iterdir()):
                shutil.move(str(block), data_dir / block.name)
                count += 1
    return count
