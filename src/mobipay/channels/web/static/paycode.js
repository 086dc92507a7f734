// The wallet's payment code (付款码) at /m/paycode, made in the browser, offline.
//
// Once, the page asks the server for this session's device secret (POST /m/paycode/device)
// and keeps it in IndexedDB as a non-extractable WebCrypto HMAC key: scripts of the page can
// make codes with it but never read its bytes back, and the server never sends it again.
// Every 30 s it shows 78 + the 8-digit device number + the 8-digit TOTP (RFC 6238 over
// RFC 4226's HOTP: HMAC-SHA1 of the 30 s step, dynamic truncation, 8 digits) of the
// platform's time (the browser's clock plus the offset learned from server_time), as a
// Code 128 barcode (JsBarcode), a QR code (qrcode-generator) and the digits in groups of four.
// While the page is visible it polls GET /m/paycode/pending every 3 s: the platform's clock,
// whether this session's device still pays (re-issued, revoked or signed out: the key is
// forgotten) and the orders a till waits on the payer's PIN for (USERPAYING).
// A service worker (/m/paycode-sw.js) keeps the page and these scripts for offline use.
"use strict";
(function () {
  const root = document.getElementById("paycode");
  if (!root) return;
  const en = document.documentElement.lang === "en";
  const T = (zh, eng) => (en ? eng : zh);
  const part = (name) => document.querySelector(`[data-testid="${name}"]`);
  const PREFIX = "78", DIGITS = 8, PERIOD = 30, POLL_MS = 3000;
  const DB = "mobipay-paycode", STORE = "device", ID = "current";
  let csrf = root.dataset.csrf, key = root.dataset.key;
  let device = null; // {device_id, device_no, key: CryptoKey, offset}
  let shownStep = null;

  // ------------------------------------------------------------------ keeping the device in IndexedDB

  function openDb() {
    return new Promise((ok, fail) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => ok(req.result);
      req.onerror = () => fail(req.error);
    });
  }

  async function inStore(mode, work) {
    const db = await openDb();
    return new Promise((ok, fail) => {
      const tx = db.transaction(STORE, mode);
      const req = work(tx.objectStore(STORE));
      tx.oncomplete = () => { db.close(); ok(req.result); };
      tx.onerror = tx.onabort = () => { db.close(); fail(tx.error); };
    });
  }

  const load = () => inStore("readonly", (s) => s.get(ID));
  const save = (value) => inStore("readwrite", (s) => s.put(value, ID));
  const forget = () => inStore("readwrite", (s) => s.delete(ID));

  // ------------------------------------------------------------------ the code (RFC 4226 / 6238)

  function base32(text) { // RFC 4648 without padding, as the server sends the secret
    const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const out = [];
    let bits = 0, value = 0;
    for (const ch of text.replace(/=+$/, "").toUpperCase()) {
      const i = ALPHABET.indexOf(ch);
      if (i < 0) throw new Error("the secret is not base32");
      value = ((value << 5) | i) & 0xffff;
      bits += 5;
      if (bits >= 8) {
        out.push((value >>> (bits - 8)) & 0xff);
        bits -= 8;
      }
    }
    return new Uint8Array(out);
  }

  async function otp(hmacKey, step) {
    const counter = new DataView(new ArrayBuffer(8)); // the step, 8 bytes big-endian
    counter.setUint32(0, Math.floor(step / 2 ** 32));
    counter.setUint32(4, step >>> 0);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, counter.buffer));
    const at = mac[mac.length - 1] & 0x0f; // dynamic truncation
    const bin = ((mac[at] & 0x7f) << 24) | (mac[at + 1] << 16) | (mac[at + 2] << 8) | mac[at + 3];
    return String(bin % 10 ** DIGITS).padStart(DIGITS, "0");
  }

  const platformNow = () => Date.now() / 1000 + device.offset;

  function draw(code) {
    const digits = code.match(/.{1,4}/g).join(" ");
    part("paycode-digits").textContent = digits;
    root.dataset.code = code;
    if (window.JsBarcode) {
      window.JsBarcode("#paycode-barcode", code, { format: "CODE128C", displayValue: false, width: 2, height: 80,
                                                    margin: 6 });
    }
    if (window.qrcode) {
      const qr = window.qrcode(0, "M");
      qr.addData(code, "Numeric");
      qr.make();
      document.getElementById("paycode-qr").innerHTML = qr.createSvgTag({ cellSize: 6, margin: 12, scalable: true });
    }
  }

  async function tick() {
    if (!device) return;
    const now = platformNow();
    const step = Math.floor(now / PERIOD);
    part("paycode-countdown").textContent = String(PERIOD - Math.floor(now % PERIOD));
    if (step === shownStep) return;
    shownStep = step;
    draw(PREFIX + device.device_no + (await otp(device.key, step)));
  }

  // ------------------------------------------------------------------ what the page shows

  function show(view) {
    for (const name of ["paycode-loading", "paycode-setup", "paycode-not-bound", "paycode-show"]) {
      part(name).hidden = name !== view;
    }
  }

  const say = (text) => { part("paycode-status").textContent = text || ""; };

  function showDevice() {
    shownStep = null;
    show("paycode-show");
    return tick();
  }

  function showSetup(locked) {
    device = null;
    part("paycode-locked").hidden = !locked;
    show(root.dataset.bound === "1" ? "paycode-setup" : "paycode-not-bound");
  }

  async function post(path, fields) {
    const body = new URLSearchParams({ csrf, ...fields });
    const response = await fetch(path, { method: "POST", body, credentials: "same-origin",
                                         headers: { Accept: "application/json" } });
    let answer = {};
    try { answer = await response.json(); } catch (e) { answer = {}; }
    return { status: response.status, answer };
  }

  async function enable() {
    const button = document.getElementById("paycode-enable");
    button.disabled = true;
    say("");
    try {
      const { status, answer } = await post("/m/paycode/device", { key });
      if (answer.next_key) key = answer.next_key;
      if (status === 403 && answer.code === "PAYCODE_DEVICE_NOT_BOUND") {
        root.dataset.bound = "0";
        part("paycode-not-bound").querySelector("p").textContent = answer.message;
        show("paycode-not-bound");
        return;
      }
      if (status !== 201 && status !== 200) { // 200: a retry answered the same device
        say(answer.message || T("开通失败，请重试。", "That did not work: try again."));
        return;
      }
      const hmacKey = await crypto.subtle.importKey("raw", base32(answer.secret), { name: "HMAC", hash: "SHA-1" },
                                                    false, ["sign"]);
      device = { device_id: answer.device_id, device_no: answer.device_no, key: hmacKey,
                 offset: answer.server_time - Date.now() / 1000 };
      await save(device);
      await showDevice();
    } catch (e) { // offline: the same key again next time answers the same device
      say(T("网络不可用，请联网后重试。", "No network: try again when online."));
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ orders waiting for the PIN

  function orderCard(order) {
    const card = document.createElement("form");
    card.className = "card paycode-order";
    card.dataset.testid = "paycode-order";
    card.dataset.order = order.order_id;
    card.autocomplete = "off";
    const title = document.createElement("h2");
    title.textContent = T("确认付款", "Confirm the payment");
    const who = document.createElement("div");
    who.dataset.testid = "paycode-order-merchant";
    who.textContent = order.merchant + (order.store ? " · " + order.store : "");
    const what = document.createElement("small");
    what.textContent = order.subject;
    const amount = document.createElement("div");
    amount.className = "amount";
    amount.dataset.testid = "paycode-order-amount";
    amount.textContent = "¥" + order.amount_text;
    const label = document.createElement("label");
    label.textContent = T("支付密码", "Payment PIN");
    const pin = document.createElement("input");
    pin.type = "password";
    pin.inputMode = "numeric";
    pin.maxLength = 12;
    pin.required = true;
    pin.name = "pin";
    pin.id = "pin-" + order.order_id;
    label.htmlFor = pin.id;
    const pay = document.createElement("button");
    pay.type = "submit";
    pay.textContent = T("确认付款", "Pay");
    const no = document.createElement("button");
    no.type = "button";
    no.className = "secondary";
    no.textContent = T("拒绝", "Decline");
    const outcome = document.createElement("div");
    outcome.setAttribute("role", "alert");
    outcome.dataset.testid = "paycode-order-outcome";
    card.append(title, who, what, amount, label, pin, pay, no, outcome);
    const answer = async (path, fields) => {
      pay.disabled = no.disabled = true;
      try {
        const { status, answer: body } = await post(path, fields);
        if (status === 200 && body.state === "SUCCESS") {
          outcome.className = "ok";
          outcome.textContent = T("已付款 ¥", "Paid ¥") + body.paid_text;
        } else if (status === 200) {
          outcome.className = "";
          outcome.textContent = T("已拒绝，未扣款。", "Declined: nothing was paid.");
        } else {
          outcome.className = "error";
          outcome.textContent = body.message || T("请重试。", "Try again.");
          pay.disabled = no.disabled = false;
          return;
        }
        card.dataset.done = "1";
        pin.value = "";
        for (const done of [label, pin, pay, no]) done.hidden = true;
      } catch (e) {
        outcome.className = "error";
        outcome.textContent = T("网络不可用，请重试。", "No network: try again.");
        pay.disabled = no.disabled = false;
      }
    };
    card.addEventListener("submit", (event) => {
      event.preventDefault();
      answer(`/m/paycode/orders/${encodeURIComponent(order.order_id)}/confirm`, { pin: pin.value });
    });
    no.addEventListener("click", () => answer(`/m/paycode/orders/${encodeURIComponent(order.order_id)}/decline`, {}));
    return card;
  }

  function showOrders(orders) {
    const box = part("paycode-orders");
    const waiting = new Set(orders.map((o) => o.order_id));
    for (const card of [...box.children]) { // answered ones stay until the next page; gone ones leave
      if (!waiting.has(card.dataset.order) && card.dataset.done !== "1") card.remove();
    }
    const shown = new Set([...box.children].map((c) => c.dataset.order));
    for (const order of orders) {
      if (!shown.has(order.order_id)) box.append(orderCard(order));
    }
  }

  // ------------------------------------------------------------------ talking to the platform

  async function poll() {
    let response;
    try {
      response = await fetch("/m/paycode/pending", { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (e) {
      return false; // offline: the code goes on from the stored key and offset
    }
    if (response.status === 401) {
      if (device) await forget();
      device = null;
      say(T("登录已失效，请重新登录。", "Your session has ended: sign in again."));
      show(""); // nothing to show but the sentence
      return true;
    }
    if (!response.ok) return false;
    const state = await response.json();
    const mine = state.device;
    if (device && (!mine || mine.device_id !== device.device_id || mine.state !== "active")) {
      await forget(); // re-issued, revoked, locked or another wallet's session: it no longer pays
      showSetup(mine && mine.device_id === device.device_id && mine.state === "locked");
    } else if (device) {
      device.offset = state.server_time - Date.now() / 1000;
      await save(device);
    } else if (!part("paycode-setup").hidden || !part("paycode-loading").hidden) {
      showSetup(mine && mine.state === "locked");
    }
    showOrders(state.orders || []);
    return true;
  }

  let timer = null;
  function schedule() {
    clearTimeout(timer);
    if (document.visibilityState === "visible") timer = setTimeout(async () => { await poll(); schedule(); }, POLL_MS);
  }

  async function start() {
    if (!window.crypto || !crypto.subtle || !window.indexedDB) {
      show("paycode-loading");
      part("paycode-loading").textContent = T("此浏览器无法生成付款码（需要 HTTPS 与 WebCrypto）。",
                                              "This browser cannot make payment codes (it needs HTTPS and WebCrypto).");
      return;
    }
    document.getElementById("paycode-enable").addEventListener("click", enable);
    try { device = (await load()) || null; } catch (e) { device = null; }
    if (device) await showDevice();
    const online = await poll();
    if (!online && !device) {
      show("paycode-loading");
      part("paycode-loading").textContent = T("请联网后开通付款码。", "Connect to the network to turn the payment code on.");
    }
    setInterval(tick, 1000);
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") poll(); schedule(); });
    schedule();
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/m/paycode-sw.js", { scope: "/m/paycode" }).catch(() => {});
    }
  }

  start();
})();
