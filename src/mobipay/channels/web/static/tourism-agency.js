// 旅游通, the agency's own pages (/tourism/agency): its manager or office staff signs in and
// manages the agency's sales network, staff and customer database (filed tour contracts) and
// reads its operations log, all through /v1/tourism/agency with the bearer token. Every write
// carries an Idempotency-Key kept until it is answered, so a resend after a lost answer makes
// nothing twice; refusals are shown with their code.
"use strict";
(function () {
  const BASE = "/v1/tourism/agency";
  const ROLE = { guide: "导游", driver: "司机", sales: "销售" };
  const KIND = { branch: "分社", outlet: "门市部" };
  const acct = window.tourismAccount({ name: "agency", base: BASE, page: "/tourism/agency", home: showHome });
  const { $, api } = acct;

  function li(ul, text, testid) {
    const x = document.createElement("li");
    x.textContent = text;
    if (testid) x.dataset.testid = testid;
    ul.append(x);
    return x;
  }

  async function showHome() {
    const r = await api("/me");
    const me = await r.json();
    $("who").textContent = `${me.account.name} (${me.account.role})`;
    $("agency").textContent = `${me.agency.name} · 许可证 ${me.agency.licence} · 账户余额 ${(me.agency.balance / 100).toFixed(2)} 元`;
    await refresh();
  }

  async function refresh() {
    const net = await (await api("/network")).json();
    const outlets = $("outlets"); outlets.textContent = "";  // each list cleared after its answer
    for (const o of net.outlets) li(outlets, `${KIND[o.kind] || o.kind} ${o.name} · ${o.address} · ${o.phone} · ${o.manager}`, "outlet");
    const staff = $("staff"); staff.textContent = "";
    const guide = $("k-guide"), driver = $("k-driver");
    guide.length = 1; driver.length = 1;
    for (const p of net.staff) {
      li(staff, `${ROLE[p.role] || p.role} ${p.name} ${p.phone} ${p.licence}${p.penalty_points ? ` · 扣分 ${p.penalty_points}` : ""}`, "member");
      if (p.role === "guide") guide.add(new Option(`${p.name} ${p.licence}`, p.id));
      if (p.role === "driver") driver.add(new Option(`${p.name} ${p.licence}`, p.id));
    }
    const spots = await (await api("/spots")).json();
    const box = $("spots");
    if (!box.childElementCount) {
      for (const s of spots) {
        const label = document.createElement("label"); label.className = "check";
        const cb = document.createElement("input"); cb.type = "checkbox"; cb.name = "itinerary"; cb.value = s.id;
        label.append(cb, ` ${s.name}`);
        box.append(label);
      }
    }
    const found = await (await api("/customers")).json();
    const customers = $("customers"); customers.textContent = "";
    for (const c of found) {
      li(customers, `${c.name} ${c.phone} · ${c.tours.map((t) => `${t.tour_date} ${t.people}人`).join("；")}`, "customer");
    }
    const lines = await (await api("/operations")).json();
    const log = $("log"); log.textContent = "";
    for (const e of lines) {
      li(log, `${e.at.slice(0, 16).replace("T", " ")} ${e.action} ${e.detail} ${e.actor || ""}`, "log-line");
    }
  }

  function shanghai(local) { return local ? `${local.length === 16 ? local + ":00" : local}+08:00` : null; }

  function bodyOf(f) {
    if (f.dataset.kind === "outlet") {
      return ["/outlets", { kind: f.kind.value, name: f.name.value, address: f.address.value, phone: f.phone.value,
                            manager: f.manager.value }];
    }
    if (f.dataset.kind === "staff") {
      return ["/staff", { role: f.role.value, name: f.name.value, phone: f.phone.value, licence: f.licence.value }];
    }
    const itinerary = Array.from(f.querySelectorAll("input[name=itinerary]:checked"), (x) => x.value);
    return ["/contracts", { tourist_name: f.tourist_name.value, tourist_phone: f.tourist_phone.value,
                            starts_at: shanghai(f.starts_at.value), ends_at: shanghai(f.ends_at.value), itinerary,
                            guide_id: f.guide_id.value || null, driver_id: f.driver_id.value || null,
                            price: Math.round(Number(f.price.value || 0) * 100), people: Number(f.people.value || 1) }];
  }

  for (const form of ["outlet-form", "staff-form", "contract-form"]) {
    $(form).addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const [path, json] = bodyOf(f);
      const key = acct.key(form);  // one key per form filled in, until the server answers it
      try {
        const r = await api(path, { method: "POST", json, headers: { "Idempotency-Key": key.value } });
        const body = await r.json();
        key.done();
        if (r.ok) { $("status").textContent = `已保存 saved: ${body.name || body.tourist_name || body.id}`; f.reset(); await refresh(); }
        else $("status").textContent = acct.refusal(body, r.status);
      } catch (e) { $("status").textContent = "无网络，请重试 No network: send again"; }
    });
  }

  for (const b of document.querySelectorAll(".tabs button")) {
    b.addEventListener("click", () => {
      for (const x of document.querySelectorAll(".tabs button")) x.classList.toggle("on", x === b);
      for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== `tab-${b.dataset.tab}`;
      refresh().catch(() => {});
    });
  }

  acct.start();
})();
