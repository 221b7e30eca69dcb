// The 2D map (MapLibre GL JS): the server's style with its orthophoto, parcels, buildings,
// units per floor and labels; selection highlight; overlays for staff (QA findings, survey diff,
// validation report). Everything is fetched from this server (glyphs, sprites, tiles), except
// that CJK ideographs are drawn from the browser's own CJK font when it has one (see below).
import { session } from "./api.js";

const maplibregl = window.maplibregl;
// start MapLibre's web workers now (each parses the library again), while the style, TileJSON
// and raster list are still being fetched, rather than when the map is created
maplibregl.prewarm();
const PICK_LAYERS = [["unit-fill", "unit", "unit_code"], ["building-fill", "building", "building_code"],
  ["parcel-fill", "parcel", "parcel_code"]];
const OVERLAY_BEFORE = "parcel-icon";   // overlays go under the symbol layers

// (no new URL(path) for templates: it would percent-encode the {z}/{x}/{y} braces)
function absolute(path) { return new URL(".", document.baseURI).href + path; }

async function getJson(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

// zoom at which bounds fit a w×h pixel box (Web Mercator, 512 px tiles as MapLibre uses)
function fitZoom([w, s, e, n], width, height) {
  const y = (lat) => Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360));
  const dx = Math.max((e - w) / 360, 1e-9);
  const dy = Math.max((y(n) - y(s)) / (2 * Math.PI), 1e-9);
  return Math.min(Math.log2(width / 512 / dx), Math.log2(height / 512 / dy));
}

// CJK ideographs in labels: MapLibre can draw them with a font the browser has (TinySDF on a
// canvas) instead of fetching the server's SDF glyph ranges: a district's labels touch dozens of
// the 256-character CJK ranges (≈ 75 KB each gzipped), the largest part of a first view. Every
// Chinese desktop and phone has a CJK font; where none is installed, two different ideographs
// come out as the same "missing glyph" box and the server's glyphs are used instead.
// CADASTRE_VIEWER_CONFIG.serverGlyphs = true (or ?glyphs=server) forces the server's glyphs.
export const CJK_FONTS = "'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', " +
  "'PingFang SC', 'Microsoft YaHei', 'WenQuanYi Micro Hei', sans-serif";

export function localIdeographFont() {
  if (window.CADASTRE_VIEWER_CONFIG?.serverGlyphs
      || new URLSearchParams(location.search).get("glyphs") === "server") return false;
  try {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 32;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.font = `24px ${CJK_FONTS}`;
    const draw = (ch) => {
      ctx.clearRect(0, 0, 32, 32);
      ctx.fillText(ch, 2, 26);
      return ctx.getImageData(0, 0, 32, 32).data.join("");
    };
    const a = draw("国");
    return a !== draw("田") && /[^0]/.test(a) ? CJK_FONTS : false;
  } catch {
    return false;
  }
}

function tuneStyle(style, rasters) {
  const ortho = style.sources.ortho;
  if (ortho) {
    const chosen = rasters.find((r) => r.name === "demo-ortho") || rasters[0];
    if (!chosen) {
      delete style.sources.ortho;
      style.layers = style.layers.filter((l) => l.source !== "ortho");
    } else {
      ortho.tiles = [absolute(`raster/${encodeURIComponent(chosen.name)}/{z}/{x}/{y}.webp`)];
      ortho.bounds = chosen.bounds;
      ortho.minzoom = Math.max(ortho.minzoom || 0, chosen.minzoom);
      ortho.maxzoom = chosen.maxzoom;
      // no cross-fade of orthophoto tiles: under software WebGL every fade frame is a full
      // repaint that holds up tile parsing, and the first view is not done until fades end
      for (const l of style.layers) {
        if (l.source === "ortho" && l.type === "raster") {
          l.paint = { ...(l.paint || {}), "raster-fade-duration": 0 };
        }
      }
    }
  }
  style.sources.selection = { type: "geojson", data: empty() };
  const at = style.layers.findIndex((l) => l.id === OVERLAY_BEFORE);
  const selectionLayers = [
    { id: "selection-fill", type: "fill", source: "selection",
      paint: { "fill-color": "#1f78ff", "fill-opacity": 0.22 } },
    { id: "selection-line", type: "line", source: "selection",
      paint: { "line-color": "#0050d0", "line-width": 3 } },
  ];
  style.layers.splice(at < 0 ? style.layers.length : at, 0, ...selectionLayers);
  return style;
}

export function empty() { return { type: "FeatureCollection", features: [] }; }

export class CadastreMap {
  constructor() {
    this.map = null;
    this.floor = 1;
    this.onPick = () => {};
    this.onFloorsChange = () => {};
    this.interactive = true;     // false while measuring
    this.overlays = new Map();   // name -> {source ids, layer ids}
    this.bounds = null;
  }

  async init(container, view, floor = 1) {
    const [style, rasters, tj] = await Promise.all([
      getJson(window.CADASTRE_VIEWER_CONFIG.style),
      getJson("api/v1/rasters").then((r) => r.rasters).catch(() => []),
      getJson("tiles/parcels/tilejson.json").catch(() => null),
    ]);
    this.bounds = tj ? tj.bounds : null;
    tuneStyle(style, rasters);
    let center = style.center;
    let zoom = style.zoom;
    if (view) {
      center = [view.lon, view.lat];
      zoom = view.zoom;
    } else if (this.bounds && this.bounds[0] > -180) {
      const [w, s, e, n] = this.bounds;
      center = [(w + e) / 2, (s + n) / 2];
      // the whole district when it is small, else its middle at street level (fewer tiles and
      // label glyphs for the first view)
      zoom = Math.max(15, Math.min(17, fitZoom(this.bounds, container.clientWidth,
        container.clientHeight)));
    }
    this.floor = floor;
    this.setUnitsFloor(style, this.floor);
    this.localIdeographs = localIdeographFont();
    const map = new maplibregl.Map({
      container, style, center, zoom, bearing: view?.bearing || 0, pitch: view?.pitch || 0,
      hash: false, attributionControl: { compact: true },
      localIdeographFontFamily: this.localIdeographs,
      transformRequest: (url) => this.transformRequest(url),
      maxPitch: 70, dragRotate: true, cooperativeGestures: false,
      fadeDuration: 0,   // labels appear at once (no symbol fade frames before the map is idle)
    });
    this.map = map;
    map.addControl(new maplibregl.NavigationControl({ visualizePitch: true }), "bottom-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    map.on("click", (e) => this.click(e));
    map.on("mousemove", (e) => this.hover(e));
    map.on("moveend", () => this.updateFloors());
    map.on("idle", () => this.updateFloors());
    return map;
  }

  // staff tokens ride along to the staff-only tile endpoints (QA findings)
  transformRequest(url) {
    const s = session("staff");
    if (s && url.startsWith(location.origin) && url.includes("/api/v1/")) {
      return { url, headers: { Authorization: `Bearer ${s.token}` } };
    }
    return { url };
  }

  setUnitsFloor(style, floor) {
    const src = style.sources.units;
    if (src) src.tiles = [this.unitsUrl(floor)];
  }

  setFloor(floor) {
    floor = Number(floor);
    if (!Number.isFinite(floor) || floor === this.floor) return;
    this.floor = floor;
    const src = this.map.getSource("units");
    if (src) src.setTiles([this.unitsUrl(floor)]);
    this.onFloorsChange(this.floorRange());
  }

  floorRange() {
    let above = 1;
    let below = 0;
    if (this.map && this.map.getLayer("building-fill") && this.map.getZoom() >= 14) {
      for (const f of this.map.queryRenderedFeatures({ layers: ["building-fill"] })) {
        above = Math.max(above, Number(f.properties.floors_above) || 0);
        below = Math.max(below, Number(f.properties.floors_below) || 0);
      }
    }
    above = Math.max(above, this.floor);
    below = Math.max(below, -Math.min(this.floor, 0));
    return { above: Math.min(above, 200), below: Math.min(below, 9), current: this.floor };
  }

  updateFloors() {
    const r = this.floorRange();
    const key = `${r.above}/${r.below}/${r.current}`;
    if (key !== this.lastFloorKey) {
      this.lastFloorKey = key;
      this.onFloorsChange(r);
    }
  }

  pickAt(point) {
    const layers = PICK_LAYERS.filter(([id]) => this.map.getLayer(id));
    const feats = this.map.queryRenderedFeatures(point, { layers: layers.map(([id]) => id) });
    for (const [id, kind, key] of layers) {
      const f = feats.find((x) => x.layer.id === id && x.properties[key]);
      if (f) return { kind, code: f.properties[key], feature: f };
    }
    return null;
  }

  click(e) {
    if (!this.interactive) return;
    const hit = this.pickAt(e.point);
    if (hit) this.onPick(hit.kind, hit.code, { lngLat: e.lngLat });
  }

  hover(e) {
    if (!this.interactive) return;
    this.map.getCanvas().style.cursor = this.pickAt(e.point) ? "pointer" : "";
  }

  select(geometry, center) {
    const fc = empty();
    if (geometry) fc.features.push({ type: "Feature", geometry, properties: {} });
    this.map.getSource("selection")?.setData(fc);
    const pin = empty();
    if (center) pin.features.push({ type: "Feature", geometry: { type: "Point", coordinates: center },
      properties: {} });
    this.map.getSource("highlight")?.setData(pin);
  }

  // room taken by the side panel (desktop) or the bottom sheet (phone), so a feature we fly to
  // lands in the visible part of the map
  padding() {
    const base = { top: 60, bottom: 60, left: 60, right: 60 };
    const panel = document.getElementById("panel");
    if (!panel || panel.classList.contains("collapsed")) return base;
    const map = this.map.getContainer().getBoundingClientRect();
    const r = panel.getBoundingClientRect();
    if (r.width >= map.width * 0.9) base.bottom += Math.min(r.height, map.height * 0.6);
    else base.right += Math.min(r.width, map.width * 0.5);
    return base;
  }

  flyTo({ bbox, center, zoom }) {
    const padding = this.padding();
    if (bbox && bbox.length === 4 && bbox[2] > bbox[0]) {
      this.map.fitBounds([[bbox[0], bbox[1]], [bbox[2], bbox[3]]],
        { padding, maxZoom: zoom || 19, duration: 800 });
    } else if (center) {
      this.map.flyTo({ center, zoom: zoom || Math.max(this.map.getZoom(), 18), padding,
        duration: 800 });
    }
  }

  view() {
    const c = this.map.getCenter();
    return { lon: c.lng, lat: c.lat, zoom: this.map.getZoom(), bearing: this.map.getBearing(),
      pitch: this.map.getPitch() };
  }

  // ---- overlays: name -> GeoJSON or vector tiles with a fixed look per kind
  setOverlay(name, source, layers) {
    this.clearOverlay(name);
    const sid = `ov-${name}`;
    this.map.addSource(sid, source);
    const before = this.map.getLayer(OVERLAY_BEFORE) ? OVERLAY_BEFORE : undefined;
    const ids = [];
    for (const layer of layers) {
      const id = `${sid}-${layer.id}`;
      this.map.addLayer({ ...layer, id, source: sid }, before);
      ids.push(id);
    }
    this.overlays.set(name, { source: sid, layers: ids });
  }

  clearOverlay(name) {
    const ov = this.overlays.get(name);
    if (!ov) return;
    for (const id of ov.layers) if (this.map.getLayer(id)) this.map.removeLayer(id);
    if (this.map.getSource(ov.source)) this.map.removeSource(ov.source);
    this.overlays.delete(name);
  }

  // after data changed on the server: new tile URLs (?v=N) so neither MapLibre's tile cache nor
  // the browser's HTTP cache (tiles are cacheable for minutes) serves the old state
  refreshData() {
    this.dataVersion = (this.dataVersion || 0) + 1;
    const v = `v=${Date.now().toString(36)}`;
    const src = this.map.getSource("cadastre");
    if (src) {
      this.cadastreTiles = this.cadastreTiles || src.tiles.slice();
      src.setTiles(this.cadastreTiles.map((u) => `${u}${u.includes("?") ? "&" : "?"}${v}`));
    }
    this.tileVersion = v;
    const units = this.map.getSource("units");
    if (units) units.setTiles([this.unitsUrl(this.floor)]);
  }

  unitsUrl(floor) {
    const v = this.tileVersion ? `&${this.tileVersion}` : "";
    return absolute(`tiles/units/{z}/{x}/{y}.mvt?floor=${floor}${v}`);
  }
}

// ---- looks of the staff overlays
const SEVERITY = ["match", ["get", "severity"], "error", "#e31a1c", "warning", "#ff7f00", "#1f78b4"];

export function qaLayers() {
  return [
    { id: "fill", type: "fill", "source-layer": "qa_findings",
      filter: ["==", ["geometry-type"], "Polygon"],
      paint: { "fill-color": SEVERITY, "fill-opacity": 0.45 } },
    { id: "line", type: "line", "source-layer": "qa_findings",
      paint: { "line-color": SEVERITY, "line-width": 2.5 } },
    { id: "point", type: "circle", "source-layer": "qa_findings",
      filter: ["==", ["geometry-type"], "Point"],
      paint: { "circle-color": SEVERITY, "circle-radius": 7, "circle-stroke-color": "#fff",
        "circle-stroke-width": 2 } },
  ];
}

const CHANGE = ["match", ["get", "change"], "new", "#1a9850", "changed", "#fd8d3c",
  "retired", "#d73027", "#666666"];

export function diffLayers() {
  return [
    { id: "after-fill", type: "fill", filter: ["==", ["get", "state"], "after"],
      paint: { "fill-color": CHANGE, "fill-opacity": 0.4 } },
    { id: "after-line", type: "line", filter: ["==", ["get", "state"], "after"],
      paint: { "line-color": CHANGE, "line-width": 2.5 } },
    { id: "before-line", type: "line", filter: ["==", ["get", "state"], "before"],
      paint: { "line-color": CHANGE, "line-width": 2, "line-dasharray": [2, 2] } },
  ];
}

export function reportLayers() {
  return [
    { id: "fill", type: "fill", filter: ["==", ["geometry-type"], "Polygon"],
      paint: { "fill-color": SEVERITY, "fill-opacity": 0.45 } },
    { id: "line", type: "line", filter: ["!=", ["geometry-type"], "Point"],
      paint: { "line-color": SEVERITY, "line-width": 2.5 } },
    { id: "point", type: "circle", filter: ["==", ["geometry-type"], "Point"],
      paint: { "circle-color": SEVERITY, "circle-radius": 8, "circle-stroke-color": "#fff",
        "circle-stroke-width": 2 } },
  ];
}

// bbox of a GeoJSON FeatureCollection (lon/lat)
export function bboxOf(fc) {
  let w = Infinity; let s = Infinity; let e = -Infinity; let n = -Infinity;
  const visit = (c) => {
    if (typeof c[0] === "number") {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else c.forEach(visit);
  };
  for (const f of fc.features || []) if (f.geometry) visit(f.geometry.coordinates);
  return Number.isFinite(w) ? [w, s, e, n] : null;
}
