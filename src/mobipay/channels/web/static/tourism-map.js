// The route replay map of 旅游通, for the field app and the back office: Leaflet over the
// county's own GeoJSON (roads, spots, outline: /v1/tourism/map/<county>.geojson, shipped as
// data), so it needs no tile server and works offline. Draws the phone's track, the stops
// (stay points) and each promised spot green (visited, with arrival and departure) or red
// (not visited, with the closest approach); "replay" moves a marker along the track in time.
"use strict";
(function () {
  function fmt(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return d.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", timeZone: "Asia/Shanghai" });
  }

  function draw(el, base, replay) {
    el.hidden = false;
    if (el._map) { el._map.remove(); }
    const map = L.map(el, { attributionControl: false });
    el._map = map;
    const county = L.latLngBounds([]);
    const route = L.latLngBounds([]);  // the replay's track and spots: what the map is fitted to
    L.geoJSON(base, {
      style: (f) => {
        const k = f.properties.kind;
        if (k === "boundary") return { color: "#777", weight: 1, dashArray: "4 4", fill: false };
        const cls = f.properties.class;
        return { color: cls === "national" ? "#c77d00" : cls === "provincial" ? "#d9a400" : "#999",
                 weight: cls === "rural" || cls === "urban" ? 2 : 4 };
      },
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 4, color: "#555", weight: 1 }),
      onEachFeature: (f, layer) => { if (f.properties.name) layer.bindTooltip(f.properties.name); },
    }).eachLayer((layer) => { layer.addTo(map); if (layer.getBounds) county.extend(layer.getBounds()); });
    if (replay) {
      const line = replay.track.map((p) => [p[1], p[2]]);
      if (line.length) {
        const track = L.polyline(line, { color: "#1f5fbf", weight: 3, opacity: 0.8 }).addTo(map);
        route.extend(track.getBounds());
      }
      for (const s of replay.stops) {
        L.circleMarker([s.lat, s.lon], { radius: 9, color: "#1f5fbf", fillOpacity: 0.4 })
          .bindPopup(`停留 stop ${fmt(s.arrived)}–${fmt(s.left)} (${s.minutes} min)`).addTo(map);
      }
      replay.verdicts.forEach((v, i) => {
        const color = v.visited ? "#0b6e4f" : "#b00020";
        L.circle([v.lat, v.lon], { radius: v.radius_m || 300, color, weight: 2, fillOpacity: 0.15 }).addTo(map);
        const words = v.visited ? `${v.spot}: 已游览 visited ${fmt(v.arrived)}–${fmt(v.left)}`
          : `${v.spot}: 未游览 NOT visited, 最近 closest ${Math.round(v.closest_m || 0)} m`;
        L.circleMarker([v.lat, v.lon], { radius: 6, color, fillColor: color, fillOpacity: 1, className: "verdict" })
          .bindTooltip(words, { permanent: true, direction: i % 2 ? "left" : "right" }).addTo(map);
        route.extend([v.lat, v.lon]);
      });
    }
    const fit = route.isValid() ? route : county;
    if (fit.isValid()) map.fitBounds(fit.pad(0.08)); else map.setView([26.58, 110.15], 10);
    return map;
  }

  function play(map, replay, clockEl) {
    if (!replay || !replay.track.length) return;
    const dot = L.circleMarker([replay.track[0][1], replay.track[0][2]], { radius: 7, color: "#000", fillColor: "#ffd166",
                                                                          fillOpacity: 1 }).addTo(map);
    let i = 0;
    const step = Math.max(1, Math.floor(replay.track.length / 240));
    const timer = setInterval(() => {
      i += step;
      if (i >= replay.track.length) { clearInterval(timer); i = replay.track.length - 1; }
      const p = replay.track[i];
      dot.setLatLng([p[1], p[2]]);
      if (clockEl) clockEl.textContent = fmt(p[0]);
    }, 40);
  }

  window.TourismMap = { draw, play, fmt };
})();
