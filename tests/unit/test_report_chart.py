"""The volume report's chart draws Chinese with the CJK font given by its file (上海, not
"#1"), and without that file falls back to ASCII labels, never to boxes."""

from __future__ import annotations

import os
import warnings
from datetime import date
from pathlib import Path

import pytest

from mobipay.channels.words import kind_name
from mobipay.platform.config import Settings
from mobipay.reporting.reports import VolumeRow, chart, write

DAY = date(2026, 11, 25)
CITIES = [VolumeRow("上海", 3, 15_000), VolumeRow("北京", 1, 2_000), VolumeRow("-", 1, 500)]
FONT = Settings(_env_file=None).chart_font  # type: ignore[call-arg]


@pytest.fixture
def cjk_font() -> Path:
    if not FONT.is_file():
        if os.environ.get("MOBIPAY_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{FONT} is missing: CI installs it with apt-get install -y fonts-noto-cjk")
        pytest.skip(f"{FONT} is missing: apt-get install -y fonts-noto-cjk")
    return FONT


def _texts(fig: object) -> tuple[list[str], str, list[str]]:
    ax = fig.axes[0]  # type: ignore[attr-defined]
    ticks = ax.get_xticklabels()
    return [t.get_text() for t in ticks], ax.get_title(), [t.get_fontproperties().get_file() or "" for t in ticks]


def test_chinese_labels_with_the_font_file(cjk_font: Path, tmp_path: Path) -> None:
    labels, title, files = _texts(chart(CITIES, "city", DAY, DAY, font=cjk_font))
    assert labels == ["上海", "北京", "-"]
    assert "按城市" in title and "北京时间" in title
    assert all(Path(f) == cjk_font for f in files)
    products = [VolumeRow("topup", 2, 10_000), VolumeRow("bill", 1, 4_000)]
    assert _texts(chart(products, "product", DAY, DAY, font=cjk_font, label=kind_name))[0] == ["话费充值", "生活缴费"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph … missing from font" for every box it draws
        _, png = write(CITIES, "city", DAY, DAY, tmp_path, font=cjk_font)
    assert png.stat().st_size > 1000


def test_without_the_font_labels_fall_back_to_ascii(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-font.ttc"
    labels, title, _ = _texts(chart(CITIES, "city", DAY, DAY, font=missing))
    assert labels == ["#1", "#2", "-"] and title.isascii()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        csv_path, png = write(CITIES, "city", DAY, DAY, tmp_path, font=missing)
    assert "上海" in csv_path.read_text(encoding="utf-8") and png.stat().st_size > 1000
