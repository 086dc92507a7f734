"""The exit report to the provincial communications administration (报省通信管理局): the SP
(licence, service code, hotline, revenue share), its services, its record (points,
cards in force, violations) and every decision with its reason, evidence, maker and
checker. ``report_lines`` is the content (tested as text); ``render_pdf`` lays it out with
fpdf2 in a CJK font found on the machine (Noto Sans CJK or WenQuanYi); without one, the
Chinese characters are replaced and the report says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.money import yuan
from mobipay.sp.model import CLASSES, LEVELS, Record, describe

FONTS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)


def _t(at: Any) -> str:
    return f"{as_utc(at).astimezone(SHANGHAI):%Y-%m-%d %H:%M}" if at is not None else "-"


def report_lines(sp: Any, services: Sequence[Any], record: Record, decisions: Sequence[Any],
                 complaints: tuple[int, int, float], now: datetime) -> list[str]:
    """The report's content, one paragraph per line; a line starting with "# " is a heading."""
    n, subs, rate = complaints
    lines = [
        "# SP退出报告 Report of an SP's exit",
        "报送：省通信管理局 To: the provincial communications administration",
        f"生成时间 Generated: {_t(now)} (Beijing time)",
        "# SP",
        f"名称 Name: {sp.name}",
        f"服务代码 Service code: {sp.code}",
        f"经营许可证 Licence: {sp.licence}",
        f"客服电话 Hotline: {sp.hotline}",
        f"分成比例 Revenue share: {sp.share_bp / 100:.2f}%",
        f"注册 Registered: {_t(sp.registered_at)}; 退出 Exited: {_t(sp.exited_at)}",
        "# 业务 Services",
        *[f"{s.keyword} {s.name}: {yuan(s.price)} CNY {'per message' if s.cycle == 'per_message' else 'per month'}"
          f"{'' if s.online else ' (offline)'}" for s in services],
        "# 信用记录 Record",
        f"信用分 Credit points now: {record.points(now)}",
        f"黄牌 Yellow card in force: level {record.yellow_level(now) or 'none'}; "
        f"红牌 Red card in force: {'yes' if record.red(now) else 'no'}",
        f"违规次数 Violations in force: {len(record.violations)}",
        f"退出当月投诉 Complaints in the month of exit: {n} from {subs} subscribers ({rate} per 10,000)",
        "# 处理决定 Decisions",
    ]
    for d in decisions:
        what = (f"{CLASSES.get(d.cls, d.cls)} / {LEVELS.get(d.level, d.level)}, rung {d.rung}"
                if d.kind == "violation" else d.kind)
        lines.append(f"{_t(d.created_at)} [{d.state}] {what}: {describe(d.steps)}")
        lines.append(f"    理由 Reason: {d.reason}; 证据 Evidence: {d.evidence or '-'}; "
                     f"maker {d.maker}, checker {d.checker or '-'}"
                     + (f"; 申诉 Appeal: {d.appeal} ({d.appeal_outcome or 'open'})" if d.appeal else ""))
    return lines


def render_pdf(title: str, lines: Sequence[str]) -> bytes:
    """The lines as an A4 PDF."""
    from fpdf import FPDF  # imported here: fpdf (with PIL, numpy, fontTools) costs every CLI start 0.3 s

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_author("mobipay SP governance")
    pdf.set_creation_date(datetime(2000, 1, 1))  # the content carries its own date; bytes stay reproducible
    font = next((f for f in FONTS if f.exists()), None)
    if font is not None:
        pdf.add_font("cjk", fname=str(font))
        family = "cjk"
    else:
        family = "helvetica"
        lines = ["(No CJK font on this machine: Chinese characters are shown as ?)",
                 *(line.encode("latin-1", "replace").decode("latin-1") for line in lines)]
    pdf.add_page()
    for line in lines:
        heading = line.startswith("# ")
        pdf.set_font(family, size=14 if heading else 10)
        pdf.multi_cell(0, 8 if heading else 6, line[2:] if heading else line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
