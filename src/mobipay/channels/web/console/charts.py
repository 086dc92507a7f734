"""The dashboard's charts, drawn by matplotlib on the server as SVG and served from our own
origin (the CSP allows nothing else). Object-oriented matplotlib (a ``Figure`` per chart,
no pyplot state), so charts can be drawn in worker threads at the same time.

The server has no CJK font, so a label that is not ASCII (a city) is drawn as ``#n`` and
the page's table beside the chart names it.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from mobipay.platform.kpi import Kpis, Volume

CHARTS: dict[str, Callable[[Kpis], list[Volume]]] = {
    "product": lambda k: k.by_product,
    "city": lambda k: k.by_city,
    "day": lambda k: k.by_day,
}
TITLES = {"product": "Payment volume by product", "city": "Payment volume by city", "day": "Payment volume by day"}


def label(i: int, key: str) -> str:
    return key if key.isascii() else f"#{i + 1}"


def render(name: str, figures: Kpis) -> bytes:
    """One chart as SVG bytes: bars of CNY (left axis) and the count as a line (right axis)."""
    rows = CHARTS[name](figures)
    fig = Figure(figsize=(max(6.0, 0.45 * len(rows) + 2.5), 3.6))
    FigureCanvasSVG(fig)
    ax = fig.add_subplot()
    keys = [label(i, r.key) for i, r in enumerate(rows)]
    ax.bar(keys, [r.amount / 100 for r in rows], color="#1677ff", label="CNY")
    ax.set_ylabel("CNY")
    if rows:
        counts = ax.twinx()
        counts.plot(keys, [r.count for r in rows], color="#fa8c16", marker="o", label="count")
        counts.set_ylabel("count")
        counts.set_ylim(bottom=0)
    else:
        ax.text(0.5, 0.5, "no payments in this window", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(TITLES[name])
    ax.tick_params(axis="x", labelrotation=45 if len(rows) > 6 else 0)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="svg")
    return out.getvalue()
