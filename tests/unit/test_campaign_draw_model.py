"""The published draw procedure: fixed vectors (an outsider's implementation must give the
same), an independent re-implementation in the test, rejection sampling without modulo
bias, distinct winners, and the verifier on published files (a changed list detected)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mobipay.campaigns import draw_model as m

SEED = bytes(range(32))
ENTRIES = [f"E{i:03d}" for i in range(1, 11)]
NUMBERS = [[3, 7, 12, 19, 27, 33], [9]]


def test_vectors() -> None:
    rand = m.randomness("ssq", "2026137", NUMBERS)
    assert rand == "ssq:2026137:03,07,12,19,27,33|09"
    h = m.list_hash(m.entries_bytes(ENTRIES))
    assert h == "138e6112c50aeb8d622cb8efff85c5d72fbce1ec93077c794a637f65e87e9b15"
    assert h == hashlib.sha256(b"".join(e.encode() + b"\n" for e in ENTRIES)).hexdigest()
    assert m.seed_hash(SEED) == "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
    assert m.digest(SEED, rand, 1, 0, h).hex() == "5ec14baa960915804987a3801044ddff7f7e0ed96722700a743b3cbd01ad3206"
    got = [(w.prize_number, w.position, w.entry) for w in m.winners(SEED, rand, ENTRIES, 3)]
    assert got == [(1, 6, "E007"), (2, 1, "E002"), (3, 5, "E006")]


def _independent(seed: bytes, rand: str, entries: list[str], prizes: int) -> list[int]:
    """The procedure as docs/campaigns.md states it, written again without the module."""
    h = hashlib.sha256("".join(e + "\n" for e in entries).encode()).digest()
    n, out = len(entries), []
    for k in range(1, prizes + 1):
        c = 0
        while True:
            x = int.from_bytes(hashlib.sha256(seed + rand.encode() + k.to_bytes(4, "big") + c.to_bytes(4, "big")
                                              + h).digest(), "big")
            c += 1
            if x >= 2**256 - 2**256 % n or x % n in out:
                continue
            out.append(x % n)
            break
    return out


@pytest.mark.parametrize(("n", "prizes"), [(1, 1), (2, 2), (7, 3), (10, 10), (1000, 25)])
def test_matches_an_independent_implementation(n: int, prizes: int) -> None:
    entries = [m.entry_code(b"salt", f"+86138{i:08d}") for i in range(n)]
    rand = m.randomness("dlt", "2026050", [[1, 2, 3, 4, 5], [6, 7]])
    got = m.winners(SEED, rand, entries, prizes)
    assert [w.position for w in got] == _independent(SEED, rand, entries, prizes)
    assert len({w.position for w in got}) == prizes  # distinct winners
    assert all(w.entry == entries[w.position] for w in got)


def test_rejection_sampling_discards_the_biased_top() -> None:
    """With N = 2**255 + 1 almost half the digests fall in the biased top and are discarded;
    the seed below rejects prize 1's first digest, and the winner is the next fitting one."""
    n = 2**255 + 1
    rand = m.randomness("ssq", "2026137", NUMBERS)
    zero = "00" * 32
    first = int.from_bytes(m.digest(SEED, rand, 1, 0, zero), "big")
    assert first >= 2**256 - 2**256 % n  # rejected: a plain ``mod N`` would have used it
    w = m.pick(SEED, rand, zero, n, 1)[0]
    assert w.attempts > 1
    accepted = int.from_bytes(m.digest(SEED, rand, 1, w.attempts - 1, zero), "big")
    assert w.position == accepted % n and accepted < 2**256 - 2**256 % n


def test_every_entry_wins_when_prizes_equal_entries() -> None:
    rand = m.randomness("fc3d", "2026100", [[1, 1, 9]])
    got = m.winners(SEED, rand, ENTRIES, len(ENTRIES))
    assert sorted(w.position for w in got) == list(range(len(ENTRIES)))


def test_refusals() -> None:
    rand = m.randomness("ssq", "2026137", NUMBERS)
    with pytest.raises(m.DrawProcedureError):
        m.winners(SEED, rand, ENTRIES, 11)
    with pytest.raises(m.DrawProcedureError):
        m.winners(SEED, rand, [], 0)
    with pytest.raises(m.DrawProcedureError):
        m.winners(b"short", rand, ENTRIES, 1)
    with pytest.raises(m.DrawProcedureError):
        m.entries_bytes(["E1", "E2\nE3"])
    with pytest.raises(m.DrawProcedureError):
        m.randomness("ssq", "2026137", [])


def test_entry_codes_are_pseudonyms_per_draw() -> None:
    a = m.entry_code(b"draw one's salt", "+8613800138000")
    assert a == m.entry_code(b"draw one's salt", "+8613800138000")
    assert a != m.entry_code(b"draw two's salt", "+8613800138000")
    assert a != "E" + hashlib.sha256(b"+8613800138000").hexdigest()[:20].upper()
    assert "138" not in a[1:4] and len(a) == 21


def _publish(tmp_path: Path) -> Path:
    commitment = m.commitment_doc("drw_1", "M-Zone draw", ENTRIES, m.seed_hash(SEED), "ssq", "2026137",
                                  "2026-11-29T13:15:00Z", [{"prize": "ipad", "name": "iPad"}] * 3)
    reveal = m.reveal_doc("drw_1", SEED, "ssq", "2026137", NUMBERS, ENTRIES, 3)
    m.write_files(tmp_path, ENTRIES, commitment, reveal)
    return tmp_path


def test_verifier_recomputes_the_published_winners(tmp_path: Path) -> None:
    v = m.verify_dir(_publish(tmp_path))
    assert v.ok, v.problems
    assert [(w.prize_number, w.entry) for w in v.winners] == [(1, "E007"), (2, "E002"), (3, "E006")]


@pytest.mark.parametrize("change", ["swap", "add", "drop", "edit"])
def test_verifier_detects_a_changed_entry_list(tmp_path: Path, change: str) -> None:
    d = _publish(tmp_path)
    entries = list(ENTRIES)
    if change == "swap":
        entries[0], entries[6] = entries[6], entries[0]
    elif change == "add":
        entries.append("E999")
    elif change == "drop":
        entries.pop(3)
    else:
        entries[6] = "E777"
    (d / m.ENTRIES_FILE).write_bytes(m.entries_bytes(entries))
    v = m.verify_dir(d)
    assert not v.ok
    assert any("the entry list was changed" in p for p in v.problems)


def test_verifier_detects_another_seed_other_numbers_or_winner(tmp_path: Path) -> None:
    d = _publish(tmp_path)
    reveal = json.loads((d / m.REVEAL_FILE).read_text())
    for key, value, words in [("seed", "11" * 32, "seed hashes to"),
                              ("numbers", [[1, 2, 3, 4, 5, 6], [7]], "randomness string"),
                              ("winners", [dict(reveal["winners"][0], position=0, entry="E001"),
                                           *reveal["winners"][1:]], "prize 1: the procedure gives entry 6")]:
        (d / m.REVEAL_FILE).write_text(json.dumps(dict(reveal, **{key: value})))
        v = m.verify_dir(d)
        assert not v.ok and any(words in p for p in v.problems), (key, v.problems)


def test_verifier_runs_standalone(tmp_path: Path) -> None:
    d = _publish(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "mobipay.campaigns.draw_model", str(d)], capture_output=True,
                        text=True, check=False)
    assert ok.returncode == 0 and "VERIFIED" in ok.stdout and "prize 1: entry 6 E007" in ok.stdout
    (d / m.ENTRIES_FILE).write_bytes(m.entries_bytes(ENTRIES[:-1]))
    bad = subprocess.run([sys.executable, "-m", "mobipay.campaigns.draw_model", str(d)], capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 1 and "NOT VERIFIED" in bad.stdout
    missing = m.verify_dir(tmp_path / "nothing")
    assert not missing.ok and any("missing" in p for p in missing.problems)


def test_the_verifier_file_stands_alone(tmp_path: Path) -> None:
    """An outsider copies draw_model.py alone: it imports only the standard library and runs
    as a script on the published files."""
    import ast

    source = Path(m.__file__).read_text(encoding="utf-8")
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    copy = tmp_path / "tool" / "draw_model.py"
    copy.parent.mkdir()
    copy.write_text(source, encoding="utf-8")
    d = _publish(tmp_path / "files")
    r = subprocess.run([sys.executable, "-I", str(copy), str(d)], capture_output=True, text=True, check=False,
                       cwd=copy.parent)
    assert r.returncode == 0 and "VERIFIED" in r.stdout, r.stdout + r.stderr


def test_campaign_sms_texts_render_with_the_params_sent() -> None:
    from mobipay.channels.sms.texts import render

    sent: dict[str, dict[str, object]] = {
        "campaign.message": {"text": "动感地带校园音乐节"},
        "campaign.red_envelope": {"campaign": "cmp_1", "merchant": "校园超市", "name": "满20减5"},
        "campaign.prize_won": {"draw": "M-Zone", "prize": "iPad 2", "number": 1, "entry": "E1", "until": "2026-12-24"},
        "campaign.delivery_out": {"prize": "iPad 2", "vehicle": "湘E·12345"},
        "campaign.delivered": {"prize": "iPad 2", "receiver": "张三"},
        "campaign.delivery_failed": {"prize": "iPad 2", "reason": "nobody home", "until": "2026-12-24"},
        "campaign.prize_unclaimed": {"prize": "iPad 2", "until": "2026-12-24"},
    }
    for template, params in sent.items():
        text = render(template, params)
        assert "new notice" not in text and all(str(v) in text for v in params.values() if v != "cmp_1"), text
