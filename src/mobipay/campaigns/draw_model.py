"""The published procedure of a prize draw: commitment, reveal and the verifier, in the
standard library only, so anyone can run it on the published files without the platform
(``python -m mobipay.campaigns.draw_model DIR``, or ``mobipay campaigns verify-draw DIR``).

Why commit-reveal with a public future randomness: before the draw the operator publishes
the frozen entry list's SHA-256 and count, the SHA-256 of a secret seed, and names a lottery
draw that has not happened yet (双色球 issue N). Nobody knows that draw's numbers then, so
the operator cannot choose a seed that favours anyone; the seed's hash keeps the operator
from choosing it afterwards; the list hash keeps entries from being added, removed or
reordered afterwards. After the lottery draw is held, the seed is revealed and the
winners follow from a fixed formula (docs/campaigns.md, "The published procedure").

The files (one directory per draw):

* ``entries.txt``: one entry code per line, in draw order, each line ending in ``\\n``
  (UTF-8, no header, no blank lines). Position 0 is the first line.
* ``commitment.json``: published before the randomness exists: procedure, draw id, count,
  list_hash (hex SHA-256 of the bytes of ``entries.txt``), seed_hash (hex SHA-256 of the
  32 seed bytes), the named randomness (game, issue, draw time) and the prizes in order.
* ``reveal.json``: published after: the seed (hex), the lottery numbers, the randomness
  string built from them and the winners (prize number, entry position and entry code).

Winner of prize ``k`` (1-based, the order of the commitment's prizes), among ``N`` entries::

    for attempt c = 0, 1, 2, ...:
        d = SHA-256(seed ‖ R ‖ uint32_be(k) ‖ uint32_be(c) ‖ list_hash)   # raw bytes
        x = d as a 256-bit big-endian unsigned integer
        if x >= 2**256 - (2**256 mod N): next attempt          (rejection: no modulo bias)
        i = x mod N
        if entry i already won an earlier prize: next attempt  (distinct winners)
        winner of prize k = entry i; stop

``seed`` is the 32 seed bytes, ``R`` the UTF-8 bytes of the randomness string, ``list_hash``
the 32 bytes of the list hash (not its hex).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROCEDURE = "mobipay-draw-v1"
ENTRIES_FILE = "entries.txt"
COMMITMENT_FILE = "commitment.json"
REVEAL_FILE = "reveal.json"
SEED_BYTES = 32
_SPACE = 1 << 256
_MAX_ATTEMPTS = 10_000  # with distinct winners and k <= N the expected attempts are small; a guard, not a rule


class DrawProcedureError(ValueError):
    """A published input the procedure cannot work with (no entries, more prizes than entries)."""


@dataclass(frozen=True, slots=True)
class Winner:
    prize_number: int  # 1-based, in the commitment's prize order
    position: int  # 0-based line of entries.txt
    entry: str
    attempts: int  # digests computed for this prize (1 when the first one fitted)


def entry_code(salt: bytes, msisdn: str) -> str:
    """A subscriber's entry code in a draw's published list: a pseudonym, so the list names
    nobody; a subscriber told their code (SMS, API) finds it in the file. An HMAC under the
    draw's own secret salt, never published: a plain hash of the number could be matched
    by trying every mainland number, and another draw gives the same subscriber another code."""
    return "E" + hmac.new(salt, msisdn.encode(), hashlib.sha256).hexdigest()[:20].upper()


def entries_bytes(entries: Sequence[str]) -> bytes:
    """The exact bytes of ``entries.txt``: one code a line, each ending in a newline."""
    for e in entries:
        if not e or "\n" in e or "\r" in e or e != e.strip():
            raise DrawProcedureError(f"an entry code is one non-empty line without spaces around it: {e!r}")
    return "".join(f"{e}\n" for e in entries).encode()


def parse_entries(data: bytes) -> list[str]:
    """The entries of an ``entries.txt`` (the inverse of :func:`entries_bytes`)."""
    text = data.decode()
    if text and not text.endswith("\n"):
        raise DrawProcedureError("entries.txt must end with a newline after its last entry")
    return text.split("\n")[:-1] if text else []


def list_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def seed_hash(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def randomness(game: str, issue: str, numbers: Sequence[Sequence[int]]) -> str:
    """The randomness string of a lottery draw: ``game:issue:`` then each pool's numbers as
    two-digit decimals joined by ``,``, pools joined by ``|``, in the centre's published
    order. 双色球 2026137 drawn 3 7 12 19 27 33 + 9 is ``ssq:2026137:03,07,12,19,27,33|09``."""
    if not numbers or any(not pool for pool in numbers):
        raise DrawProcedureError("the lottery numbers are one or more non-empty pools")
    pools = "|".join(",".join(f"{int(n):02d}" for n in pool) for pool in numbers)
    return f"{game}:{issue}:{pools}"


def digest(seed: bytes, rand: str, prize_number: int, attempt: int, list_hash_hex: str) -> bytes:
    """One SHA-256 of the procedure (the layout in the module's docstring)."""
    return hashlib.sha256(seed + rand.encode() + prize_number.to_bytes(4, "big") + attempt.to_bytes(4, "big")
                          + bytes.fromhex(list_hash_hex)).digest()


def pick(seed: bytes, rand: str, list_hash_hex: str, count: int, prizes: int) -> list[Winner]:
    """The winners of prizes 1..``prizes`` among ``count`` entries: distinct, unbiased."""
    if len(seed) != SEED_BYTES:
        raise DrawProcedureError(f"the seed is {SEED_BYTES} bytes")
    if count < 1:
        raise DrawProcedureError("a draw needs at least one entry")
    if not 0 <= prizes <= count:
        raise DrawProcedureError(f"{prizes} prizes cannot go to {count} distinct entries")
    limit = _SPACE - _SPACE % count
    taken: set[int] = set()
    out: list[Winner] = []
    for k in range(1, prizes + 1):
        for c in range(_MAX_ATTEMPTS):
            x = int.from_bytes(digest(seed, rand, k, c, list_hash_hex), "big")
            if x >= limit:
                continue
            i = x % count
            if i in taken:
                continue
            taken.add(i)
            out.append(Winner(k, i, "", c + 1))
            break
        else:  # pragma: no cover - needs ~10^4 collisions in a row
            raise DrawProcedureError(f"prize {k}: no winner in {_MAX_ATTEMPTS} attempts")
    return out


def winners(seed: bytes, rand: str, entries: Sequence[str], prizes: int) -> list[Winner]:
    """:func:`pick` over a list, with each winner's entry code."""
    h = list_hash(entries_bytes(entries))
    return [Winner(w.prize_number, w.position, entries[w.position], w.attempts)
            for w in pick(seed, rand, h, len(entries), prizes)]


def commitment_doc(draw_id: str, name: str, entries: Sequence[str], seed_hash_hex: str, game: str, issue: str,
                   draw_at: str, prizes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``commitment.json``: what is published before the named lottery draw is held."""
    return {"procedure": PROCEDURE, "draw_id": draw_id, "name": name, "count": len(entries),
            "list_hash": list_hash(entries_bytes(entries)), "seed_hash": seed_hash_hex,
            "randomness": {"source": "lottery", "game": game, "issue": issue, "draw_at": draw_at},
            "prizes": [dict(p, number=n) for n, p in enumerate(prizes, start=1)]}


def reveal_doc(draw_id: str, seed: bytes, game: str, issue: str, numbers: Sequence[Sequence[int]],
               entries: Sequence[str], prizes: int) -> dict[str, Any]:
    """``reveal.json``: the seed, the named draw's numbers and the winners they give."""
    rand = randomness(game, issue, numbers)
    return {"procedure": PROCEDURE, "draw_id": draw_id, "seed": seed.hex(), "numbers": [list(p) for p in numbers],
            "randomness": rand,
            "winners": [{"prize_number": w.prize_number, "position": w.position, "entry": w.entry}
                        for w in winners(seed, rand, entries, prizes)]}


def write_files(directory: str | Path, entries: Sequence[str], commitment: dict[str, Any],
                reveal: dict[str, Any] | None) -> list[Path]:
    """Write a draw's published files (the reveal once there is one); returns their paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = [d / ENTRIES_FILE, d / COMMITMENT_FILE]
    out[0].write_bytes(entries_bytes(entries))
    out[1].write_text(json.dumps(commitment, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if reveal is not None:
        out.append(d / REVEAL_FILE)
        out[2].write_text(json.dumps(reveal, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return out


# ---------------------------------------------------------------------- the verifier


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    checks: tuple[str, ...]  # what was checked and found right
    problems: tuple[str, ...]  # what does not match, in words
    winners: tuple[Winner, ...]  # as recomputed (empty when the inputs did not allow it)


def _load_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path.name} is missing")
        return None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path.name} is not valid JSON: {exc}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name} is not a JSON object")
        return None
    return data


def verify_dir(directory: str | Path) -> Verdict:
    """Check a draw's published files against each other and recompute its winners."""
    d = Path(directory)
    problems: list[str] = []
    checks: list[str] = []
    commitment = _load_json(d / COMMITMENT_FILE, problems)
    reveal = _load_json(d / REVEAL_FILE, problems)
    try:
        raw = (d / ENTRIES_FILE).read_bytes()
    except FileNotFoundError:
        problems.append(f"{ENTRIES_FILE} is missing")
        raw = None
    if commitment is None or reveal is None or raw is None:
        return Verdict(False, tuple(checks), tuple(problems), ())
    if commitment.get("procedure") != PROCEDURE:
        problems.append(f"unknown procedure {commitment.get('procedure')!r} (this verifier knows {PROCEDURE})")
        return Verdict(False, tuple(checks), tuple(problems), ())
    try:
        entries = parse_entries(raw)
    except (UnicodeDecodeError, DrawProcedureError) as exc:
        problems.append(f"{ENTRIES_FILE}: {exc}")
        entries = None
    h = list_hash(raw)
    if h != commitment.get("list_hash"):
        problems.append(f"{ENTRIES_FILE} has SHA-256 {h}, the commitment published {commitment.get('list_hash')}: "
                        "the entry list was changed after it was committed")
    else:
        checks.append(f"entry list SHA-256 {h} matches the commitment")
    if entries is not None:
        if len(entries) != commitment.get("count"):
            problems.append(f"{ENTRIES_FILE} has {len(entries)} entries, the commitment published "
                            f"{commitment.get('count')}")
        else:
            checks.append(f"{len(entries)} entries, as committed")
    if reveal.get("draw_id") != commitment.get("draw_id"):
        problems.append(f"the reveal is for draw {reveal.get('draw_id')!r}, the commitment for "
                        f"{commitment.get('draw_id')!r}")
    try:
        seed = bytes.fromhex(str(reveal.get("seed", "")))
    except ValueError:
        seed = b""
    if len(seed) != SEED_BYTES:
        problems.append(f"the revealed seed is not {SEED_BYTES} bytes of hex")
    elif seed_hash(seed) != commitment.get("seed_hash"):
        problems.append(f"the revealed seed hashes to {seed_hash(seed)}, the commitment published "
                        f"{commitment.get('seed_hash')}")
    else:
        checks.append("the revealed seed matches the committed seed hash")
    source = commitment.get("randomness") or {}
    rand = None
    try:
        rand = randomness(str(source.get("game")), str(source.get("issue")), reveal.get("numbers") or [])
    except (DrawProcedureError, TypeError, ValueError) as exc:
        problems.append(f"the revealed lottery numbers: {exc}")
    if rand is not None:
        if rand != reveal.get("randomness"):
            problems.append(f"the randomness string of the named draw is {rand!r}, the reveal used "
                            f"{reveal.get('randomness')!r}")
        else:
            checks.append(f"randomness {rand} is the named draw's ({source.get('game')} {source.get('issue')})")
    prizes = commitment.get("prizes") or []
    if problems or entries is None or rand is None:
        return Verdict(False, tuple(checks), tuple(problems), ())
    try:
        found = winners(seed, rand, entries, len(prizes))
    except DrawProcedureError as exc:
        problems.append(str(exc))
        return Verdict(False, tuple(checks), tuple(problems), ())
    published = [(w.get("prize_number"), w.get("position"), w.get("entry")) for w in reveal.get("winners") or []]
    mine = [(w.prize_number, w.position, w.entry) for w in found]
    if published != mine:
        for p, m in zip(published, mine, strict=False):
            if p != m:
                problems.append(f"prize {m[0]}: the procedure gives entry {m[1]} ({m[2]}), the reveal published "
                                f"{p[1]} ({p[2]})")
        if len(published) != len(mine):
            problems.append(f"the reveal lists {len(published)} winners, the procedure gives {len(mine)}")
    else:
        checks.append(f"{len(mine)} winners recomputed, as published")
    return Verdict(not problems, tuple(checks), tuple(problems), tuple(found))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mobipay.campaigns.draw_model DIR``: the verifier without the platform."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m mobipay.campaigns.draw_model DIR  (a directory with entries.txt, commitment.json "
              "and reveal.json)")
        return 2
    v = verify_dir(args[0])
    for line in v.checks:
        print(f"ok       {line}")
    for line in v.problems:
        print(f"PROBLEM  {line}")
    for w in v.winners:
        print(f"prize {w.prize_number}: entry {w.position} {w.entry}")
    print("VERIFIED" if v.ok else "NOT VERIFIED")
    return 0 if v.ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
