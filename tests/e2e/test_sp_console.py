"""The console's SP governance pages (SQLite and PostgreSQL): the SP list and record with its
complaints and trend chart data, a violation recorded through the form, a red card proposed
by one operator and checked by another (not by its maker), a measure lifted, an exit and its
report downloaded as a PDF, an operator without the role refused, and a form without its
CSRF token refused with nothing changed."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from mobipay.sp.model import Cycle
from tests.e2e.test_console import client, form, operator, run, sign_in  # noqa: F401 - fixtures

SP = "10661234"


def setup(client: TestClient) -> None:  # noqa: F811
    async def work(c: object) -> None:
        sp = c.sp  # type: ignore[attr-defined]
        await sp.register_sp(SP, "天气通", licence="B2-20060001", hotline="4008101234", share_bp=8500, actor="t")
        await sp.add_service(SP, "TQ", "天气预报", price=500, cycle=Cycle.MONTHLY, actor="t")
        await sp.subscribe("+8613800138000", SP, "TQ")
        await sp.reply("+8613800138000")
        await sp.complain("+8613800138000", SP, "扣费不明", source="hotline")

    run(client, work)
    operator(client, "alice", "sp_governance")
    operator(client, "bob", "sp_governance")
    operator(client, "carol", "support")


def test_record_decisions_checker_and_exit_report(client: TestClient) -> None:  # noqa: F811
    setup(client)
    sign_in(client, "carol")
    assert client.get("/console/sp").status_code == 403
    sign_in(client, "alice")
    listing = client.get("/console/sp")
    assert listing.status_code == 200 and "天气通" in listing.text
    assert 'data-testid="state-10661234">active' in listing.text
    page = client.get(f"/console/sp/{SP}")
    assert "扣费不明" in page.text and "138****8000" in page.text
    data = json.loads(re.search(r'<script type="application/json" id="sp-data">(.*?)</script>', page.text,
                                re.S).group(1))  # type: ignore[union-attr]
    assert data["complaints"][-1] == 1 and data["subscribers"][-1] == 1 and data["rate"][-1] == 10000.0
    token = form(client, f"/console/sp/{SP}")
    refused = client.post(f"/console/sp/{SP}/violation", data={"cls": "billing", "level": "grave", "reason": "x",
                                                                "evidence": "y"})
    assert refused.status_code == 400 and "没有处理记录" in client.get(f"/console/sp/{SP}").text  # nothing recorded
    r = client.post(f"/console/sp/{SP}/violation", data={"csrf": token, "cls": "billing", "level": "grave",
                                                          "reason": "wrong charges", "evidence": "cdr.csv"},
                    follow_redirects=False)
    assert r.status_code == 303
    r = client.post(f"/console/sp/{SP}/violation", data={"csrf": token, "cls": "billing", "level": "grave",
                                                          "reason": "again", "evidence": "cdr2.csv"})
    assert r.status_code == 200 and "proposed" in r.text
    decision = re.search(r'data-testid="decision-(spd_[0-9a-f]+)"><td>[^<]*</td>\s*<td>[^<]*</td>\s*<td>red card',
                         r.text)
    assert decision, r.text
    assert 'data-testid="check-' not in r.text  # the maker sees no checker's button on her own proposal
    mine = client.post(f"/console/sp/{SP}/decisions/{decision.group(1)}/check",
                       data={"csrf": token, "verdict": "approve", "reason": "mine"})
    assert mine.status_code == 409 and "SP_DECISION_REFUSED" in mine.text
    sign_in(client, "bob")
    token = form(client, f"/console/sp/{SP}")
    ok = client.post(f"/console/sp/{SP}/decisions/{decision.group(1)}/check",
                     data={"csrf": token, "verdict": "approve", "reason": "verified"})
    assert ok.status_code == 200 and 'data-testid="state">port_shielded' in ok.text
    lifted = client.post(f"/console/sp/{SP}/lift", data={"csrf": token, "measure": "shield_port", "reason": "fixed"})
    assert 'data-testid="state">settlement_suspended' in lifted.text
    assert client.get(f"/console/sp/{SP}/exit-report.pdf").status_code == 409  # not exited
    client.post(f"/console/sp/{SP}/exit", data={"csrf": token, "reason": "fraud", "evidence": "case 17"})
    sign_in(client, "alice")
    token = form(client, f"/console/sp/{SP}")
    page = client.get(f"/console/sp/{SP}").text
    exit_id = re.findall(r'data-testid="check-(spd_[0-9a-f]+)"', page)
    assert len(exit_id) == 1
    done = client.post(f"/console/sp/{SP}/decisions/{exit_id[0]}/check",
                       data={"csrf": token, "verdict": "approve", "reason": "committee"})
    assert 'data-testid="state">exited' in done.text and "exit-report.pdf" in done.text
    pdf = client.get(f"/console/sp/{SP}/exit-report.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.content[:4] == b"%PDF"
    assert client.get("/console/sp/10669999").status_code == 404
