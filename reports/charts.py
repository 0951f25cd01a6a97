"""Charts as SVG text (matplotlib, Agg-free SVG backend), readable in print and in greyscale:
dark fills, hatching for the second series, labels in the chart rather than colour keys.

Deterministic: a fixed hash salt for element ids and no date in the metadata, so the same
figures give byte-identical SVG (and so byte-identical PDFs).

Light, because WeasyPrint draws every SVG element itself and that was a third of a PDF's
cost: the bars of one style are one compound path (zero bars draw nothing), no tick marks
(the labels suffice), no background rectangles (white on white paper), a tick label every
few days rather than each, and a series is one line, never a marker per point. WeasyPrint
lays out SVG text letter by letter (~0.3 ms a letter), so the axis titles are not in the
chart: the report prints each chart's caption, saying what the axes are, as HTML below it.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch
from matplotlib.path import Path
from matplotlib.ticker import MaxNLocator

# Figures are made with Figure(), not pyplot: no backend, no figure registry to close;
# savefig(format="svg") picks matplotlib's SVG writer.
matplotlib.rcParams.update(
    {
        "svg.hashsalt": "mspwatch-report",
        "svg.fonttype": "none",  # text stays text: small files, selectable in the PDF
        "font.family": "DejaVu Sans",
        "font.size": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "xtick.major.size": 0,
        "ytick.major.size": 0,
        "xtick.major.pad": 2,
        "ytick.major.pad": 3,
    }
)
GREY = "#777777"
WIDTH = 6.3  # inches: the text width of the A4 page


def _margins(fig: Figure, height: float, left: float = 0.4) -> None:
    """Margins in inches: the y tick labels on the left, the x tick labels below, the top
    line, and on the right half the last x tick label ("100.0"), centred on the axis end."""
    fig.subplots_adjust(
        left=min(left, 3.5) / WIDTH, right=1 - 0.3 / WIDTH, bottom=0.25 / height, top=1 - 0.12 / height
    )


@functools.cache
def _canvas(kind: str) -> tuple[Figure, Axes]:
    """The one figure of a chart ``kind`` in this process, redrawn for every chart of that
    kind: a new figure cost ~15 ms and each of its ticks ~1 ms to build (lines, a marker and
    labels per tick), ~70 ms a chart; a redrawn figure keeps its axes and ticks."""
    fig = Figure(figsize=(WIDTH, 2))
    ax = fig.add_subplot()
    fig.patch.set_visible(False)
    ax.patch.set_visible(False)
    # No tick marks at all: matplotlib would still write an (invisible) marker per tick.
    ax.tick_params(which="both", bottom=False, left=False)
    return fig, ax


def _figure(kind: str, height: float, left: float = 0.4) -> tuple[Figure, Axes]:
    """The ``kind``'s figure, emptied of the last chart's bars, lines and texts and sized for
    this one. Whatever a chart sets (limits, ticks, labels) it sets every time, so a chart's
    SVG never depends on the one drawn before it."""
    fig, ax = _canvas(kind)
    for artist in [*ax.patches, *ax.lines, *ax.texts]:
        artist.remove()
    fig.set_size_inches(WIDTH, height)
    _margins(fig, height, left)
    return fig, ax


def _rects(ax: Axes, boxes: Sequence[tuple[float, float, float, float]], **style: object) -> None:
    """Rectangles (x, y, width, height) as one compound path: one SVG element for all."""
    boxes = [b for b in boxes if b[2] and b[3]]
    if not boxes:
        return
    verts = np.array(
        [[(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)] for x, y, w, h in boxes], dtype=float
    ).reshape(-1, 2)
    codes = np.tile([Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY], len(boxes))
    ax.add_patch(PathPatch(Path(verts, codes), **style))


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    # Fixed margins (set where the figure is made) instead of bbox_inches="tight", which
    # draws every figure twice to measure it. No metadata block: every key None.
    fig.savefig(buf, format="svg", metadata=dict.fromkeys(("Creator", "Date", "Format", "Type")))
    return lean(buf.getvalue())


_STYLE = re.compile(
    r'<defs>\s*<style type="text/css">\*\{stroke-linejoin: round; stroke-linecap: butt\}</style>\s*</defs>\s*'
)
_NO_ROTATION = re.compile(r' transform="rotate\(-0 [-0-9.e]+ [-0-9.e]+\)"')
_GROUP = re.compile(r'\s*<g id="[^"]*">|\s*</g>')


def lean(svg: str) -> str:
    """Matplotlib's SVG without what WeasyPrint pays for and draws nothing from: the group
    around each artist (an id only), text rotations by -0 degrees, and the stylesheet
    ``*{stroke-linejoin: round; ...}`` that WeasyPrint matches against every element (the
    round join becomes an attribute of the root, which its children inherit).

    >>> lean('<svg w="1"><defs><style type="text/css">*{stroke-linejoin: round; stroke-linecap: '
    ...      'butt}</style></defs><g id="axes_1"><text transform="rotate(-0 1 2)">9</text></g></svg>')
    '<svg stroke-linejoin="round" w="1"><text>9</text></svg>'
    """
    svg, styled = _STYLE.subn("", svg, count=1)
    if styled:
        svg = svg.replace("<svg ", '<svg stroke-linejoin="round" ', 1)
    return _GROUP.sub("", _NO_ROTATION.sub("", svg))


def availability_bars(
    names: Sequence[str], values: Sequence[float], target: float | Sequence[float], colour: str
) -> str:
    """Horizontal bars in percent; each bar below its own target is hatched white, and the
    target is a dashed line (one shared target) or a black tick on each bar (one each)."""
    targets = [float(target)] * len(names) if isinstance(target, int | float) else [float(t) for t in target]
    height = 0.28 * len(names) + 0.6
    # Room for the longest name at ~0.062 in per character of 8 pt DejaVu Sans.
    fig, ax = _figure("bars", height, left=0.2 + 0.062 * max((len(n) for n in names), default=4))
    pct = [v * 100 for v in values]
    lo = min([*pct, *targets]) - 0.5
    edge = {"edgecolor": "black", "linewidth": 0.4}
    _rects(
        ax,
        [(lo, i - 0.4, p - lo, 0.8) for i, (p, t) in enumerate(zip(pct, targets, strict=True)) if p >= t],
        facecolor=colour,
        **edge,
    )
    below = [(lo, i - 0.4, p - lo, 0.8) for i, (p, t) in enumerate(zip(pct, targets, strict=True)) if p < t]
    _rects(ax, below, facecolor="white", hatch="////", **edge)
    ax.set_yticks(range(len(names)), list(names))
    ax.set_ylim(len(names) - 0.5, -0.5)  # first name on top
    if len(set(targets)) <= 1:
        ax.axvline(targets[0], color="black", linestyle="--", linewidth=0.8)
        ax.text(targets[0], -0.5, f" target {targets[0]:g}%", fontsize=7, va="bottom")
    else:
        ticks = np.array([[(t, i - 0.45), (t, i + 0.45)] for i, t in enumerate(targets)]).reshape(-1, 2)
        codes = np.tile([Path.MOVETO, Path.LINETO], len(targets))
        ax.add_patch(PathPatch(Path(ticks, codes), edgecolor="black", linewidth=1.6, fill=False))
    ax.set_xlim(lo, 100.02)
    # Five or six labels: WeasyPrint lays out an SVG text letter by letter, ~0.3 ms each.
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    return _svg(fig)


def daily_downtime(days: Sequence[int], minutes: Sequence[int], tz: str, colour: str) -> str:
    """Down minutes per day of the month (contract hours, outside maintenance)."""
    fig, ax = _figure("daily", 1.6)
    labels = [dt.datetime.fromtimestamp(d, ZoneInfo(tz)).day for d in days]
    _rects(
        ax,
        [(x - 0.4, 0, 0.8, m) for x, m in zip(labels, minutes, strict=True)],
        facecolor=colour,
        edgecolor="black",
        linewidth=0.4,
    )
    ax.set_xlim(0.4, max(labels, default=30) + 0.6)
    ax.set_ylim(0, max(max(minutes, default=0), 1) * 1.05)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.set_xticks([d for d in labels if d == 1 or d % 5 == 0])
    return _svg(fig)


def trend(points: Sequence[tuple[int, float]], tz: str, target: float | None = None) -> str:
    """A daily trend in percent, with an optional target line; each point is taken at the
    end of a day (local midnight) and drawn on the day that just ended."""
    fig, ax = _figure("trend", 1.4)
    xs = [dt.datetime.fromtimestamp(t - 1, ZoneInfo(tz)).day for t, _ in points]
    ys = [v * 100 for _, v in points]
    ax.plot(xs, ys, color="black", linewidth=1.2)  # one path; per-point markers cost a node each
    if target is not None:
        ax.axhline(target, color=GREY, linestyle="--", linewidth=0.8)
        # At the right end, on the side of the dashed line away from where the series ends
        # (the month-end figure the text states), so the series does not strike through it.
        below = bool(ys) and ys[-1] >= target
        ax.text(
            xs[-1] if xs else 30,
            target,
            f"target {target:g}% ",
            fontsize=7,
            ha="right",
            va="top" if below else "bottom",
            color="black",
        )
    ax.set_xlim(0.4, max(xs, default=30) + 0.6)
    ax.set_ylim(0, 105)
    ax.set_yticks([0, 50, 100])
    ax.set_xticks([d for d in xs if d == 1 or d % 5 == 0])
    return _svg(fig)


def warm() -> None:
    """Draw one chart of each kind (fonts, figures and their ticks made once per process)."""
    availability_bars(["a"], [0.999], 99.9, "#000000")
    daily_downtime([86400], [1], "UTC", "#000000")
    trend([(86400, 0.5)], "UTC", 50.0)
