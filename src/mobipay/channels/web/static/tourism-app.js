// 旅游通, the officers' field app (/tourism/app). Everything the officer enters goes into a
// queue kept in IndexedDB (idb) first and is sent from there: a complaint (its queue id is the
// Idempotency-Key, so a resend after a lost answer makes no second work order) and each photo
// or recording (its bytes, the SHA-256 computed here at capture, the capture time, terminal and
// position; the queue id is X-Capture-Id). The queue is flushed at once when online, again when
// the browser says the network is back, and every few seconds; it survives a reload or a
// closed app. The service worker (Workbox, /tourism/app/sw.js) keeps the app, the directory,
// news and the county's map for offline use.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const store = window.localStorage;
  let db = null;
  let flushing = false;
  let lastError = "";

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  async function openDb() {
    db = await idb.openDB("mobipay-tourism", 1, {
      upgrade(d) {
        d.createObjectStore("queue", { keyPath: "id" });
        d.createObjectStore("sent", { keyPath: "id" });
        d.createObjectStore("failed", { keyPath: "id" });
      },
    });
  }

  function token() { return store.getItem("tourism.token") || ""; }
  function officer() { try { return JSON.parse(store.getItem("tourism.officer") || "null"); } catch (e) { return null; } }

  async function api(path, opts = {}) {
    const headers = Object.assign({ Authorization: `Bearer ${token()}` }, opts.headers || {});
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
    const r = await fetch(path, { method: opts.method || "GET", headers, body: opts.body, credentials: "omit" });
    if (r.status === 401) { showSignIn(); throw new Error("signed out"); }
    return r;
  }

  async function hex(buffer) {
    const d = await crypto.subtle.digest("SHA-256", buffer);
    return Array.from(new Uint8Array(d), (x) => x.toString(16).padStart(2, "0")).join("");
  }

  function position() {
    return new Promise((resolve) => {
      if (!navigator.geolocation) { resolve(null); return; }
      navigator.geolocation.getCurrentPosition((p) => resolve(p.coords), () => resolve(null),
                                               { timeout: 3000, maximumAge: 60000 });
    });
  }

  // ------------------------------------------------------------------ the queue

  async function count() {
    const n = await db.count("queue");
    $("queued").textContent = `待发送 ${n}`;
    $("queued").dataset.count = String(n);
    const online = navigator.onLine && !lastError;
    $("net").textContent = online ? "在线 online" : "离线 offline";
    $("net").className = online ? "net" : "net off";
    return n;
  }

  async function enqueue(item) {
    item.created = Date.now();
    await db.put("queue", item);
    await count();
    flush();
  }

  async function orderIdOf(ref) {
    if (!ref.startsWith("local:")) return ref;
    const sent = await db.get("sent", ref.slice(6));
    return sent ? sent.order_id : null;
  }

  async function sendOne(item) {
    if (item.kind === "complaint") {
      const r = await api("/v1/tourism/work-orders", { method: "POST", json: item.body,
                                                       headers: { "Idempotency-Key": item.id } });
      if (r.ok) {
        const order = await r.json();
        await db.put("sent", { id: item.id, order_id: order.id, at: Date.now() });
        return true;
      }
      await db.put("failed", Object.assign(item, { error: await r.text() }));
      return true;  // refused: moved to the failed list, not retried
    }
    const order = await orderIdOf(item.order);
    if (!order) return false;  // its complaint is not sent yet
    const headers = { "Content-Type": item.type || "application/octet-stream", "X-Evidence-SHA256": item.sha256,
                      "X-Captured-At": item.captured_at, "X-Device-Id": item.device, "X-Capture-Id": item.id };
    if (item.lat != null) { headers["X-Lat"] = String(item.lat); headers["X-Lon"] = String(item.lon); }
    const r = await api(`/v1/tourism/evidence/${order}`, { method: "POST", body: item.blob, headers });
    if (!r.ok) await db.put("failed", Object.assign(item, { blob: null, error: await r.text() }));
    return true;
  }

  async function flush() {
    if (flushing || !token()) return;
    flushing = true;
    try {
      const items = (await db.getAll("queue")).sort((a, b) => a.created - b.created);
      for (const item of items) {
        const done = await sendOne(item);
        if (done) await db.delete("queue", item.id);
      }
      lastError = "";
    } catch (e) {
      lastError = String(e);  // the network is down (a TypeError from fetch): try again later
    } finally {
      flushing = false;
      await count();
    }
  }

  // ------------------------------------------------------------------ screens

  function showSignIn() {
    $("signin").hidden = false; $("home").hidden = true;
    $("signin-form").device_id.value = store.getItem("tourism.device") || "";
  }

  function showHome() {
    const o = officer();
    $("signin").hidden = true; $("home").hidden = false;
    $("who").textContent = o ? `${o.name} ${o.badge}` : "";
    refreshOrders();
  }

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    $("signin-error").textContent = "";
    store.setItem("tourism.device", f.device_id.value.trim());
    try {
      const r = await fetch("/v1/tourism/sessions", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ badge: f.badge.value.trim(), password: f.password.value, device_id: f.device_id.value.trim() }) });
      const body = await r.json();
      if (!r.ok) { $("signin-error").textContent = `${body.title || ""} (${body.code || r.status})`; return; }
      store.setItem("tourism.token", body.token);
      store.setItem("tourism.officer", JSON.stringify(body.officer));
      f.password.value = "";
      showHome();
      flush();
    } catch (e) { $("signin-error").textContent = "无网络，无法登录 No network: cannot sign in"; }
  });

  $("signout").addEventListener("click", async () => {
    try { await api("/v1/tourism/sessions", { method: "DELETE" }); } catch (e) { /* offline: forget it here */ }
    store.removeItem("tourism.token"); store.removeItem("tourism.officer");
    showSignIn();
  });

  for (const b of document.querySelectorAll(".tabs button")) {
    b.addEventListener("click", () => {
      for (const x of document.querySelectorAll(".tabs button")) x.classList.toggle("on", x === b);
      for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== `tab-${b.dataset.tab}`;
      if (b.dataset.tab === "orders" || b.dataset.tab === "evidence") refreshOrders();
      if (b.dataset.tab === "news") refreshNews();
    });
  }

  $("find-contract").addEventListener("click", async () => {
    const f = $("complaint-form");
    const sel = $("contract");
    try {
      const r = await api(`/v1/tourism/contracts?tourist_phone=${encodeURIComponent(f.complainant_phone.value)}`);
      if (!r.ok) return;
      sel.length = 1;
      for (const c of await r.json()) {
        sel.add(new Option(`${c.tour_date} ${c.agency} (${c.itinerary.length} 景点)`, c.id));
      }
      if (sel.length > 1) sel.selectedIndex = 1;
    } catch (e) { /* offline: enter the agency and date by hand */ }
  });

  $("complaint-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const body = {
      complainant_name: f.complainant_name.value.trim(), complainant_phone: f.complainant_phone.value.trim(),
      cause: f.cause.value, facts: f.facts.value.trim(), demands: f.demands.value.trim(),
      location_consent: f.location_consent.checked, complainants: Number(f.complainants.value || 1),
    };
    if (f.contract_id.value) body.contract_id = f.contract_id.value;
    else { body.agency_id = f.agency_id.value.trim() || null; body.tour_date = f.tour_date.value || null; }
    const id = uuid();
    await enqueue({ id, kind: "complaint", body, label: `${body.complainant_name} ${body.cause}` });
    $("complaint-done").textContent = `已保存，${navigator.onLine ? "发送中" : "联网后发送"} (${id.slice(0, 8)})`;
    f.reset();
    refreshOrders();
  });

  async function capture(input) {
    const file = input.files && input.files[0];
    if (!file) return;
    const blob = await file.arrayBuffer();
    const at = new Date().toISOString();
    const sha256 = await hex(blob);
    const where = await position();
    const order = $("evidence-order").value;
    if (!order) { $("evidence-done").textContent = "先选择工单 Pick a work order first"; return; }
    const type = /^(image|audio)\//.test(file.type) ? file.type : (input.id === "audio" ? "audio/mp4" : "image/jpeg");
    await enqueue({ id: uuid(), kind: "evidence", order, blob, sha256, captured_at: at, type,
                    device: store.getItem("tourism.device") || "", lat: where ? where.latitude : null,
                    lon: where ? where.longitude : null });
    $("evidence-done").textContent = `已取证 captured ${sha256.slice(0, 12)}…`;
    input.value = "";
  }
  $("photo").addEventListener("change", (ev) => capture(ev.target));
  $("audio").addEventListener("change", (ev) => capture(ev.target));

  $("directory-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const ul = $("directory");
    ul.textContent = "";
    try {
      const r = await api(`/v1/tourism/directory?q=${encodeURIComponent(f.q.value)}&kind=${f.kind.value}`);
      for (const e of await r.json()) {
        const li = document.createElement("li");
        const d = e.detail;
        const extra = e.kind === "agency" ? `负责人 ${d.manager} ${d.manager_phone} · 许可证 ${d.licence}`
          : e.kind === "guide" ? `导游证 ${d.licence} · ${d.agency}` : e.kind === "spot" ? `${d.lat}, ${d.lon}`
          : [d.person, d.unit, d.address].filter(Boolean).join(" · ");
        li.textContent = `[${e.kind}] ${e.name} ${e.phone} ${extra}`;
        ul.append(li);
      }
    } catch (e) { ul.textContent = "离线：目录不可用 offline"; }
  });

  async function refreshNews() {
    const ul = $("news");
    ul.textContent = "";
    for (const kind of ["news", "policy"]) {
      try {
        const r = await api(`/v1/tourism/news?kind=${kind}`);
        for (const n of await r.json()) {
          const li = document.createElement("li");
          li.textContent = `${kind === "policy" ? "【政策】" : ""}${n.title} — ${n.body}`;
          ul.append(li);
        }
      } catch (e) { /* offline */ }
    }
  }

  async function refreshOrders() {
    const sel = $("evidence-order");
    const ul = $("orders");
    const keep = sel.value;
    sel.length = 0; ul.textContent = "";
    for (const item of await db.getAll("queue")) {
      if (item.kind !== "complaint") continue;
      sel.add(new Option(`（待发送）${item.label}`, `local:${item.id}`));
      const li = document.createElement("li");
      li.textContent = `待发送 queued: ${item.label}`;
      li.dataset.testid = "queued-order";
      ul.append(li);
    }
    try {
      const r = await api("/v1/tourism/work-orders");
      if (r.ok) {
        for (const o of await r.json()) {
          sel.add(new Option(`${o.complainant_name} ${o.tour_date} ${o.state}`, o.id));
          const li = document.createElement("li");
          li.textContent = `${o.complainant_name} · ${o.tour_date} · ${STATES[o.state] || o.state}${o.outcome ? " · " + o.outcome : ""} `;
          li.dataset.testid = "order";
          const b = document.createElement("button");
          b.textContent = "位置回放 Route";
          b.addEventListener("click", () => showRoute(o));
          li.append(b);
          for (const [label, act] of stepsOf(o)) {
            const s = document.createElement("button");
            s.textContent = label;
            s.addEventListener("click", act);
            li.append(" ", s);
          }
          ul.append(li);
        }
      }
    } catch (e) { /* offline: the queued ones only */ }
    if (keep) sel.value = keep;
  }

  const STATES = { received: "已收到 received", accepted: "已受理 accepted", refused: "不予受理 refused",
                   transferred: "已转办 transferred", replied: "已答复 replied", mediated: "已调解 mediated",
                   terminated: "已终止 terminated" };

  async function step(o, path, json, headers) {
    const r = await api(`/v1/tourism/work-orders/${o.id}/${path}`, { method: "POST", json, headers });
    const body = await r.json();
    $("verdicts").textContent = r.ok ? `已完成 done: ${path}` : `${body.detail || body.title} (${body.code})`;
    refreshOrders();
    if (!r.ok) throw new Error(body.code);
  }

  // The refusal grounds of the 2010 rules (旅游投诉处理办法 第十条/第十五条): outside
  // jurisdiction alone transfers the complaint.
  const GROUNDS = [["time_barred", "超过旅游合同结束之日90天 More than 90 days after the tour"],
                   ["before_court", "已向法院、仲裁机构或其他调解机构申请 Before a court or another mediator"],
                   ["already_handled", "已处理且无新情况 Handled before, no new facts"],
                   ["no_jurisdiction", "不属本机构管辖（转办）Not our jurisdiction (transfer)"],
                   ["no_direct_interest", "投诉人与事件无直接利害关系 No direct interest"]];
  const OUTCOMES = [["upheld", "投诉成立 Upheld"], ["partly_upheld", "部分成立 Partly upheld"],
                    ["dismissed", "不成立 Dismissed"]];

  // A step's form under the orders (no prompt(): grounds and outcomes are choices).
  function openForm(o, title, fields, send) {
    const f = $("act");
    f.textContent = "";
    f.hidden = false;
    const h = document.createElement("h2");
    h.textContent = `${title} · ${o.complainant_name} ${o.tour_date}`;
    f.append(h);
    for (const x of fields) {
      const label = document.createElement("label");
      label.append(x.label, " ");
      let input;
      if (x.type === "checks") {
        input = document.createElement("fieldset");
        for (const [value, text] of x.options) {
          const l = document.createElement("label"); l.className = "check";
          const cb = document.createElement("input"); cb.type = "checkbox"; cb.name = x.name; cb.value = value;
          cb.dataset.testid = `${x.name}-${value}`;
          l.append(cb, ` ${text}`);
          input.append(l);
        }
      } else if (x.type === "select") {
        input = document.createElement("select");
        for (const [value, text] of x.options) input.add(new Option(text, value));
        input.name = x.name;
      } else {
        input = document.createElement(x.type === "textarea" ? "textarea" : "input");
        if (x.type !== "textarea") input.type = x.type || "text";
        if (x.type === "number") { input.min = "0.01"; input.step = "0.01"; }
        input.name = x.name;
      }
      if (input.name !== undefined && x.type !== "checks") input.dataset.testid = `act-${x.name}`;
      label.append(input);
      f.append(label);
      if (x.onchange) input.addEventListener("change", () => x.onchange(f));
    }
    const ok = document.createElement("button"); ok.type = "submit"; ok.textContent = "提交 Submit";
    ok.dataset.testid = "act-submit";
    const cancel = document.createElement("button"); cancel.type = "button"; cancel.textContent = "取消 Cancel";
    cancel.addEventListener("click", () => { f.hidden = true; });
    f.append(ok, " ", cancel);
    f.onsubmit = (ev) => {
      ev.preventDefault();
      const values = {};
      for (const x of fields) {
        values[x.name] = x.type === "checks"
          ? Array.from(f.querySelectorAll(`input[name=${x.name}]:checked`), (c) => c.value) : f.elements[x.name].value;
      }
      send(values).then(() => { f.hidden = true; }).catch(() => { /* the refusal is shown; the form stays */ });
    };
    for (const x of fields) if (x.onchange) x.onchange(f);
  }

  function refundForm(o) {
    openForm(o, "退款 Refund", [
      { name: "method", label: "方式 Method", type: "select",
        options: [["wallet", "退至游客钱包 To the tourist's wallet"], ["bank", "旅行社银行转账 The agency pays by bank"]],
        onchange: (f) => { f.elements.bank_reference.closest("label").hidden = f.elements.method.value !== "bank"; } },
      { name: "amount", label: "金额（元）Amount (CNY)", type: "number" },
      { name: "bank_reference", label: "银行流水号 Bank reference", type: "text" },
    ], (v) => {
      const fen = Math.round(Number(v.amount || 0) * 100);
      if (!(fen > 0)) { $("verdicts").textContent = "金额须大于 0 The amount must be more than 0"; return Promise.reject(); }
      // one key per refund until it is answered: a retry after a lost answer pays once
      const slot = `tourism.refund.${o.id}`;
      const key = store.getItem(slot) || uuid();
      store.setItem(slot, key);
      const body = { amount: fen, method: v.method };
      if (v.method === "bank") body.bank_reference = v.bank_reference.trim();
      return step(o, "refunds", body, { "Idempotency-Key": key }).then(() => store.removeItem(slot));
    });
  }

  function stepsOf(o) {
    // the work order's next steps by the rules (the server checks them again)
    const out = [];
    if (o.state === "received") {
      out.push(["受理 Accept", () => step(o, "accept")]);
      out.push(["不予受理 Refuse", () => openForm(o, "不予受理 Refuse", [
        { name: "grounds", label: "理由（2010年《旅游投诉处理办法》）Grounds", type: "checks", options: GROUNDS },
        { name: "words", label: "书面说明 The reasons in words", type: "textarea" },
      ], (v) => step(o, "refuse", { grounds: v.grounds, words: v.words }))]);
    }
    if (o.state === "accepted") {
      out.push(["答复 Reply", () => openForm(o, "被投诉者书面答复 The written reply", [
        { name: "text", label: "答复 Reply", type: "textarea" }], (v) => step(o, "reply", { text: v.text }))]);
    }
    if (o.state === "accepted" || o.state === "replied") {
      out.push(["调解 Mediate", () => openForm(o, "调解书 Mediation record", [
        { name: "outcome", label: "结果 Outcome", type: "select", options: OUTCOMES },
        { name: "record", label: "调解书 Record", type: "textarea" },
      ], (v) => step(o, "mediate", { outcome: v.outcome, record: v.record }))]);
      out.push(["终止调解 Terminate", () => openForm(o, "终止调解 Terminate mediation", [
        { name: "text", label: "终止理由 Reasons", type: "textarea" }], (v) => step(o, "terminate", { text: v.text }))]);
    }
    if (o.state === "mediated" && (o.outcome === "upheld" || o.outcome === "partly_upheld")) {
      out.push(["退款 Refund", () => refundForm(o)]);
    }
    return out;
  }

  async function showRoute(o) {
    const out = $("verdicts");
    out.textContent = "";
    try {
      let replays = await (await api(`/v1/tourism/work-orders/${o.id}/route-replays`)).json();
      if (!replays.length) {
        const r = await api(`/v1/tourism/work-orders/${o.id}/route-replay`, { method: "POST", json: { subject: "guide" } });
        const body = await r.json();
        if (!r.ok) { out.textContent = `${body.title} (${body.code})`; return; }
        replays = [body];
      }
      const replay = replays[replays.length - 1];
      const base = await (await fetch(`/v1/tourism/map/${o.county}.geojson`)).json();
      const map = TourismMap.draw($("map"), base, replay);
      TourismMap.play(map, replay, null);
      for (const v of replay.verdicts) {
        const li = document.createElement("li");
        li.className = v.visited ? "verdict-yes" : "verdict-no";
        li.textContent = v.visited ? `${v.spot}: 已游览 ${TourismMap.fmt(v.arrived)}–${TourismMap.fmt(v.left)}`
          : `${v.spot}: 未游览，最近 ${Math.round(v.closest_m || 0)} 米`;
        out.append(li);
      }
    } catch (e) { out.textContent = "离线：位置回放需要网络 offline"; }
  }

  window.addEventListener("online", () => { lastError = ""; flush(); });
  window.addEventListener("offline", () => count());

  async function start() {
    await openDb();
    await count();
    if (token()) showHome(); else showSignIn();
    flush();
    setInterval(flush, 3000);
    if ("serviceWorker" in navigator && window.workbox) {
      new window.workbox.Workbox("/tourism/app/sw.js", { scope: "/tourism/app" }).register().catch(() => {});
    }
  }
  window.tourismApp = { flush, count };
  start();
})();
