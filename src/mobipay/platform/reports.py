"""The operator's KPI reports: volume and count of what was paid through partners
(top-up, bills, cash-in/out, operator products, insurance, lottery) by product, bill
category, city and day, as a CSV file and a bar chart (PNG, drawn by matplotlib).

Reads settled partner orders in a window of Shanghai days. It is a query, not a rollup:
fine for a day or a month of a demo; the console's dashboards (issue "Web") get rollups.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.orders import OrderState
from mobipay.platform.partner_orders import partner_orders
from mobipay.platform.uow import UnitOfWork, UnitOfWorkRunner

DIMENSIONS = ("product", "category", "city", "day")


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


def write(rows: list[VolumeRow], by: str, first: date, last: date, out_dir: Path) -> tuple[Path, Path]:
    """The report as ``volumes-<by>-<first>-<last>.csv`` and ``.png`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"volumes-{by}-{first.isoformat()}-{last.isoformat()}"
    with stem.with_suffix(".csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([by, "count", "amount_fen", "amount_cny"])
        for r in rows:
            writer.writerow([r.key, r.count, r.amount, f"{r.amount / 100:.2f}"])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(rows) + 2), 4))
    ax.bar([r.key if r.key.isascii() else f"#{i + 1}" for i, r in enumerate(rows)], [r.amount / 100 for r in rows])
    ax.set_ylabel("CNY")
    ax.set_title(f"Volume by {by}, {first} to {last} (Shanghai)")
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"))
    plt.close(fig)
    return stem.with_suffix(".csv"), stem.with_suffix(".png")
