// The console's work-order page: draws the latest route replay on the county's offline map.
"use strict";
(async function () {
  const el = document.getElementById("route-map");
  if (!el) return;
  const r = await fetch(`/console/tourism/orders/${el.dataset.order}/map.json`, { credentials: "same-origin" });
  if (!r.ok) return;
  const data = await r.json();
  const map = TourismMap.draw(el, data.base, data.replay);
  const btn = document.getElementById("route-play");
  if (btn) btn.addEventListener("click", () => TourismMap.play(map, data.replay, document.getElementById("route-clock")));
})();
