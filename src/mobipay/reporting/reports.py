"""The operator's KPI reports: volume and count of what was paid through partners
(top-up, bills, cash-in/out, operator products, insurance, lottery) by product, bill
category, city and day, as a CSV file and a bar chart (PNG, drawn by matplotlib).

Reads settled partner orders in a window of Shanghai days. It is a query, not a rollup:
fine for a day or a month of a demo; the console's dashboards (issue "Web") get rollups.

The chart speaks Chinese (上海, 话费充值) with a CJK font given by its file (``chart_font``,
Noto Sans CJK from Debian's fonts-noto-cjk), registered with matplotlib for this figure only,
so no system font lookup decides it. Without the file the chart falls back to an English
title and ``#1``, ``#2``… for labels that are not ASCII (the CSV names them), never boxes.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import structlog
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from sqlalchemy import select

from mobipay.kernel.clock import SHANGHAI
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.model import OrderState
from mobipay.orders.tables import partner_orders

log = structlog.get_logger(__name__)

DIMENSIONS = ("product", "category", "city", "day")
TITLES = {"product": ("按产品", "product"), "category": ("按缴费类别", "category"), "city": ("按城市", "city"),
          "day": ("按日", "day")}


@dataclass(frozen=True, slots=True)
class VolumeRow:
    key: str
    count: int
    amount: int  # fen


async def volumes(uow: UnitOfWorkRunner, first: date, last: date, by: str) -> list[VolumeRow]:
    """Succeeded orders settled from ``first`` to ``last`` (Shanghai days, inclusive), grouped."""
    if by not in DIMENSIONS:
        raise ValueError(f"group by one of {', '.join(DIMENSIONS)}")
    start = datetime.combine(first, datetime.min.time(), SHANGHAI).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), SHANGHAI).astimezone(UTC)

    async def work(u: UnitOfWork) -> list[VolumeRow]:
        rows = await u.conn.execute(select(partner_orders.c.kind, partner_orders.c.amount, partner_orders.c.details,
                                           partner_orders.c.settled_at).where(
            partner_orders.c.state == OrderState.SUCCEEDED.value, partner_orders.c.settled_at >= start,
            partner_orders.c.settled_at < end))
        return _group(rows, by)

    return await uow.run("report_volumes", work)


def _group(rows: Iterable[tuple[str, int, str, datetime]], by: str) -> list[VolumeRow]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for kind, amount, details, settled_at in rows:
        d = json.loads(details)
        if by == "product":
            key = kind
        elif by == "category":
            key = d.get("category") or kind
        elif by == "city":
            key = d.get("city") or "-"
        else:
            at = settled_at if settled_at.tzinfo else settled_at.replace(tzinfo=UTC)
            key = at.astimezone(SHANGHAI).date().isoformat()
        totals[key][0] += 1
        totals[key][1] += amount
    order = sorted(totals) if by == "day" else sorted(totals, key=lambda k: -totals[k][1])
    return [VolumeRow(k, totals[k][0], totals[k][1]) for k in order]


def chart(rows: list[VolumeRow], by: str, first: date, last: date, *, font: Path | None = None,
          label: Callable[[str], str] = str) -> Figure:
    """The bar chart of ``rows`` (CNY); ``label`` names a key (a kind code in Chinese).
    With ``font`` (a CJK font file) its labels and title are Chinese; without, ASCII."""
    fig = Figure(figsize=(max(6.0, 0.5 * len(rows) + 2), 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    props = _font(font)
    names = [label(r.key) for r in rows]
    if props is None:
        names = [n if n.isascii() else f"#{i + 1}" for i, n in enumerate(names)]
    positions = list(range(len(rows)))
    ax.bar(positions, [r.amount / 100 for r in rows], color="#1677ff")
    ax.set_xticks(positions, names, rotation=45, ha="right", fontproperties=props)
    if props is None:
        ax.set_ylabel("CNY")
        ax.set_title(f"Volume by {TITLES[by][1]}, {first} to {last} (Shanghai)")
    else:
        ax.set_ylabel("金额（元）", fontproperties=props)
        ax.set_title(f"交易额{TITLES[by][0]}统计，{first} 至 {last}（北京时间）", fontproperties=props)
    fig.tight_layout()
    return fig


def _font(path: Path | None) -> FontProperties | None:
    """The CJK font of ``path``, or None (and one warning) when the file is not there."""
    if path is None:
        return None
    if not path.is_file():
        log.warning("reports.chart_font_missing", font=str(path),
                    hint="apt-get install fonts-noto-cjk, or set MOBIPAY_CHART_FONT to a CJK font file")
        return None
    return FontProperties(fname=path)


def write(rows: list[VolumeRow], by: str, first: date, last: date, out_dir: Path, *, font: Path | None = None,
          label: Callable[[str], str] = str) -> tuple[Path, Path]:
    """The report as ``volumes-<by>-<first>-<last>.csv`` and ``.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"volumes-{by}-{first.isoformat()}-{last.isoformat()}"
    with stem.with_suffix(".csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([by, "count", "amount_fen", "amount_cny"])
        for r in rows:
            writer.writerow([r.key, r.count, r.amount, f"{r.amount / 100:.2f}"])
    chart(rows, by, first, last, font=font, label=label).savefig(stem.with_suffix(".png"))
    return stem.with_suffix(".csv"), stem.with_suffix(".png")
