"""The batch file's rules: header and unit, every row's checks with their codes, duplicates,
the name against the real name, the file's verdict, the ids and the funders' signature."""

from __future__ import annotations

import hashlib

import pytest

from mobipay.campaigns import bulk_model as m
from mobipay.kernel.errors import MobipayError


def rows_of(text: str) -> list[m.FileRow]:
    return m.parse_file(text.encode())


def test_yuan_are_converted_exactly_and_fen_are_integers() -> None:
    rows = rows_of("row_id,msisdn,name,amount_yuan,note\n"
                   "s1,13800138000,王小明,500,助学金\ns2,+86 139-0013-9000,李华,500.5,\ns3,13700137000,张三,0.01,\n")
    assert [(r.msisdn, r.amount, r.error_code) for r in rows] == [
        ("+8613800138000", 50_000, None), ("+8613900139000", 50_050, None), ("+8613700137000", 1, None)]
    fen = rows_of("row_id,msisdn,name,amount_fen,note\na,13800138000,王,50000,x\nb,13800138001,王,12.50,x\n")
    assert [(r.amount, r.error_code) for r in fen] == [(50_000, None), (0, "INVALID_AMOUNT")]


@pytest.mark.parametrize("amount", ["0", "-5", "1.234", "1e3", "１００", "5,000", "", "abc", "0.00"])
def test_bad_yuan_amounts_are_invalid_rows(amount: str) -> None:
    [row] = rows_of(f"row_id,msisdn,name,amount_yuan,note\nr1,13800138000,王小明,\"{amount}\",\n")
    assert row.error_code == "INVALID_AMOUNT" and row.amount == 0


def test_each_row_gets_its_own_code() -> None:
    rows = rows_of("row_id,msisdn,name,amount_yuan,note\n"
                   "bad id!,13800138000,王,1,\n"
                   "r2,12345,王,1,\n"
                   "r3,13800138000,,1,\n"
                   f"r4,13800138000,王,1,{'长' * 65}\n"
                   "r5,13800138000,王,1\n"
                   "r6,13800138000,王,1,ok\n")
    assert [r.error_code for r in rows] == ["BULK_ROW_ID_INVALID", "INVALID_MSISDN", "BULK_NAME_INVALID",
                                           "BULK_NOTE_INVALID", "BULK_FILE_INVALID", None]


def test_duplicate_row_ids_and_copied_rows_are_invalid_later_rows() -> None:
    rows = rows_of("row_id,msisdn,name,amount_yuan,note\n"
                   "r1,13800138000,王,500,grant\n"
                   "r1,13800138001,李,500,grant\n"  # the id again
                   "r2,13800138000,王,500,grant\n"  # the same payment again under a new id
                   "r3,13800138000,王,500,second term\n")  # another note: a second payment, fine
    assert [r.error_code for r in rows] == [None, "BULK_DUPLICATE_ROW_ID", "BULK_DUPLICATE_ROW", None]


@pytest.mark.parametrize("data", [b"", b"\xff\xfe bad", b"id,phone,amount\n1,2,3\n",
                                  b"row_id,msisdn,name,amount_yuan,note\n"])
def test_a_file_that_is_no_batch_is_refused_whole(data: bytes) -> None:
    with pytest.raises(MobipayError) as info:
        m.parse_file(data)
    assert info.value.code == "BULK_FILE_INVALID"


def test_the_hash_must_be_the_files() -> None:
    data = b"row_id,msisdn,name,amount_yuan,note\nr1,13800138000,x,1,\n"
    m.check_hash(data, hashlib.sha256(data).hexdigest().upper())
    with pytest.raises(MobipayError) as info:
        m.check_hash(data + b"r2,13800138001,y,1000,\n", hashlib.sha256(data).hexdigest())
    assert info.value.code == "BULK_FILE_HASH_MISMATCH"


def test_names_compare_without_spaces_width_or_middle_dots() -> None:
    assert m.name_matches("王 小明", "王小明") and m.name_matches("阿依古丽·买买提", "阿依古丽买买提")
    assert m.name_matches("ＷＡＮＧ Ming", "wang ming") and m.name_matches("anyone", None)
    assert not m.name_matches("王小红", "王小明")


def test_the_verdict_allows_a_few_invalid_rows() -> None:
    rows = [m.FileRow(i, f"r{i}", "+8613800138000", "x", 1, "", None if i > 2 else "INVALID_AMOUNT")
            for i in range(1, 101)]
    assert m.verdict(rows, 5).accepted and m.verdict(rows, 2).accepted
    refused = m.verdict(rows, 1)
    assert not refused.accepted and "2 of 100" in refused.reason
    assert not m.verdict([m.FileRow(1, "r", "", "x", 0, "", "INVALID_AMOUNT")], 100).accepted


def test_ids_sub_batches_and_result_lines() -> None:
    assert m.transfer_id("bdb_1", "s-001") == "bulk:bdb_1:s-001"
    assert m.sub_batch_count(1, 5000) == 1 and m.sub_batch_count(10_000, 5000) == 2 and m.sub_batch_count(10_001) == 3
    assert m.result_header() == "row_id,msisdn,name,amount_fen,note,status,error_code,transfer_id\n"
    assert m.result_line(["r1", "+8613800138000", "王,小明", 500, "", "paid", None, "t"]) == (
        'r1,+8613800138000,"王,小明",500,,paid,,t\n')


def test_signature_and_roles() -> None:
    sig = m.sign("k", "1700000000", "nonce-123", "post", "/v1/x", b"body")
    assert m.signature_valid("k", sig, "1700000000", "nonce-123", "POST", "/v1/x", b"body")
    assert not m.signature_valid("k", sig, "1700000000", "nonce-123", "POST", "/v1/x", b"bodY")
    assert m.check_roles(["checker", "maker", "maker"]) == ("checker", "maker")
    with pytest.raises(MobipayError):
        m.check_roles(["admin"])
