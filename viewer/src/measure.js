// Measuring distance and area on the map, with spherical formulas (no library): haversine for
// lengths, the spherical-excess ring formula (as used by turf/area, after Chamberlain & Duquette)
// for areas. Good to well under 0.5 % at parcel scale.
import { t } from "./i18n.js";
import { fmtArea, fmtLength } from "./ui.js";

const R_MEAN = 6371008.8;     // mean Earth radius (m)
const R_EQ = 6378137;         // WGS84 equatorial radius, as turf/area
const rad = (d) => (d * Math.PI) / 180;

export function distance([lon1, lat1], [lon2, lat2]) {
  const dLat = rad(lat2 - lat1);
  const dLon = rad(lon2 - lon1);
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(dLon / 2) ** 2;
  return 2 * R_MEAN * Math.asin(Math.min(1, Math.sqrt(a)));
}

export function pathLength(coords) {
  let sum = 0;
  for (let i = 1; i < coords.length; i++) sum += distance(coords[i - 1], coords[i]);
  return sum;
}

export function ringArea(coords) {
  const n = coords.length;
  if (n < 3) return 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const p1 = coords[i];
    const p2 = coords[(i + 1) % n];
    const p3 = coords[(i + 2) % n];
    total += (rad(p3[0]) - rad(p1[0])) * Math.sin(rad(p2[1]));
  }
  return Math.abs((total * R_EQ * R_EQ) / 2);
}

export class MeasureTool {
  constructor(cmap, resultBox, onChange) {
    this.cmap = cmap;
    this.box = resultBox;
    this.onChange = onChange;
    this.mode = null;
    this.points = [];
    this.cursor = null;
    this.handlers = {
      click: (e) => this.add(e),
      dblclick: (e) => { e.preventDefault(); this.finish(); },
      mousemove: (e) => { this.cursor = [e.lngLat.lng, e.lngLat.lat]; this.draw(); },
    };
    this.keys = (e) => {
      if (!this.mode) return;
      if (e.key === "Escape") this.stop();
      else if (e.key === "Enter") this.finish();
      else if (e.key === "Backspace" && this.points.length) { this.points.pop(); this.draw(); }
    };
  }

  ensureLayers() {
    const map = this.cmap.map;
    if (map.getSource("measure")) return;
    map.addSource("measure", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addLayer({ id: "measure-fill", type: "fill", source: "measure",
      filter: ["==", ["geometry-type"], "Polygon"],
      paint: { "fill-color": "#ffcc00", "fill-opacity": 0.25 } });
    map.addLayer({ id: "measure-line", type: "line", source: "measure",
      filter: ["!=", ["geometry-type"], "Point"],
      paint: { "line-color": "#e6a800", "line-width": 2.5, "line-dasharray": [2, 1] } });
    map.addLayer({ id: "measure-point", type: "circle", source: "measure",
      filter: ["==", ["geometry-type"], "Point"],
      paint: { "circle-radius": 4.5, "circle-color": "#fff", "circle-stroke-color": "#e6a800",
        "circle-stroke-width": 2 } });
  }

  start(mode) {
    if (this.mode === mode) { this.stop(); return; }
    this.stop();
    this.ensureLayers();
    this.mode = mode;
    this.points = [];
    this.finished = false;
    const map = this.cmap.map;
    this.cmap.interactive = false;
    map.doubleClickZoom.disable();
    map.getCanvas().style.cursor = "crosshair";
    for (const [ev, fn] of Object.entries(this.handlers)) map.on(ev, fn);
    document.addEventListener("keydown", this.keys);
    this.show(t(mode === "area" ? "measure_hint_area" : "measure_hint_distance"));
    this.onChange(mode);
  }

  stop() {
    if (!this.mode) return;
    const map = this.cmap.map;
    for (const [ev, fn] of Object.entries(this.handlers)) map.off(ev, fn);
    document.removeEventListener("keydown", this.keys);
    map.doubleClickZoom.enable();
    map.getCanvas().style.cursor = "";
    this.cmap.interactive = true;
    this.mode = null;
    this.points = [];
    map.getSource("measure")?.setData({ type: "FeatureCollection", features: [] });
    this.box.hidden = true;
    this.onChange(null);
  }

  add(e) {
    if (this.finished) { this.points = []; this.finished = false; }
    const p = [e.lngLat.lng, e.lngLat.lat];
    const last = this.points[this.points.length - 1];
    if (last && last[0] === p[0] && last[1] === p[1]) return;   // the dblclick's second click
    this.points.push(p);
    this.draw();
  }

  finish() {
    if (!this.mode) return;
    this.finished = true;
    this.cursor = null;
    this.draw();
  }

  result(points) {
    if (this.mode === "area") {
      if (points.length < 3) return { text: t("measure_hint_area") };
      const ring = [...points, points[0]];
      const area = ringArea(points);
      return { area, text: t("measure_area_result", { v: fmtArea(area), p: fmtLength(pathLength(ring)) }) };
    }
    if (points.length < 2) return { text: t("measure_hint_distance") };
    const length = pathLength(points);
    return { length, text: t("measure_length", { v: fmtLength(length) }) };
  }

  draw() {
    const pts = this.finished || !this.cursor ? this.points : [...this.points, this.cursor];
    const features = this.points.map((c) => ({ type: "Feature", geometry: { type: "Point", coordinates: c },
      properties: {} }));
    if (this.mode === "area" && pts.length >= 3) {
      features.push({ type: "Feature", properties: {},
        geometry: { type: "Polygon", coordinates: [[...pts, pts[0]]] } });
    } else if (pts.length >= 2) {
      features.push({ type: "Feature", properties: {}, geometry: { type: "LineString", coordinates: pts } });
    }
    this.cmap.map.getSource("measure")?.setData({ type: "FeatureCollection", features });
    const r = this.result(pts);
    this.last = r;
    this.show(r.text);
    this.box.dataset.metres = r.length ?? "";
    this.box.dataset.squareMetres = r.area ?? "";
    this.box.dataset.finished = this.finished ? "true" : "false";
  }

  show(text) {
    this.box.textContent = text;
    this.box.hidden = false;
  }
}
