// 旅游通's service worker, with Workbox vendored from npm (each module from its own folder under
// /static/vendor). One worker for the three pages, each registering it from its own folder so
// that its scope is that page: the officers' app (/tourism/app/sw.js), the agency's pages
// (/tourism/agency/sw.js) and the guide assistant (/tourism/guide/sw.js); the scope says which
// page's shell and answers it keeps. The page and its scripts: stale-while-revalidate (they open
// offline, and update in the background); what the page reads: network first, the cached
// answer when the network fails. Writes are never cached: the pages keep what they have not
// sent yet (IndexedDB in the app, localStorage in the guide assistant) and send it when the
// network is back.
/* global workbox */
"use strict";
importScripts("/static/vendor/workbox-sw/workbox-sw.js");
workbox.setConfig({ debug: false, modulePathCb: (name) => `/static/vendor/${name}/${name}.prod.js` });

const COMMON = ["/static/tourism.css", "/static/mobipay.css", "/static/tourism-icon.svg",
                "/static/vendor/workbox-window/workbox-window.prod.umd.js"];
const PAGES = {
  app: {
    shell: ["/tourism/app", "/static/tourism-app.js", "/static/tourism-map.js", "/static/vendor/idb/umd.js",
            "/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css",
            "/tourism/app/manifest.webmanifest"],
    reads: /^\/v1\/tourism\/(directory|news|map\/|me$|work-orders$)/,
  },
  agency: {
    shell: ["/tourism/agency", "/static/tourism-account.js", "/static/tourism-agency.js"],
    reads: /^\/v1\/tourism\/agency\/(me|network|customers|spots|operations)$/,
  },
  guide: {
    shell: ["/tourism/guide", "/static/tourism-account.js", "/static/tourism-guide.js"],
    reads: /^\/v1\/tourism\/guide\/(me|tours)$/,
  },
};
const name = new URL(self.registration.scope).pathname.split("/").filter(Boolean).pop() || "app";
const page = PAGES[name] || PAGES.app;
const SHELL = COMMON.concat(page.shell);
const SHELL_CACHE = `mobipay-tourism-${name}-shell`;

workbox.core.setCacheNameDetails({ prefix: `mobipay-tourism-${name}` });
workbox.core.clientsClaim();
self.skipWaiting();
self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((c) => c.addAll(SHELL)).catch(() => {}));
});
workbox.routing.registerRoute(({ url, request }) => request.method === "GET" && SHELL.includes(url.pathname),
                              new workbox.strategies.StaleWhileRevalidate({ cacheName: SHELL_CACHE }));
// Named "-<page>-data": signing out of the agency's pages or the guide assistant deletes it.
workbox.routing.registerRoute(({ url, request }) => request.method === "GET" && page.reads.test(url.pathname),
                              new workbox.strategies.NetworkFirst({ cacheName: `mobipay-tourism-${name}-data`,
                                                                    networkTimeoutSeconds: 4 }));
