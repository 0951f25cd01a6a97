"""Charts as SVG text (matplotlib, Agg-free SVG backend), readable in print and in greyscale:
dark fills, hatching for the second series, labels in the chart rather than colour keys.

Deterministic: a fixed hash salt for element ids and no date in the metadata, so the same
figures give byte-identical SVG (and so byte-identical PDFs).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("svg")  # no display, no Agg: SVG only
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

plt.rcParams.update(
    {
        "svg.hashsalt": "mspwatch-report",
        "svg.fonttype": "none",  # text stays text: small files, selectable in the PDF
        "font.family": "DejaVu Sans",
        "font.size": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
GREY = "#777777"
WIDTH = 6.3  # inches: the text width of the A4 page


def _margins(fig: Figure, height: float, left: float = 0.65) -> None:
    """Margins in inches: the y labels on the left, the x label below, the top line."""
    fig.subplots_adjust(
        left=min(left, 3.5) / WIDTH, right=1 - 0.1 / WIDTH, bottom=0.45 / height, top=1 - 0.12 / height
    )


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    # Fixed margins (set where the figure is made) instead of bbox_inches="tight", which
    # draws every figure twice to measure it.
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "mspwatch"})
    plt.close(fig)
    return buf.getvalue()


def availability_bars(
    names: Sequence[str], values: Sequence[float], target: float | Sequence[float], colour: str
) -> str:
    """Horizontal bars in percent; each bar below its own target is hatched white, and the
    target is a dashed line (one shared target) or a black tick on each bar (one each)."""
    targets = [float(target)] * len(names) if isinstance(target, int | float) else [float(t) for t in target]
    height = 0.28 * len(names) + 0.8
    fig, ax = plt.subplots(figsize=(WIDTH, height))
    # Room for the longest name at ~0.062 in per character of 8 pt DejaVu Sans.
    _margins(fig, height, left=0.2 + 0.062 * max((len(n) for n in names), default=4))
    pct = [v * 100 for v in values]
    lo = min([*pct, *targets]) - 0.5
    bars = ax.barh(
        list(names), [p - lo for p in pct], left=lo, color=colour, edgecolor="black", linewidth=0.4
    )
    for bar, p, t in zip(bars, pct, targets, strict=True):
        if p < t:
            bar.set_hatch("////")
            bar.set_facecolor("white")
    if len(set(targets)) <= 1:
        ax.axvline(targets[0], color="black", linestyle="--", linewidth=0.8)
        ax.text(targets[0], len(names) - 0.4, f" target {targets[0]:g}%", fontsize=7, va="bottom")
    else:
        for i, t in enumerate(targets):
            ax.plot([t, t], [i - 0.45, i + 0.45], color="black", linewidth=1.6)
    ax.set_xlim(lo, 100.02)
    ax.invert_yaxis()
    key = "hatched: below target" if len(set(targets)) <= 1 else "black tick: each target; hatched: below it"
    ax.set_xlabel(f"availability in contract hours, % ({key})")
    return _svg(fig)


def daily_downtime(days: Sequence[int], minutes: Sequence[int], tz: str, colour: str) -> str:
    """Down minutes per day of the month (contract hours, outside maintenance)."""
    fig, ax = plt.subplots(figsize=(WIDTH, 1.8))
    _margins(fig, 1.8)
    labels = [dt.datetime.fromtimestamp(d, ZoneInfo(tz)).day for d in days]
    ax.bar(labels, minutes, color=colour, edgecolor="black", linewidth=0.4)
    ax.set_xlabel("day of month")
    ax.set_ylabel("device-minutes down")
    ax.set_xticks(labels[::2])
    return _svg(fig)


def trend(points: Sequence[tuple[int, float]], tz: str, label: str, target: float | None = None) -> str:
    """A daily trend in percent, with an optional target line; each point is taken at the
    end of a day (local midnight) and drawn on the day that just ended."""
    fig, ax = plt.subplots(figsize=(WIDTH, 1.6))
    _margins(fig, 1.6)
    xs = [dt.datetime.fromtimestamp(t - 1, ZoneInfo(tz)).day for t, _ in points]
    ys = [v * 100 for _, v in points]
    ax.plot(xs, ys, color="black", linewidth=1.2)  # one path; per-point markers cost a node each
    if target is not None:
        ax.axhline(target, color=GREY, linestyle="--", linewidth=0.8)
        ax.text(xs[0] if xs else 1, target, f" target {target:g}%", fontsize=7, va="bottom", color="black")
    ax.set_ylim(0, 105)
    ax.set_xlabel("day of month")
    ax.set_ylabel(label)
    return _svg(fig)
