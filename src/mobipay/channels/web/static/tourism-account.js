// 旅游通: what the agency's pages (/tourism/agency) and the guide assistant (/tourism/guide)
// share: the sign-in form and sign-out button, the bearer token in localStorage, fetch with
// the token (a 401 shows the sign-in again), Idempotency-Keys kept until their write is
// answered, and the offline service worker (cached page and last answers; signing out clears
// the cached answers, so the next person on the phone does not read them).
"use strict";
window.tourismAccount = function (opts) {
  const $ = (id) => document.getElementById(id);
  const store = window.localStorage;
  const slot = `tourism.${opts.name}.token`;

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (x) => x.toString(16).padStart(2, "0")).join("");
  }
  function token() { return store.getItem(slot) || ""; }
  function showSignIn() { $("signin").hidden = false; $("home").hidden = true; }

  async function api(path, o = {}) {
    const headers = Object.assign({ Authorization: `Bearer ${token()}` }, o.headers || {});
    let body;
    if (o.json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(o.json); }
    const r = await fetch(opts.base + path, { method: o.method || "GET", headers, body, credentials: "omit" });
    if (r.status === 401) { showSignIn(); throw new Error("signed out"); }
    return r;
  }

  // One key per thing being written, kept until the server answers it: a resend (after a lost
  // answer, a reload, the network back) makes nothing twice.
  function key(what) {
    const k = `tourism.${opts.name}.key.${what}`;
    const value = store.getItem(k) || uuid();
    store.setItem(k, value);
    return { value, done: () => store.removeItem(k) };
  }

  function refusal(body, status) { return `${body.detail || body.title || ""} (${body.code || status})`; }

  async function home() {
    $("signin").hidden = true; $("home").hidden = false;
    await opts.home();
  }

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    $("signin-error").textContent = "";
    try {
      const r = await fetch(`${opts.base}/sessions`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ login: f.login.value.trim(), password: f.password.value }) });
      const body = await r.json();
      if (!r.ok) { $("signin-error").textContent = refusal(body, r.status); return; }
      store.setItem(slot, body.token);
      f.password.value = "";
      await home();
    } catch (e) { $("signin-error").textContent = "无网络，无法登录 No network: cannot sign in"; }
  });

  $("signout").addEventListener("click", async () => {
    try { await api("/sessions", { method: "DELETE" }); } catch (e) { /* forget it here */ }
    store.removeItem(slot);
    if (window.caches) {
      for (const name of await caches.keys()) if (name.includes(`-${opts.name}-data`)) await caches.delete(name);
    }
    showSignIn();
  });

  if ("serviceWorker" in navigator && window.workbox) {
    new window.workbox.Workbox(`${opts.page}/sw.js`, { scope: opts.page }).register().catch(() => {});
  }

  function start() { if (token()) home().catch(() => showSignIn()); else showSignIn(); }
  return { $, store, api, key, refusal, start, uuid };
};
