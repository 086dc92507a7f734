// The payment-code page's service worker (served as /m/paycode-sw.js, scope /m/paycode):
// it keeps the page and the scripts that make the code, so a phone that loaded the page once
// shows its code with no network (the code is made in the page from the key in IndexedDB).
// Network first: online the page is always the server's (its CSRF token, this session's
// device); the cached copy is only for when the network fails. Only these GETs are touched:
// the JSON routes and every POST go to the network as usual. The page holds no balance or
// secret (the key is in IndexedDB, not in the page), which is why it may be cached although
// the server marks its pages no-store.
"use strict";
const CACHE = "mobipay-paycode-v1";
const SHELL = [
  "/m/paycode",
  "/static/paycode.js",
  "/static/mobipay.css",
  "/static/vendor/jsbarcode/JsBarcode.code128.min.js",
  "/static/vendor/qrcode-generator/qrcode.js",
];

async function keep(cache, path, response) {
  // a redirect (to the sign-in page) or a refusal is never kept as the page
  if (response.ok && !response.redirected && response.type === "basic") await cache.put(path, response.clone());
  return response;
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await Promise.all(SHELL.map(async (path) => {
      try { await keep(cache, path, await fetch(path, { credentials: "same-origin" })); } catch (e) { /* later */ }
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("mobipay-paycode") && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      return await keep(cache, url.pathname, await fetch(event.request));
    } catch (e) {
      return (await cache.match(url.pathname)) || Response.error();
    }
  })());
});
