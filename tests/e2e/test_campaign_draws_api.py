"""Prize draws over HTTP, the console and the CLI on both databases, against the lottery
centre SIMULATOR: an operator saves a segment, stocks prizes and commits a draw in the
console (a double submit commits one); anyone reads the published files over the API and
`mobipay campaigns verify-draw` recomputes the winners from them (and refuses a changed
list); a subscriber finds their entry code and follows their prize to the door."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mobipay.app.bootstrap import Container, build
from mobipay.app.cli import app as cli
from mobipay.app.http import create_app
from mobipay.campaigns import draw_model
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.platform.config import Settings
from tests.conftest import LOTTERY_SECRET
from tests.e2e.test_console import form, operator, sign_in
from tests.e2e.test_wallet_api import bearer, login_by_sms, signed_up

NOON = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)  # a Tuesday: 双色球 is drawn at 21:15
NUMBERS = ["13800138000", "13800138001", "13800138002", "13800138003"]


@pytest.fixture
def live(db_url: str, lottery_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url, lottery_url=lottery_url,
                        lottery_secret=LOTTERY_SECRET, partner_timeout_s=5.0, campaign_dir=tmp_path / "campaigns",
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports")
    clock = ManualClock(NOON)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


def post(client: TestClient, url: str, page: str = "/console/campaigns", **data: str) -> httpx.Response:
    r: httpx.Response = client.post(url, data={"csrf": form(client, page), **data})
    return r


def test_console_api_and_verifier(live: tuple[TestClient, Container, ManualClock], db_url: str, lottery_url: str,
                                  tmp_path: Path) -> None:
    client, container, clock = live
    for n in NUMBERS:
        signed_up(client, db_url, n)
    me = login_by_sms(client, db_url, NUMBERS[0], "a")

    async def brands() -> None:
        for n in NUMBERS[:3]:
            await container.alliances.set_brand(n, "mzone", 0, actor="operator")

    client.portal.call(brands)  # type: ignore[union-attr]
    operator(client, "olga", "operations")
    operator(client, "sue", "support")
    sign_in(client, "sue")
    assert client.get("/console/campaigns").status_code == 403  # operations only
    sign_in(client, "olga")
    page = client.get("/console/campaigns")
    assert page.status_code == 200 and "营销活动" in page.text

    assert post(client, "/console/campaigns/segments", name="M-Zone", brands="mzone").status_code == 200
    bad = post(client, "/console/campaigns/segments", name="bad", brands="vodafone")
    assert bad.status_code == 400 and "SEGMENT_INVALID" in bad.text
    seg = client.portal.call(container.segments.get, "M-Zone")  # type: ignore[union-attr]
    assert seg.last_count == 3
    assert post(client, "/console/campaigns/prizes", code="ipad", name="iPad 2", add="1").status_code == 200
    assert post(client, "/console/campaigns/prizes", code="bicycle", name="Bicycle", add="2").status_code == 200
    issue = container.lottery.on_sale("ssq")[1]
    html = client.get("/console/campaigns").text
    key = re.search(r'name="key" value="([^"]+)"', html)
    assert key
    fields = {"csrf": form(client, "/console/campaigns"), "key": key.group(1), "name": "M-Zone prize draw",
              "segment": seg.id, "game": "ssq", "issue": issue, "prizes": "ipad, bicycle", "claim_days": "30"}
    assert client.post("/console/campaigns/draws", data=fields).status_code == 200
    assert client.post("/console/campaigns/draws", data=fields).status_code == 200  # a double submit
    listed = client.get("/v1/prize-draws").json()
    assert len(listed["items"]) == 1 and listed["next"] is None
    d = listed["items"][0]
    assert (d["state"], d["entry_count"], d["prizes"], d["randomness"]["issue"]) == ("committed", 3,
                                                                                     ["ipad", "bicycle"], issue)
    entries = client.get(f"/v1/prize-draws/{d['id']}/files/entries.txt")
    assert entries.headers["content-type"].startswith("text/plain")
    assert hashlib.sha256(entries.content).hexdigest() == d["list_hash"]
    assert "138" not in entries.text  # the published list names nobody
    assert client.get(f"/v1/prize-draws/{d['id']}/files/reveal.json").json()["code"] == \
        "CAMPAIGN_DRAW_RANDOMNESS_PENDING"
    assert client.get("/v1/prize-draws/drw_nope").json()["code"] == "CAMPAIGN_DRAW_NOT_FOUND"
    mine = client.get(f"/v1/prize-draws/{d['id']}/my-entry", headers=bearer(me)).json()
    assert mine["entry"].startswith("E") and len(mine["entry"]) == 21
    assert entries.text.splitlines()[mine["position"]] == mine["entry"]
    outsider = login_by_sms(client, db_url, NUMBERS[3], "b")
    assert client.get(f"/v1/prize-draws/{d['id']}/my-entry", headers=bearer(outsider)).status_code == 404

    early = post(client, f"/console/campaigns/draws/{d['id']}/draw")
    assert early.status_code == 409 and "CAMPAIGN_DRAW_RANDOMNESS_PENDING" in early.text
    httpx.put(f"{lottery_url}/sim/draws/ssq/{issue}", json={"numbers": [[1, 4, 9, 16, 25, 32], [7]]}
              ).raise_for_status()
    clock.set(datetime(2026, 11, 24, 21, 30, tzinfo=SHANGHAI))
    client.portal.call(container.lottery.import_due)  # type: ignore[union-attr]
    client.portal.call(container.draws.draw_due)  # type: ignore[union-attr]  # the worker's round
    sign_in(client, "olga")
    assert client.get(f"/v1/prize-draws/{d['id']}").json()["state"] == "drawn"

    out = tmp_path / "downloaded"
    out.mkdir()
    for name in (draw_model.ENTRIES_FILE, draw_model.COMMITMENT_FILE, draw_model.REVEAL_FILE):
        (out / name).write_bytes(client.get(f"/v1/prize-draws/{d['id']}/files/{name}").content)
    ok = CliRunner().invoke(cli, ["campaigns", "verify-draw", str(out)])
    assert ok.exit_code == 0 and "VERIFIED" in ok.output and "NOT VERIFIED" not in ok.output, ok.output
    lines = (out / draw_model.ENTRIES_FILE).read_text().splitlines()
    (out / draw_model.ENTRIES_FILE).write_text("".join(e + "\n" for e in reversed(lines)))  # reordered
    bad_list = CliRunner().invoke(cli, ["campaigns", "verify-draw", str(out)])
    assert bad_list.exit_code == 1 and "the entry list was changed" in bad_list.output

    # delivery to the door from the console
    awards = client.portal.call(lambda: container.prizes.awards(draw_id=d["id"]))  # type: ignore[union-attr]
    ipad = next(a for a in awards if a.item == "ipad")
    refused = post(client, "/console/campaigns/runs", vehicle="湘E·12345", driver="Wang", day="2026-11-26",
                   awards=ipad.id)
    assert refused.status_code == 400 and "DELIVERY_INVALID" in refused.text  # no address yet
    assert post(client, f"/console/campaigns/awards/{ipad.id}/address", where="邵阳学院 3栋 402",
                receiver="张三").status_code == 200
    assert post(client, "/console/campaigns/runs", vehicle="湘E·12345", driver="Wang", day="2026-11-26",
                awards=ipad.id).status_code == 200
    run = client.portal.call(container.prizes.runs)[0]  # type: ignore[union-attr]
    assert post(client, f"/console/campaigns/runs/{run.id}/depart").status_code == 200
    sha = hashlib.sha256(b"signature").hexdigest()
    assert post(client, f"/console/campaigns/stops/{run.stops[0].id}", outcome="delivered", receiver="张三",
                kind="signature", sha256=sha).status_code == 200
    page = client.get("/console/campaigns").text
    assert "delivered" in page and sha[:16] in page
    winner = next(n for n in NUMBERS if "+86" + n == ipad.msisdn)
    tokens = login_by_sms(client, db_url, winner, "w")
    prizes = client.get("/v1/prizes/mine", headers=bearer(tokens)).json()
    assert [(p["item"], p["state"]) for p in prizes if p["item"] == "ipad"] == [("ipad", "delivered")]
    clock.advance(timedelta(days=31).total_seconds())
    assert client.portal.call(container.prizes.expire_unclaimed) == 1  # type: ignore[union-attr]  # the bicycle


def test_every_campaign_command_has_help_with_an_example() -> None:
    from mobipay.campaigns import draws_cli

    commands = [["campaigns"], ["campaigns", "verify-draw"]]
    for group, name in ((draws_cli.segment_app, "segment"), (draws_cli.draw_app, "draw"),
                        (draws_cli.prize_app, "prize"), (draws_cli.delivery_app, "delivery")):
        commands += [["campaigns", name]] + [["campaigns", name, str(c.name)] for c in group.registered_commands]
    assert len(commands) > 20
    for args in commands:
        r = CliRunner().invoke(cli, [*args, "--help"])
        assert r.exit_code == 0 and "Example" in r.output, (args, r.output)


def test_verify_draw_without_files_is_a_sentence(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["campaigns", "verify-draw", str(tmp_path)])
    assert r.exit_code == 1 and "commitment.json is missing" in r.output and "Traceback" not in r.output


def test_cli_commits_and_publishes_a_draw(tmp_path: Path) -> None:
    """The operator's commands in real processes: a segment, stock, a committed draw whose
    published commitment verifies as far as it can before the reveal; refusals are sentences."""
    from tests.e2e.test_cli import mobipay

    db = tmp_path / "mobipay.db"
    assert mobipay(db, "db", "upgrade").returncode == 0
    for n in ("13800138000", "13800138001", "13800138002"):
        assert mobipay(db, "user", "create", n, "--reason", "t", "--actor", "operator").returncode == 0
        assert mobipay(db, "alliances", "brand", n, "mzone", "--actor", "operator").returncode == 0
    seg = mobipay(db, "campaigns", "segment", "create", "M-Zone", "--brand", "mzone", "--actor", "operator")
    assert seg.returncode == 0 and "3 subscribers" in seg.stdout, seg.stderr
    bad = mobipay(db, "campaigns", "segment", "create", "x", "--brand", "vodafone", "--actor", "operator")
    assert bad.returncode == 1 and "SEGMENT_INVALID" in bad.stderr and "Traceback" not in bad.stderr
    assert mobipay(db, "campaigns", "prize", "stock", "ipad", "--name", "iPad 2", "--add", "1",
                   "--actor", "operator").returncode == 0
    draw = mobipay(db, "campaigns", "draw", "create", "--name", "M-Zone draw", "--segment", "M-Zone", "--game", "ssq",
                   "--issue", "2099001", "--prize", "ipad", "--key", "k1", "--actor", "operator")
    assert draw.returncode == 0 and "committed  3 entries" in draw.stdout, draw.stderr
    draw_id = draw.stdout.split()[0]
    short = mobipay(db, "campaigns", "draw", "create", "--name", "again", "--segment", "M-Zone", "--game", "ssq",
                    "--issue", "2099001", "--prize", "ipad", "--key", "k2", "--actor", "operator")
    assert short.returncode == 1 and "PRIZE_OUT_OF_STOCK" in short.stderr
    out = tmp_path / "pub"
    assert mobipay(db, "campaigns", "draw", "publish", draw_id, str(out)).returncode == 0
    commitment = (out / draw_model.COMMITMENT_FILE).read_text()
    assert '"count": 3' in commitment and "2099001" in commitment
    early = mobipay(db, "campaigns", "draw", "run", draw_id, "--actor", "operator")
    assert early.returncode == 1 and "CAMPAIGN_DRAW_RANDOMNESS_PENDING" in early.stderr
    verify = mobipay(db, "campaigns", "verify-draw", str(out))
    assert verify.returncode == 1 and "reveal.json is missing" in verify.stdout


def test_back_office_api(db_url: str, lottery_url: str, tmp_path: Path) -> None:
    """Segments and draws for the operator's back-office systems: the admin token proves the
    system, X-Operator names the person (operations role); refusals are problems that change
    nothing; commits take an Idempotency-Key."""
    from tests.e2e.test_wallet_api import ADMIN

    settings = Settings(_env_file=None, database_url=db_url, lottery_url=lottery_url, lottery_secret=LOTTERY_SECRET,
                        operators="ops:operations;sue:support", campaign_dir=tmp_path / "c",
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports")
    clock = ManualClock(NOON)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as client:
        for n in NUMBERS[:2]:
            signed_up(client, db_url, n)
        ops = {**ADMIN, "X-Operator": "ops"}
        body = {"name": "everyone", "criteria": {}}
        assert client.post("/v1/segments", json=body).json()["code"] == "UNAUTHORIZED"
        assert client.post("/v1/segments", json=body, headers=ADMIN).json()["code"] == "VALIDATION_FAILED"
        denied = client.post("/v1/segments", json=body, headers={**ADMIN, "X-Operator": "sue"})
        assert denied.status_code == 403 and denied.json()["code"] == "ROLE_REQUIRED"
        bad = client.post("/v1/segments", json={"name": "x", "criteria": {"brands": ["vodafone"]}}, headers=ops)
        assert bad.status_code == 400 and bad.json()["code"] == "SEGMENT_INVALID"
        made = client.post("/v1/segments", json=body, headers=ops)
        assert made.status_code == 201 and made.json()["count"] == 2, made.text
        seg = made.json()["id"]
        listed = client.get("/v1/segments", headers=ops).json()
        assert [s["id"] for s in listed["items"]] == [seg] and listed["next"] is None
        assert client.post(f"/v1/segments/{seg}/count", headers=ops).json()["count"] == 2
        no_key = client.post(f"/v1/segments/{seg}/sms", json={"text": "hi"}, headers=ops)
        assert no_key.status_code == 400 and no_key.json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"
        sent = client.post(f"/v1/segments/{seg}/sms", json={"text": "hi"}, headers={**ops, "Idempotency-Key": "s1"})
        assert sent.status_code == 202 and sent.json() == {"segment_id": seg, "recipients": 2, "batches": 1}
        again = client.post(f"/v1/segments/{seg}/sms", json={"text": "hi"}, headers={**ops, "Idempotency-Key": "s1"})
        assert again.json()["batches"] == 0
        client.portal.call(lambda: container.prizes.stock("ipad", "iPad 2", 1, actor="ops"))  # type: ignore[union-attr]
        draw = {"name": "d", "segment_id": seg, "game": "ssq", "issue": container.lottery.on_sale("ssq")[1],
                "prizes": ["ipad"]}
        assert client.post("/v1/prize-draws", json=draw, headers=ops).json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"
        first = client.post("/v1/prize-draws", json=draw, headers={**ops, "Idempotency-Key": "d1"})
        assert first.status_code == 201 and first.json()["entry_count"] == 2, first.text
        replay = client.post("/v1/prize-draws", json=draw, headers={**ops, "Idempotency-Key": "d1"})
        assert replay.json()["id"] == first.json()["id"]
        other = client.post("/v1/prize-draws", json={**draw, "name": "e"}, headers={**ops, "Idempotency-Key": "d1"})
        assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_CONFLICT"
        early = client.post(f"/v1/prize-draws/{first.json()['id']}/reveal", headers=ops)
        assert early.status_code == 409 and early.json()["code"] == "CAMPAIGN_DRAW_RANDOMNESS_PENDING"
        assert len(client.get("/v1/prize-draws").json()["items"]) == 1

        # the lottery draw is held and imported; reveal, then deliver through the API
        httpx.put(f"{lottery_url}/sim/draws/ssq/{draw['issue']}", json={"numbers": [[2, 3, 5, 7, 11, 13], [1]]}
                  ).raise_for_status()
        clock.set(datetime(2026, 11, 24, 21, 30, tzinfo=SHANGHAI))
        client.portal.call(container.lottery.import_due)  # type: ignore[union-attr]
        drawn = client.post(f"/v1/prize-draws/{first.json()['id']}/reveal", headers=ops)
        assert drawn.status_code == 200 and drawn.json()["state"] == "drawn"
        won = client.get("/v1/prizes", params={"draw_id": first.json()["id"]}, headers=ops).json()["items"]
        assert [(p["item"], p["state"]) for p in won] == [("ipad", "won")]
        award = won[0]["id"]
        assert client.put(f"/v1/prizes/{award}/address", json={"address": "邵阳学院 3栋 402", "receiver": "张三"},
                          headers=ops).json()["address"] == "邵阳学院 3栋 402"
        run = client.post("/v1/delivery-runs", json={"vehicle": "湘E·12345", "driver": "Wang", "day": "2026-11-26",
                                                     "award_ids": [award]}, headers=ops)
        assert run.status_code == 201 and run.json()["state"] == "planned", run.text
        stop = run.json()["stops"][0]["id"]
        too_soon = client.post(f"/v1/delivery-stops/{stop}/failure", json={"reason": "x"}, headers=ops)
        assert too_soon.status_code == 409 and too_soon.json()["code"] == "DELIVERY_RUN_STATE"
        assert client.post(f"/v1/delivery-runs/{run.json()['id']}/departure", headers=ops).json()["state"] == "out"
        photo = b"\xff\xd8 a photo of the hand-over"
        none = client.post(f"/v1/delivery-stops/{stop}/delivery", data={"receiver": "张三", "proof_kind": "photo"},
                           headers=ops)
        assert none.status_code == 400 and none.json()["code"] == "DELIVERY_PROOF_REQUIRED"
        done = client.post(f"/v1/delivery-stops/{stop}/delivery", data={"receiver": "张三", "proof_kind": "photo"},
                           files={"proof": ("handover.jpg", photo, "image/jpeg")}, headers=ops)
        assert done.status_code == 200 and done.json()["state"] == "delivered", done.text
        sha = hashlib.sha256(photo).hexdigest()
        assert done.json()["proof_sha256"] == sha and (tmp_path / "c" / "proofs" / f"{sha}.jpg").read_bytes() == photo
        closed = client.post(f"/v1/delivery-runs/{run.json()['id']}/closing", headers=ops).json()
        assert closed["state"] == "closed" and closed["stops"][0]["state"] == "delivered"
        assert client.get("/v1/prizes", params={"state": "delivered"}, headers=ops).json()["items"][0]["id"] == award
