"""The PostgreSQL batch statements of the ledger and the parameters they take.

Every array parameter travels as ONE text value in PostgreSQL's array-literal syntax and
is parsed by the server; see decision 0002 for the measurements behind each choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text

from mobipay.ledger.model import Outcome, TransferType, metadata_json
from mobipay.ledger.tables import ACCOUNT_COLS


def lock_sql(codes: str) -> str:
    """Lock the accounts whose codes the subquery ``codes`` yields, in id order (so two
    batches never wait on each other in a cycle); rows of :data:`ACCOUNT_COLS`."""
    return f"SELECT {ACCOUNT_COLS} FROM ledger_accounts WHERE code IN ({codes}) ORDER BY id FOR UPDATE"


PG_LOCK = text(lock_sql("SELECT unnest(CAST(CAST(:codes AS text) AS text[]))"))
# (``IN (SELECT unnest(...))``, not ``= ANY(...)``: a prepared statement's generic plan
# then still probes the index per element instead of scanning the table.)
PG_EXISTING = text(
    "SELECT id FROM ledger_transfers WHERE id IN (SELECT unnest(CAST(CAST(:ids AS text) AS text[])))"
)

# Every array travels as ONE text parameter in PostgreSQL's array-literal syntax and is
# parsed by the server (``CAST(CAST($n AS text) AS bigint[])``): building the literal is a
# C-level ``str.join`` in Python, several times cheaper than asyncpg's per-element binary
# encoding (0.6 µs per bigint, 2.5 µs per timestamptz), and the parse costs the server little.
# A column that is NULL (or '') for every row is sent as NULL: multi-array ``unnest`` pads it.
_PG_INSERTS = """
t AS (
  INSERT INTO ledger_transfers
    (id, type, code, reference, metadata, pending_id, reversal_of, expires_at, posting_keys, created_at)
  SELECT t_id, t_type, t_code, coalesce(t_ref, ''), t_meta, t_pending, t_rev, t_exp, coalesce(t_keys, ''), {now}
    FROM unnest(CAST(CAST({t_id} AS text) AS text[]), CAST(CAST({t_type} AS text) AS text[]),
      CAST(CAST({t_code} AS text) AS text[]), CAST(CAST({t_ref} AS text) AS text[]),
      CAST(CAST({t_meta} AS text) AS text[]), CAST(CAST({t_pending} AS text) AS text[]),
      CAST(CAST({t_rev} AS text) AS text[]), CAST(CAST({t_exp} AS text) AS timestamptz[]),
      CAST(CAST({t_keys} AS text) AS text[]))
      AS x(t_id, t_type, t_code, t_ref, t_meta, t_pending, t_rev, t_exp, t_keys)
), p AS (
  INSERT INTO ledger_postings
    (transfer_id, leg, account_id, amount, currency, pending, account_seq, balance_after, created_at)
  SELECT *, {now} FROM unnest(CAST(CAST({p_0} AS text) AS text[]), CAST(CAST({p_1} AS text) AS smallint[]),
      CAST(CAST({p_2} AS text) AS bigint[]), CAST(CAST({p_3} AS text) AS bigint[]),
      CAST(CAST({p_4} AS text) AS text[]), CAST(CAST({p_5} AS text) AS boolean[]),
      CAST(CAST({p_6} AS text) AS bigint[]), CAST(CAST({p_7} AS text) AS bigint[]))
), h AS (
  INSERT INTO ledger_open_holds (hold_id, expires_at)
  SELECT * FROM unnest(CAST(CAST({h_id} AS text) AS text[]), CAST(CAST({h_exp} AS text) AS timestamptz[]))
)"""
WRITE_NAMES = ("t_id", "t_type", "t_code", "t_ref", "t_meta", "t_pending", "t_rev", "t_exp", "t_keys",
                *(f"p_{i}" for i in range(8)), "h_id", "h_exp")

_ACCOUNT_NAMES = ("a_id", "a_dp", "a_cp", "a_dpn", "a_cpn", "a_ver")


def _write_sql(param: dict[str, str], then: tuple[str, str] | None = None) -> str:
    """Locking path (rows already locked FOR UPDATE): one statement writes the whole batch;
    ``param`` spells each parameter (``:name`` for SQLAlchemy, ``$n`` for asyncpg).
    ``then``: a caller's CTEs and final SELECT, written in the same statement after the
    accounts' UPDATE (itself a CTE then)."""
    p = param
    head = "WITH " + _PG_INSERTS.format(**p) + f""", d AS (
  DELETE FROM ledger_open_holds WHERE hold_id = ANY(CAST(CAST({p["d_id"]} AS text) AS text[]))
)"""
    update = f"""UPDATE ledger_accounts AS a
   SET debits_posted = v.dp, credits_posted = v.cp, debits_pending = v.dpn,
       credits_pending = v.cpn, version = v.ver
  FROM unnest(CAST(CAST({p["a_id"]} AS text) AS bigint[]), CAST(CAST({p["a_dp"]} AS text) AS bigint[]),
      CAST(CAST({p["a_cp"]} AS text) AS bigint[]), CAST(CAST({p["a_dpn"]} AS text) AS bigint[]),
      CAST(CAST({p["a_cpn"]} AS text) AS bigint[]), CAST(CAST({p["a_ver"]} AS text) AS bigint[]))
    AS v(id, dp, cp, dpn, cpn, ver)
 WHERE a.id = v.id"""
    if then is None:
        return f"{head}\n{update}\n"
    ctes, select = then
    return f"{head}, a AS (\n{update}\n), {ctes}\n{select}\n"


_WRITE_ORDER = ("now", *WRITE_NAMES, "d_id", *_ACCOUNT_NAMES)
PG_WRITE = text(_write_sql({n: f":{n}" if n != "now" else "CAST(:now AS timestamptz)" for n in _WRITE_ORDER}))
_RAW = {n: f"${i}" if n != "now" else "CAST($1 AS timestamptz)" for i, n in enumerate(_WRITE_ORDER, start=1)}
#: The first parameter number free for the caller's part of :func:`write_with_sql`.
WRITE_WITH_FIRST = len(_WRITE_ORDER) + 1


def write_with_sql(ctes: str, select: str) -> str:
    """asyncpg: the locking path's write with a caller's rows in the same statement: its
    ``ctes`` (numbering their parameters from :data:`WRITE_WITH_FIRST`) and final ``select``.
    The ledger's arguments come first, from :func:`write_args_raw`."""
    return _write_sql(_RAW, (ctes, select))


def write_args(out: Outcome, now: datetime, resolved: Sequence[str]) -> dict[str, object]:
    """Every parameter of the locking path's write, by name."""
    accs = list(out.touched.values())
    return {
        **write_params(out), "now": now, "d_id": text_lit(resolved),
        "a_id": int_lit([a.id for a in accs]),
        "a_dp": int_lit([a.debits_posted for a in accs]),
        "a_cp": int_lit([a.credits_posted for a in accs]),
        "a_dpn": int_lit([a.debits_pending for a in accs]),
        "a_cpn": int_lit([a.credits_pending for a in accs]),
        "a_ver": int_lit([a.version for a in accs]),
    }


def write_args_raw(out: Outcome, now: datetime, resolved: Sequence[str]) -> list[object]:
    """:func:`write_args` in the order of :func:`write_with_sql`'s first parameters."""
    args = write_args(out, now, resolved)
    return [args[n] for n in _WRITE_ORDER]


def _optimistic_sql() -> str:
    """Optimistic path: no row locks taken up front, no read of existing ids.

    One autocommit statement (so one round trip, and durable when it returns) writes the
    batch and moves every account it was decided on from exactly the state it was decided
    on (counters, version, not frozen) to the new one. ``ledger_require_fresh`` aborts the
    whole statement (SQLSTATE 40001) unless every account matched and no refused command's
    id is already stored; a stored id among the written ones fails the primary key (23505).
    Either way nothing is written and the caller redoes the batch on the locking path.
    While an earlier batch of ours still holds an account row, the UPDATE waits for its
    commit and re-checks the row (READ COMMITTED), so batches decided one after another
    on cached state can be in flight together.
    """
    names = {n: f"${i}" for i, n in enumerate(WRITE_NAMES, start=2)}
    k = len(WRITE_NAMES) + 2
    acc = [f"CAST(CAST(${k + i} AS text) AS bigint[])" for i in range(11)]
    return (
        "WITH v AS MATERIALIZED (SELECT * FROM unnest(" + ", ".join(acc) + ")\n"
        "    AS v(id, dp, cp, dpn, cpn, ver, odp, ocp, odpn, ocpn, over)\n"
        "), u AS (\n"
        "  UPDATE ledger_accounts AS a\n"
        "     SET debits_posted = v.dp, credits_posted = v.cp, debits_pending = v.dpn,\n"
        "         credits_pending = v.cpn, version = v.ver\n"
        "    FROM v\n"
        "   WHERE a.id = v.id AND a.debits_posted = v.odp AND a.credits_posted = v.ocp\n"
        "     AND a.debits_pending = v.odpn AND a.credits_pending = v.ocpn AND a.version = v.over\n"
        "     AND NOT a.frozen\n"
        "  RETURNING 1\n"
        "), " + _PG_INSERTS.format(now="CAST($1 AS timestamptz)", **names).lstrip()
        + f"\nSELECT ledger_require_fresh((SELECT count(*) FROM u) = ${k + 11} AND NOT EXISTS ("
        f"SELECT 1 FROM ledger_transfers WHERE id IN (SELECT unnest(CAST(CAST(${k + 12} AS text) AS text[])))))"
    )


PG_OPTIMISTIC = _optimistic_sql()
PG_READ_ACCOUNTS = (f"SELECT {ACCOUNT_COLS} FROM ledger_accounts "
                     "WHERE code IN (SELECT unnest(CAST(CAST($1 AS text) AS text[])))")
#: Accounts kept in the optimistic path's cache at most (then it starts afresh).
CACHE_MAX = 200_000


def int_lit(values: Sequence[int]) -> str:
    # repr of a list of ints is built in C; "{1, 2}" is a valid array literal
    return "{" + repr(list(values))[1:-1] + "}"


def text_lit(values: Sequence[str | None]) -> str | None:
    """A text[] literal; None when every value is NULL (or empty: see ``_PG_INSERTS``)."""
    if not values:
        return "{}"
    try:
        raw = "".join(values)  # type: ignore[arg-type]
    except TypeError:  # some NULLs
        if all(v is None for v in values):
            return None
        return "{" + ",".join("NULL" if v is None else _quote(v) for v in values) + "}"
    if not raw and values:
        return None
    if '"' in raw or "\\" in raw:
        return "{" + ",".join(_quote(v) for v in values) + "}"  # type: ignore[arg-type]
    return '{"' + '","'.join(values) + '"}'  # type: ignore[arg-type]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ts_lit(values: Sequence[datetime | None]) -> str | None:
    if all(v is None for v in values):
        return None
    return "{" + ",".join("NULL" if v is None else f'"{v.isoformat()}"' for v in values) + "}"


def posting_keys(out: Outcome) -> list[str]:
    """Per new transfer, in order: "account_id:account_seq" of each of its postings."""
    keys: dict[str, list[str]] = {}
    for p in out.postings:
        keys.setdefault(p.transfer_id, []).append(f"{p.account_id}:{p.account_seq}")
    return [" ".join(keys.get(t.id, ())) for t in out.transfers]


def parse_keys(value: str) -> list[tuple[int, int]]:
    pairs = []
    for item in value.split():
        acc, seq = item.split(":")
        pairs.append((int(acc), int(seq)))
    return pairs


def write_params(out: Outcome) -> dict[str, str | None]:
    """The literals for ``_PG_INSERTS`` (transfers, postings, new holds) of an outcome."""
    ts = out.transfers
    new_holds = [t for t in ts if t.type is TransferType.PENDING]
    refs = [t.reference for t in ts]
    params: dict[str, str | None] = {
        "t_id": text_lit([t.id for t in ts]) or "{}",
        "t_type": text_lit([t.type.value for t in ts]) or "{}",
        "t_code": text_lit([t.code for t in ts]) or "{}",
        "t_ref": text_lit(refs),
        "t_meta": text_lit([metadata_json(t.metadata) for t in ts]),
        "t_pending": text_lit([t.pending_id for t in ts]),
        "t_rev": text_lit([t.reversal_of for t in ts]),
        "t_exp": ts_lit([t.expires_at for t in ts]),
        "t_keys": text_lit(posting_keys(out)),
        "h_id": text_lit([t.id for t in new_holds]) or "{}",
        "h_exp": ts_lit([t.expires_at for t in new_holds]),
    }
    if out.postings:
        cols = list(zip(*out.postings, strict=True))
        params["p_0"] = text_lit(cols[0]) or "{}"
        params["p_4"] = text_lit(cols[4]) or "{}"
        params["p_5"] = "{" + ",".join(["t" if b else "f" for b in cols[5]]) + "}"
        for i in (1, 2, 3, 6, 7):
            params[f"p_{i}"] = int_lit(cols[i])
    else:
        params.update({f"p_{i}": "{}" for i in range(8)})
    return params


class StaleCache(Exception):
    """The optimistic path wrote nothing; ``again``: decide afresh on the optimistic path,
    otherwise the batch goes to the locking path."""

    def __init__(self, reason: str, *, again: bool = False) -> None:
        super().__init__(reason)
        self.again = again
