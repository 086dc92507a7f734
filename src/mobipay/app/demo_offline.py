"""Demo data for in-store payments: 15,000 offline merchants (restaurants, shops, cinemas and
other entertainment) in the reference data's 50 cities, each with 1-3 stores and 1-2 POS
terminals per store, loaded by ``mobipay demo`` (:func:`load_offline_merchants`).

Onboarding as :meth:`MerchantService.apply` does it, in bulk: every merchant is a low-risk
category's, so it is ``approved`` by rule with that reason, and carries its category's fee,
settlement cycle and limits, a settlement account, and its payable account
``liability:merchant:<id>`` opened through the ledger's bulk path
(:meth:`Ledger.open_accounts_bulk`); the ``merchant.apply`` audit entry is written as
onboarding writes it, and each terminal's ``instore.terminal.register`` entry as
:meth:`Terminals.register` writes it. The rows are bulk inserts into the merchants' and
in-store tables in one transaction (COPY on PostgreSQL, ``executemany`` on SQLite), so a
load is all there or not at all.

**The terminals' keys are public.** A demo terminal's Ed25519 private key is derived from its
id (:func:`demo_terminal_seed`: the SHA-256 of ``mobipay-demo-terminal-v1:`` and the id is
the 32-byte seed), so anyone can sign requests as a demo terminal: that is the point of a
demo (``mobipay instore demo-terminal-key <terminal_id>`` prints it) and why these merchants
are never loaded in production.

Deterministic and idempotent: merchant ``j`` is always ``mch_off<j>`` with the same name,
city, stores and terminals (its own seeded random generator), and merchants already there
are skipped, so running it again adds nothing and a larger ``count`` adds the rest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from itertools import accumulate
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.app.bootstrap import Container
from mobipay.app.demo_big import BIG_CITIES
from mobipay.instore.cities import City, cities
from mobipay.instore.signature import public_of
from mobipay.instore.tables import terminals
from mobipay.ledger.model import AccountKind, AccountSpec
from mobipay.merchants.model import Category, credit_code_check_char
from mobipay.merchants.tables import merchants, stores
from mobipay.platform.audit import audit_log
from mobipay.platform.config import Environment

OFFLINE_MERCHANTS = 15_000
SEED = 1919  # of merchant j's generator: SEED * 1_000_003 + j
KEY_CONTEXT = "mobipay-demo-terminal-v1:"  # what a demo terminal's key is derived from, with its id
PREFIX = "off"  # mch_off00000, sto_off000001, trm_off0000011
APPROVED_REASON = "low-risk category: approved by rule"  # as MerchantService.apply writes it

#: (MCC, share of the merchants, kinds of business: the end of a shop's name). Restaurants,
#: retail and entertainment, every one a low-risk category of merchants/data/mcc.csv.
KINDS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("5812", 0.45, ("面馆", "饺子馆", "火锅店", "川菜馆", "湘菜馆", "粤菜馆", "烧烤", "小吃店", "茶餐厅", "米粉店",
                    "包子铺", "麻辣烫", "咖啡馆", "奶茶店", "酒家", "私房菜", "烤鸭店", "快餐店", "砂锅粥", "拉面馆")),
    ("5411", 0.25, ("便利店", "超市", "生鲜超市", "水果店", "粮油店", "烟酒店", "副食店", "便民超市")),
    ("5311", 0.06, ("百货", "百货商店", "商场")),
    ("5942", 0.06, ("书店", "书屋", "图书城")),
    ("7832", 0.07, ("影城", "电影院", "国际影城")),
    ("7932", 0.06, ("台球俱乐部", "桌球馆")),
    ("7996", 0.05, ("游乐园", "儿童乐园", "欢乐世界")),
)
#: Dishes named after their home town, as many small restaurants are (兰州牛肉面, 沙县小吃).
DISHES = ("兰州牛肉面", "沙县小吃", "重庆小面", "桂林米粉", "柳州螺蛳粉", "黄焖鸡米饭", "杨国福麻辣烫", "东北饺子",
          "潮汕牛肉火锅", "新疆大盘鸡", "武汉热干面", "西安肉夹馍", "老北京炸酱面", "延吉冷面", "山西刀削面")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英",
         "霞", "平", "刚", "桂英", "建华", "志强", "海燕", "晓明", "玉兰", "国强", "春梅", "文博")
LUCKY = "福金鸿聚鑫隆德顺兴祥瑞盛华泰康和嘉悦宏丰旺源佳美乐喜安"
ROADS = ("人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "胜利路", "文化路", "朝阳路", "青年路", "长江路",
         "黄河路", "光明路", "东风路", "民主路", "友谊路", "健康路", "幸福路", "学府路", "滨江路", "环城路", "北京路",
         "南京路", "花园路", "工业路", "团结路", "迎宾大道", "世纪大道", "金融街", "步行街")


@dataclass
class OfflineReport:
    merchants_created: int = 0
    merchants_total: int = 0  # of the count asked for, there now
    stores: int = 0  # created by this run
    terminals: int = 0
    seconds: float = 0.0
    skipped: bool = False  # production: nothing is loaded


def demo_terminal_seed(terminal_id: str) -> str:
    """A demo terminal's private key, the base64 Ed25519 seed as the platform shows a key it
    makes: SHA-256(``mobipay-demo-terminal-v1:`` + terminal id). Public on purpose: only the
    demo's terminals have keys anyone can compute."""
    return base64.b64encode(hashlib.sha256((KEY_CONTEXT + terminal_id).encode()).digest()).decode()


def merchant_id(j: int) -> str:
    return f"mch_{PREFIX}{j:05d}"


def _name(rng: random.Random, mcc: str, kinds: tuple[str, ...], city: City) -> str:
    """A shop's name made of parts: a trade name (字号) and its kind of business."""
    kind = rng.choice(kinds)
    if mcc == "5812" and rng.random() < 0.2:
        return rng.choice(DISHES) + ("" if rng.random() < 0.5 else rng.choice(("馆", "店", "王")))
    style = rng.random() if mcc in ("5812", "5411") else rng.choice((0.0, 0.9))  # 老王家 is a diner, not a cinema
    if style < 0.45:
        trade = rng.choice(LUCKY) + rng.choice(LUCKY)
    elif style < 0.7:
        trade = rng.choice(SURNAMES) + "记"
    elif style < 0.85:
        trade = "老" + rng.choice(SURNAMES) + "家"
    else:
        trade = city.name + rng.choice(LUCKY) + rng.choice(LUCKY)  # 杭州鑫隆超市
    return trade + kind


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def merchant_rows(j: int, city: City, categories: dict[str, Category], now: datetime
                  ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Merchant ``j``'s rows: (merchant, its stores, their terminals, the audit entries).
    Deterministic: the same ``j`` and city give the same rows whatever else is loaded."""
    rng = random.Random(SEED * 1_000_003 + j)
    mcc, _, kinds = rng.choices(KINDS, [share for _, share, _ in KINDS])[0]
    cat = categories[mcc]
    mid = merchant_id(j)
    name = _name(rng, mcc, kinds, city)
    first17 = f"92{city.division}{j:09d}"  # 9 registered by market regulation, 2 an individual business (个体工商户)
    created = now - timedelta(days=rng.uniform(30, 730))
    merchant = {
        "id": mid, "name": name, "credit_code": first17 + credit_code_check_char(first17),
        "legal_person": _person(rng), "contact_msisdn": f"+86137{20_000_000 + j:08d}", "mcc": mcc, "website": "",
        "settlement_account": f"6217{city.division}{j:09d}", "state": "approved", "reason": APPROVED_REASON,
        "fee_bps": cat.fee_bps, "settlement_days": cat.settlement_days, "per_trade_limit": cat.per_trade_limit,
        "daily_limit": cat.daily_limit, "account_code": f"liability:merchant:{mid}", "created_at": created,
        "updated_at": created, "application_token_hash": None, "applicant_note": ""}
    audits = [_audit(f"aud_{mid}", created, "merchant", "merchant.apply", mid, name,
                     {"state": "approved", "mcc": mcc})]
    store_rows, terminal_rows = [], []
    roads = rng.sample(ROADS, 3)
    for k in range(1 + (rng.random() < 0.35) + (rng.random() < 0.15)):  # 1-3 stores, most shops have one
        sid = f"sto_{PREFIX}{j:05d}{k}"
        opened = min(created + timedelta(days=rng.uniform(0, 20) + 90 * k), now - timedelta(days=1))  # never ahead
        branch = f"（{roads[k]}店）" if k or rng.random() < 0.5 else ""  # 福瑞面馆（人民路店）
        store_rows.append({"id": sid, "merchant_id": mid, "name": name + branch,
                           "address": f"{city.name}市{roads[k]}{rng.randrange(1, 999)}号", "created_at": opened,
                           "city": city.name})
        for t in range(1 + (rng.random() < 0.4)):  # 1-2 tills
            tid = f"trm_{PREFIX}{j:05d}{k}{t}"
            label = f"POS-{t + 1:02d}"
            at = opened + timedelta(hours=rng.uniform(1, 20))  # the day it opened
            terminal_rows.append({"id": tid, "merchant_id": mid, "store_id": sid, "label": label,
                                  "public_key": public_of(demo_terminal_seed(tid)), "state": "active",
                                  "created_at": at})
            audits.append(_audit(f"aud_{tid}", at, f"{mid}/demo", "instore.terminal.register", tid,
                                 f"terminal {label} of store {sid}",
                                 {"store_id": sid, "label": label, "state": "active",
                                  "key": "the demo's (derived from the terminal id)"}))
    return merchant, store_rows, terminal_rows, audits


def _audit(entry_id: str, at: datetime, actor: str, action: str, target: str, reason: str,
           after: dict[str, Any]) -> dict[str, Any]:
    """An audit row as platform.audit.record writes it."""
    return {"id": entry_id, "at": at, "actor": actor, "action": action, "target": target, "reason": reason,
            "before": None, "after": json.dumps(after, ensure_ascii=False)}


def city_of(j: int) -> City:
    """Merchant ``j``'s city: the first 50 one in each city, then bigger cities more often
    (the demo's subscribers are spread the same way)."""
    every = cities()
    if j < len(every):
        return every[j]
    return random.Random(SEED * 7 + j).choices(every, cum_weights=_weights())[0]


@cache
def _weights() -> list[float]:
    """Cumulative weights of the cities: the biggest first and heaviest (Zipf-like, as demo_big's)."""
    return list(accumulate(1 / (1 + (BIG_CITIES.index(c.name) if c.name in BIG_CITIES else len(BIG_CITIES))) ** 0.8
                           for c in cities()))


async def _bulk(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows in the caller's transaction: COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        cols = list(rows[0])
        raw = await conn.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=[tuple(r[c] for c in cols) for r in rows], columns=cols)
        return
    await conn.execute(insert(table), list(rows))


async def load_offline_merchants(c: Container, count: int = OFFLINE_MERCHANTS,
                                 progress: Callable[[str], None] | None = None) -> OfflineReport:
    """Load the demo's ``count`` offline merchants with their stores and terminals (module
    docstring); nothing in production, where demo terminals' public keys would let anyone pay
    as a till."""
    report = OfflineReport()
    if c.settings.env is Environment.PRODUCTION:
        report.skipped = True
        return report
    started = time.monotonic()
    say = progress or (lambda _line: None)
    async with c.db.begin() as conn:
        there = set((await conn.execute(select(merchants.c.id).where(merchants.c.id.like(f"mch_{PREFIX}%")))
                     ).scalars())
    wanted = [j for j in range(count) if merchant_id(j) not in there]
    report.merchants_total = count - len(wanted)
    if not wanted:
        report.seconds = time.monotonic() - started
        return report
    say(f"  offline merchants: {len(wanted):,} with their stores and POS terminals …")
    categories = c.merchants.categories
    now = c.clock.now()
    m_rows: list[dict[str, Any]] = []
    s_rows: list[dict[str, Any]] = []
    t_rows: list[dict[str, Any]] = []
    a_rows: list[dict[str, Any]] = []
    for j in wanted:
        merchant, store_rows, terminal_rows, audits = merchant_rows(j, city_of(j), categories, now)
        m_rows.append(merchant)
        s_rows += store_rows
        t_rows += terminal_rows
        a_rows += audits
    await c.ledger.open_accounts_bulk([
        AccountSpec(m["account_code"], AccountKind.LIABILITY, name=f"Payable to {m['name']}",
                    debits_must_not_exceed_credits=True) for m in m_rows])
    async with c.db.begin() as conn:
        if (await conn.execute(select(merchants.c.id).where(merchants.c.id == m_rows[0]["id"]))).first():
            report.merchants_total = count  # another run loaded them meanwhile
            return report
        for table, rows in ((merchants, m_rows), (stores, s_rows), (terminals, t_rows), (audit_log, a_rows)):
            for start in range(0, len(rows), 20_000):
                await _bulk(conn, table, rows[start:start + 20_000])
    report.merchants_created = len(m_rows)
    report.merchants_total = count
    report.stores, report.terminals = len(s_rows), len(t_rows)
    report.seconds = time.monotonic() - started
    return report


@dataclass(frozen=True, slots=True)
class DemoTerminalKey:
    terminal_id: str
    private_key: str  # base64 Ed25519 seed, as POST /v1/merchant/terminals shows a key it makes
    public_key: str
    registered: bool  # a terminal with this id exists
    matches: bool  # and the platform keeps this public key for it (not re-keyed since)


async def demo_terminal_key(c: Container, terminal_id: str) -> DemoTerminalKey:
    """A demo terminal's key and whether the platform still has it as the terminal's key."""
    seed = demo_terminal_seed(terminal_id)
    public = public_of(seed)
    async with c.db.begin() as conn:
        kept = (await conn.execute(select(terminals.c.public_key).where(terminals.c.id == terminal_id))
                ).scalar_one_or_none()
    return DemoTerminalKey(terminal_id, seed, public, kept is not None, kept == public)
