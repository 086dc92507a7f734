"""Registering a company reader is idempotent on SQLite and PostgreSQL: the same label with the
same kind (and key, or none sent) answers the existing reader, a made key is not shown again;
another kind or key is READER_CONFLICT with nothing stored; two racing registrations make one
reader; another employer's label is its own."""

from __future__ import annotations

import asyncio

from mobipay.enterprise.model import new_reader_key
from mobipay.enterprise.service import Enterprise
from tests.integration.test_enterprise import clock, employer, ent, refused  # noqa: F401 - fixtures


async def test_register_reader_again(ent: Enterprise) -> None:  # noqa: F811 - the fixture
    boss = await employer(ent)
    other = await employer(ent, "腾讯科技")
    _, public = new_reader_key()
    door, seed = await ent.register_reader(boss.id, "南门闸机", kind="door", public_key=public, actor="ops")
    assert seed is None
    again, seed = await ent.register_reader(boss.id, " 南门闸机 ", kind="door", public_key=public, actor="ops")
    assert (again, seed) == (door, None)
    same, seed = await ent.register_reader(boss.id, "南门闸机", kind="door", actor="ops")  # no key sent: the same
    assert (same, seed) == (door, None)

    _, another_key = new_reader_key()
    err = await refused(ent.register_reader(boss.id, "南门闸机", kind="door", public_key=another_key))
    assert (err.code, err.status, err.extra["reader_id"]) == ("READER_CONFLICT", 409, door.id)
    err = await refused(ent.register_reader(boss.id, "南门闸机", kind="attendance", public_key=public))
    assert err.code == "READER_CONFLICT" and "door" in err.detail
    assert [r.id for r in await ent.readers(boss.id)] == [door.id]  # nothing stored by a refusal

    made, private = await ent.register_reader(boss.id, "考勤机", kind="attendance")
    assert private is not None  # the key made here, shown once
    replay, private_again = await ent.register_reader(boss.id, "考勤机", kind="attendance")
    assert (replay, private_again) == (made, None)  # the same reader; its private half is never shown again

    theirs, _ = await ent.register_reader(other.id, "南门闸机", kind="door", public_key=public)
    assert theirs.id != door.id and theirs.employer_id == other.id

    raced = await asyncio.gather(
        *(ent.register_reader(boss.id, "东门闸机", kind="door", public_key=public) for _ in range(3))
    )
    assert len({r.id for r, _ in raced}) == 1
    assert len(await ent.readers(boss.id)) == 3
