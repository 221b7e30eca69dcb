// The standalone 3D page (3d.html): labels, language switch, the view from the URL hash.
// A file, not an inline script, so the page runs under the server's Content-Security-Policy.
import { open3D } from "./scene3d.js";
import { codeLabel, fieldLabel, fieldUnit, setLang } from "./i18n.js";

const params = new URLSearchParams(location.search);
const lang = params.get("lang") === "en" ? "en" : "zh";
const LABELS = {
  zh: { title: "三维地籍", to2d: "二维地图", other: "English", unit: "不动产单元",
        close: "关闭", unit_code: "不动产单元号", building_code: "幢号", floor_no: "所在层",
        room_no: "房号", use: "用途", building_area: "建筑面积 (m²)",
        base_elevation: "底面高程 (m)", height: "层高 (m)" },
  en: { title: "3D cadastre", to2d: "2D map", other: "中文", unit: "Unit", close: "Close",
        unit_code: "Unit code", building_code: "Building", floor_no: "Floor",
        room_no: "Room", use: "Use", building_area: "Floor area (m²)",
        base_elevation: "Base elevation (m)", height: "Storey height (m)" },
};
const L = LABELS[lang];
setLang(lang); // the 2D viewer's field names and code tables in the same language
document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
document.title = `${L.title} / ${LABELS[lang === "en" ? "zh" : "en"].title}`;
document.getElementById("title").textContent = L.title;
document.getElementById("to2d").textContent = L.to2d;
const langButton = document.getElementById("lang");
langButton.textContent = L.other;
langButton.addEventListener("click", () => {
  params.set("lang", lang === "en" ? "zh" : "en");
  location.search = params.toString();
});

// view in the hash: #lon,lat,height,heading,pitch
const [lon, lat, height, heading, pitch] = location.hash.slice(1).split(",").map(Number);
const view = Number.isFinite(lon) && Number.isFinite(lat)
  ? { lon, lat, height: height || 600, heading: heading || 0, pitch: pitch || -45 }
  : { height: 600, heading: 0, pitch: -45 };
if (params.get("unit")) view.unitCode = params.get("unit");

const info = document.getElementById("info");
const fmt = (k, v) => {
  if (k === "use") return codeLabel("use", v);
  const text = typeof v === "number" && !Number.isInteger(v) ? v.toFixed(2) : String(v);
  return fieldUnit(k) ? `${text} ${fieldUnit(k)}` : text;
};
function showUnit(unit) {
  document.getElementById("info-title").textContent = `${L.unit} ${unit.unit_code ?? ""}`;
  const dl = document.getElementById("info-body");
  dl.replaceChildren();
  for (const [k, v] of Object.entries(unit)) {
    if (v === undefined || v === null || v === "") continue;
    const dt = document.createElement("dt");
    const label = fieldLabel(k);
    dt.textContent = label !== k ? label : L[k] || k;
    const dd = document.createElement("dd");
    dd.textContent = fmt(k, v);
    dd.dataset.field = k;
    dl.append(dt, dd);
  }
  info.hidden = false;
  params.set("unit", unit.unit_code);
  history.replaceState(null, "", `?${params}${location.hash}`);
}
document.getElementById("close-info").addEventListener("click", () => { info.hidden = true; });

const scene = open3D(document.getElementById("scene"), view, { onPick: showUnit, lang });
window.scene3d = scene;
// the 2D map link keeps the place (the 2D viewer's hash: #map=zoom/lat/lon)
function keepPlace() {
  const w = scene.view();
  const zoom = Math.max(2, Math.min(20, Math.log2(35e6 / Math.max(w.height, 50))));
  const sel = params.get("unit") ? `&sel=unit:${params.get("unit")}` : "";
  document.getElementById("to2d").href = `/#map=${zoom.toFixed(2)}/${w.lat.toFixed(6)}/` +
    `${w.lon.toFixed(6)}${sel}${lang === "en" ? "&lang=en" : ""}`;
  const hash = [w.lon.toFixed(6), w.lat.toFixed(6), Math.round(w.height),
                Math.round(w.heading), Math.round(w.pitch)].join(",");
  history.replaceState(null, "", `?${params}#${hash}`);
}
scene.ready.then(() => {
  keepPlace();
  scene.viewer.camera.moveEnd.addEventListener(keepPlace);
});
