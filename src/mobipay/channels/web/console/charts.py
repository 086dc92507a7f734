"""The dashboard's charts, drawn by matplotlib on the server as SVG and served from our own
origin (the CSP allows nothing else). Object-oriented matplotlib (a ``Figure`` per chart,
no pyplot state), so charts can be drawn in worker threads at the same time.

The server has no CJK font, so a label that is not ASCII (a city) is drawn as ``#n`` and
the page's table beside the chart names it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import lru_cache

from matplotlib import rcParams
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from mobipay.platform.kpi import Kpis, Volume

# Text as SVG text, not glyph outlines: several times faster to draw, smaller, and the
# browser's own fonts show it.
rcParams["svg.fonttype"] = "none"

CHARTS: dict[str, Callable[[Kpis], list[Volume]]] = {
    "product": lambda k: k.by_product,
    "city": lambda k: k.by_city,
    "day": lambda k: k.by_day,
}
TITLES = {"product": "Payment volume by product", "city": "Payment volume by city", "day": "Payment volume by day"}


def label(i: int, key: str) -> str:
    return key if key.isascii() else f"#{i + 1}"


def render(name: str, figures: Kpis) -> bytes:
    """One chart as SVG bytes: bars of CNY (left axis) and the count as a line (right axis).
    The same figures draw the same chart, so a drawing is reused until the figures change."""
    return _draw(name, tuple((r.key, r.count, r.amount) for r in CHARTS[name](figures)))


@lru_cache(maxsize=64)
def _draw(name: str, data: tuple[tuple[str, int, int], ...]) -> bytes:
    rows = [Volume(key, count, amount) for key, count, amount in data]
    fig = Figure(figsize=(max(6.0, 0.3 * len(rows) + 2.5), 3.6))
    FigureCanvasSVG(fig)
    fig.subplots_adjust(left=0.1, right=0.9, top=0.88, bottom=0.25)  # fixed: tight_layout cost half the time
    ax = fig.add_subplot()
    keys = [label(i, r.key) for i, r in enumerate(rows)]
    positions = list(range(len(rows)))
    ax.bar(positions, [r.amount / 100 for r in rows], color="#1677ff", label="CNY")
    step = max(1, len(rows) // 15)  # at most ~15 labels: every tick label is costly to lay out
    ax.set_xticks(positions[::step], keys[::step], rotation=45 if len(rows) > 6 else 0, ha="right"
                  if len(rows) > 6 else "center")
    ax.set_ylabel("CNY")
    if rows:
        counts = ax.twinx()
        counts.plot(positions, [r.count for r in rows], color="#fa8c16", marker="o" if len(rows) <= 12 else None,
                    label="count")
        counts.set_ylabel("count")
        counts.set_ylim(bottom=0)
    else:
        ax.text(0.5, 0.5, "no payments in this window", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(TITLES[name])
    out = io.BytesIO()
    fig.savefig(out, format="svg")
    return out.getvalue()
