// 旅游通's service worker (served as /tourism/app/sw.js, scope /tourism/app), with Workbox
// vendored from npm (each module from its own folder under /static/vendor). The app shell and
// its scripts: stale-while-revalidate (they open offline, and update in the background); the
// directory, news, policies and the county's map: network first, the cached answer when the
// network fails. Writes (complaints, evidence) are never cached: the page's IndexedDB queue
// sends them when the network is back.
/* global workbox */
"use strict";
importScripts("/static/vendor/workbox-sw/workbox-sw.js");
workbox.setConfig({ debug: false, modulePathCb: (name) => `/static/vendor/${name}/${name}.prod.js` });
workbox.core.setCacheNameDetails({ prefix: "mobipay-tourism" });
workbox.core.clientsClaim();
self.skipWaiting();

const SHELL = ["/tourism/app", "/static/tourism-app.js", "/static/tourism-map.js", "/static/tourism.css",
               "/static/mobipay.css", "/static/vendor/idb/umd.js", "/static/vendor/leaflet/leaflet.js",
               "/static/vendor/leaflet/leaflet.css", "/static/vendor/workbox-window/workbox-window.prod.umd.js",
               "/tourism/app/manifest.webmanifest", "/static/tourism-icon.svg"];
const shell = new workbox.strategies.StaleWhileRevalidate({ cacheName: "mobipay-tourism-shell" });
self.addEventListener("install", (event) => {
  event.waitUntil(caches.open("mobipay-tourism-shell").then((c) => c.addAll(SHELL)).catch(() => {}));
});
workbox.routing.registerRoute(({ url, request }) => request.method === "GET" && SHELL.includes(url.pathname), shell);
workbox.routing.registerRoute(
  ({ url, request }) => request.method === "GET" && /^\/v1\/tourism\/(directory|news|map\/|me$|work-orders$)/.test(url.pathname),
  new workbox.strategies.NetworkFirst({ cacheName: "mobipay-tourism-data", networkTimeoutSeconds: 4 }));
