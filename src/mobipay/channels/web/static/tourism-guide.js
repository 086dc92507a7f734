// 旅游通, the guide assistant (/tourism/guide): the guide signs in with their own account, sees
// the day's tours (the contract's promised spots, in order, with the check-ins so far) and
// checks in at a spot with the phone's position (navigator.geolocation). A check-in carries an
// Idempotency-Key kept until it is answered; the server keeps its distance from the spot and
// marks one made away from it, in the agency's operations log the bureau supervises. Scenic
// spots in the mountains often have no signal: a check-in made there waits on the phone (with
// the time the position was taken) and is sent when the network is back, after a reload too.
"use strict";
(function () {
  const acct = window.tourismAccount({ name: "guide", base: "/v1/tourism/guide", page: "/tourism/guide",
                                      home: showHome });
  const { $, api, store } = acct;
  const QUEUE = "tourism.guide.pending";

  function position() {
    return new Promise((resolve, reject) => {
      if (!navigator.geolocation) { reject(new Error("no geolocation")); return; }
      navigator.geolocation.getCurrentPosition((p) => resolve(p.coords), reject,
                                               { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
    });
  }

  function today() {
    const d = new Date(Date.now() + 8 * 3600 * 1000);  // Beijing's day
    return d.toISOString().slice(0, 10);
  }

  async function showHome() {
    showQueue();
    if (!$("day").value) $("day").value = today();
    try {
      const me = await (await api("/me")).json();
      $("who").textContent = `${me.name} · ${me.agency}`;
      await refresh();
    } catch (e) {
      if (e.message === "signed out") throw e;
      // offline, and this day's tours not kept yet: still signed in, the queue still shown
      $("status").textContent = "无网络：显示已保存的内容 No network: what was saved is shown";
    }
    await flush();
  }

  async function refresh() {
    const box = $("tours");
    const tours = await (await api(`/tours?day=${$("day").value}`)).json();
    box.textContent = "";  // after the answer: two refreshes at once draw the tours once
    if (!tours.length) { box.textContent = "当天没有行程 No tour this day"; return; }
    for (const t of tours) {
      const h = document.createElement("h2");
      const at = new Date(t.starts_at).toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit" });
      h.textContent = `${t.tourist} · ${t.people}人 · ${at}`;
      const ul = document.createElement("ul"); ul.className = "list"; ul.dataset.testid = "itinerary";
      for (const s of t.spots) {
        const li = document.createElement("li");
        li.dataset.testid = "spot";
        const last = s.checked_in[s.checked_in.length - 1];
        li.append(`${s.name} `);
        if (last) {
          const tag = document.createElement("span");
          tag.className = last.at_spot ? "verdict-yes" : "verdict-no";
          tag.textContent = last.at_spot ? `已签到 ${last.distance_m} 米` : `不在景点 ${last.distance_m} 米`;
          li.append(tag, " ");
        }
        const b = document.createElement("button");
        b.textContent = "签到 Check in";
        b.dataset.testid = `check-in-${s.id}`;
        b.addEventListener("click", () => checkIn(t, s));
        li.append(b);
        ul.append(li);
      }
      box.append(h, ul);
    }
  }

  function pending() { return JSON.parse(store.getItem(QUEUE) || "[]"); }
  function showQueue() {
    const n = pending().length;
    $("queue").textContent = n ? `${n} 条签到待发送 check-in(s) waiting for the network` : "";
  }

  async function checkIn(t, s) {
    $("status").textContent = "定位中 locating…";
    let where;
    try { where = await position(); } catch (e) { $("status").textContent = "无法定位 No position: allow location"; return; }
    const key = acct.key(`${t.contract_id}.${s.id}`);
    const queue = pending().filter((x) => x.key !== key.value);
    queue.push({ key: key.value, contract_id: t.contract_id, spot_id: s.id, lat: where.latitude,
                 lon: where.longitude, taken_at: new Date().toISOString() });
    store.setItem(QUEUE, JSON.stringify(queue));
    showQueue();
    await flush();
  }

  // Send what waits, oldest first; stop at the first network failure (it stays queued).
  let flushing = false;
  async function flush() {
    if (flushing) return;
    flushing = true;
    let sent = 0;
    try {
      for (const c of pending()) {
        let r;
        try {
          r = await api("/check-ins", { method: "POST", headers: { "Idempotency-Key": c.key },
            json: { contract_id: c.contract_id, spot_id: c.spot_id, lat: c.lat, lon: c.lon, taken_at: c.taken_at } });
        } catch (e) { $("status").textContent = "无网络：签到已保存，联网后自动发送 No network: kept, sent when back"; break; }
        const body = await r.json();
        sent += 1;
        store.setItem(QUEUE, JSON.stringify(pending().filter((x) => x.key !== c.key)));
        store.removeItem(`tourism.guide.key.${c.contract_id}.${c.spot_id}`);
        $("status").textContent = r.ok ? `${body.spot}: ${body.at_spot ? "已签到" : "不在景点"} ${body.distance_m} 米`
          : acct.refusal(body, r.status);
      }
    } finally { flushing = false; showQueue(); }
    if (sent) await refresh().catch(() => {});
  }

  window.addEventListener("online", () => flush().catch(() => {}));
  $("day").addEventListener("change", () => refresh().catch(() => {}));
  acct.start();
})();
