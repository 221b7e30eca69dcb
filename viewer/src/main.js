// The web viewer: public map, search, information panel, 楼盘表, measuring, shareable links,
// 2D ↔ 3D, the owner flow and the staff workspaces. Plain ES modules, no bundler.
import { applyI18n, getLang, initLang, onLangChange, setLang, t } from "./i18n.js";
import { readHash, writeHash } from "./hash.js";
import { CadastreMap } from "./map.js";
import { fetchFeature, renderFeature } from "./info.js";
import { MeasureTool } from "./measure.js";
import { OwnerPanel } from "./owner.js";
import { initSearch } from "./search.js";
import { ProgressPanel } from "./progress.js";
import { StaffPanel } from "./staff.js";
import { cameraFromMap, load3D, zoomFromCamera } from "./switch3d.js";
import { clear, el, errorText, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const state = { view: null, floor: 1, selection: null, threeD: false, mode: "map", lang: "zh" };
let cmap;
let measure;
let owner;
let staff;
let progress;
const PANEL_TITLES = { map: "panel_title", owner: "owner_title", staff: "mode_staff",
  progress: "progress_title" };
let current = null;         // {kind, rec} shown in the info panel
let scene = null;           // the open 3D scene's handle
let resolveReady;

const viewer = {
  map: null,
  ready: new Promise((r) => { resolveReady = r; }),
  firstViewMs: null,        // navigation start → first view fully rendered (all tiles)
  firstTilesMs: null,       // navigation start → first cadastral tiles drawn
  marks: { script: Math.round(performance.now()) },   // milestones (ms since navigation start)
  scene3d: null,
  select: (kind, ref, opts) => select(kind, ref, { fly: true, ...opts }),
  setLang: (lang) => setLang(lang),
  state,
};
window.cadastreViewer = viewer;

function saveHash() {
  state.lang = getLang();
  writeHash(state);
}

// ---------------------------------------------------------------- selection and the info panel
async function select(kind, ref, { fly = false, bbox = null, center = null, from3d = false } = {}) {
  setMode("map");
  state.selection = { kind, ref };
  saveHash();
  const panel = $("info-panel");
  clear(panel).append(el("p", { class: "hint" }, t("loading")));
  expandPanel(true);
  if (fly && (bbox || center)) cmap.flyTo({ bbox, center, zoom: kind === "unit" ? 19 : 18 });
  let rec;
  try {
    rec = await fetchFeature(kind, ref);
  } catch (err) {
    clear(panel).append(el("p", { class: "error" }, err.status === 404 ? t("not_found") : errorText(err)));
    cmap.select(null, null);
    return;
  }
  if (state.selection?.ref !== ref) return;   // another selection meanwhile
  current = { kind, rec };
  if (kind === "unit" && rec.floor_no !== undefined && rec.floor_no !== null) setFloor(rec.floor_no);
  showCurrent();
  cmap.select(rec.geometry || null, rec.center || null);
  if (fly) {
    cmap.flyTo({ bbox: rec.bbox || bbox, center: rec.center || center,
      zoom: kind === "unit" ? 19 : kind === "building" ? 18.5 : 18 });
  }
  if (scene && kind === "unit" && !from3d) {
    try {
      if (typeof scene.select === "function") scene.select(rec.unit_code);
      if (rec.center) scene.flyTo({ lon: rec.center[0], lat: rec.center[1], height: 150 });
    } catch { /* the scene is closing */ }
  }
  panel.querySelector(".info-title")?.focus({ preventScroll: true });
}

function showCurrent() {
  if (!current) return;
  renderFeature($("info-panel"), current.kind, current.rec, {
    onClose: clearSelection,
    onFloor: (n) => { setFloor(n); if (cmap.map.getZoom() < 17.5) cmap.map.easeTo({ zoom: 18.5 }); },
    onUnit: (code) => select("unit", code, { fly: true }),
    onBuilding: (code) => select("building", code, { fly: true }),
    on3D: (rec) => open3D({ unitCode: current.kind === "unit" ? rec.unit_code : undefined,
      center: rec.center }),
  });
}

function clearSelection() {
  state.selection = null;
  current = null;
  cmap.select(null, null);
  saveHash();
  clear($("info-panel")).append(el("p", { class: "hint" }, t("hint_click")));
}

// ---------------------------------------------------------------- floors
function setFloor(n) {
  cmap.setFloor(n);
  state.floor = cmap.floor;
  $("floor-select").value = String(cmap.floor);
  saveHash();
}

function renderFloors({ above, below, current: cur }) {
  const sel = $("floor-select");
  const opts = [];
  for (let n = above; n >= 1; n--) opts.push([n, t("floor_n", { n })]);
  for (let n = 1; n <= below; n++) opts.push([-n, t("floor_below", { n })]);
  clear(sel);
  for (const [n, label] of opts) sel.append(el("option", { value: String(n) }, label));
  sel.value = String(cur);
}

// ---------------------------------------------------------------- modes and the panel
function setMode(mode) {
  if (state.mode === mode) return;
  if (state.mode === "staff" && mode !== "staff") staff?.dispose();
  state.mode = mode;
  for (const b of document.querySelectorAll(".mode")) {
    b.setAttribute("aria-pressed", b.dataset.mode === mode ? "true" : "false");
  }
  for (const v of document.querySelectorAll(".view")) v.hidden = v.dataset.view !== mode;
  $("panel-title").textContent = t(PANEL_TITLES[mode] || "panel_title");
  if (mode === "owner") owner.render();
  if (mode === "staff") staff.render();
  if (mode === "progress") progress.render();
  expandPanel(true);
  saveHash();
}

function expandPanel(open) {
  const btn = $("panel-toggle");
  $("panel-body").hidden = !open;
  $("panel").classList.toggle("collapsed", !open);
  btn.setAttribute("aria-expanded", open ? "true" : "false");
  btn.setAttribute("aria-label", t(open ? "panel_collapse" : "panel_expand"));
  btn.textContent = open ? "▾" : "▴";
}

// ---------------------------------------------------------------- 3D
async function open3D({ unitCode, center } = {}) {
  const container = $("scene3d");
  const button = $("toggle-3d");
  if (scene) {
    if (unitCode && typeof scene.select === "function") scene.select(unitCode);
    if (center) scene.flyTo({ lon: center[0], lat: center[1], height: 150 });
    return;
  }
  button.disabled = true;
  toast(t("three_d_loading"), { ms: 2500 });
  try {
    const mod = await load3D();
    const v = cmap.view();
    if (center) { v.lon = center[0]; v.lat = center[1]; v.zoom = Math.max(v.zoom, 18); }
    const rect = $("map").getBoundingClientRect();
    const camera = { ...cameraFromMap(v, rect.width, rect.height), unitCode };
    measure.stop();
    container.hidden = false;
    $("map").classList.add("behind");
    document.body.classList.add("mode-3d");
    scene = await mod.open3D(container, camera, {
      lang: getLang(),
      onPick: (unit) => {
        const code = unit && (unit.unit_code || unit.unitCode || unit.code);
        if (code) select("unit", code, { fly: false, from3d: true });
        else if (unit && unit.building_code) {
          select("building", unit.building_code, { fly: false, from3d: true });
        }
      },
    });
    viewer.scene3d = scene;
    state.threeD = true;
    button.setAttribute("aria-pressed", "true");
    button.textContent = "2D";
    saveHash();
  } catch (err) {
    container.hidden = true;
    $("map").classList.remove("behind");
    document.body.classList.remove("mode-3d");
    scene = null;
    state.threeD = false;
    saveHash();
    toast(t("three_d_unavailable", { msg: err.message || String(err) }), { error: true, ms: 6000 });
  } finally {
    button.disabled = false;
  }
}

function close3D() {
  if (!scene) return;
  try {
    const v = scene.view();
    const rect = $("map").getBoundingClientRect();
    if (v && Number.isFinite(v.lon) && Number.isFinite(v.lat)) {
      cmap.map.jumpTo({ center: [v.lon, v.lat],
        zoom: zoomFromCamera(v, rect.width, rect.height) });
    }
  } catch { /* keep the 2D view */ }
  try { scene.close(); } catch { /* already gone */ }
  scene = null;
  viewer.scene3d = null;
  state.threeD = false;
  $("scene3d").hidden = true;
  $("map").classList.remove("behind");
  document.body.classList.remove("mode-3d");
  cmap.map.resize();
  const button = $("toggle-3d");
  button.setAttribute("aria-pressed", "false");
  button.textContent = "3D";
  saveHash();
}

// ---------------------------------------------------------------- sharing
async function share() {
  saveHash();
  const url = location.href;
  try {
    await navigator.clipboard.writeText(url);
    toast(t("share_copied"));
  } catch {
    toast(t("share_shown", { url }), { ms: 10000 });
  }
}

// ---------------------------------------------------------------- boot
function measureFirstView(map) {
  const onData = () => {
    if (viewer.firstTilesMs === null && map.getSource("cadastre") && map.isSourceLoaded("cadastre")) {
      viewer.firstTilesMs = Math.round(performance.now());
      map.off("sourcedata", onData);
    }
  };
  map.on("sourcedata", onData);
  map.once("idle", () => {
    viewer.firstViewMs = Math.round(performance.now());
    if (viewer.firstTilesMs === null) viewer.firstTilesMs = viewer.firstViewMs;
    resolveReady(viewer);
  });
}

async function boot() {
  initLang();
  const h = readHash();
  if (h.lang) setLang(h.lang);
  applyI18n(document);
  $("lang-switch").textContent = getLang() === "zh" ? "English" : "中文";
  $("lang-switch").lang = getLang() === "zh" ? "en" : "zh-CN";
  state.floor = h.floor ?? 1;

  cmap = new CadastreMap();
  cmap.onPick = (kind, code) => select(kind, code, { fly: false });
  cmap.onFloorsChange = renderFloors;
  try {
    await cmap.init($("map"), h.view || null, state.floor);
  } catch (err) {
    clear($("info-panel")).append(el("p", { class: "error" }, errorText(err)));
    throw err;
  }
  const map = cmap.map;
  viewer.map = map;
  viewer.localIdeographs = cmap.localIdeographs;   // CJK label font (false: server glyphs)
  viewer.marks.style = Math.round(performance.now());
  map.once("load", () => { viewer.marks.load = Math.round(performance.now()); });
  measureFirstView(map);
  map.on("moveend", () => { state.view = cmap.view(); saveHash(); });
  map.once("load", () => { state.view = cmap.view(); saveHash(); });
  // keyboard: Enter on the focused map picks what is in the middle
  map.getCanvas().addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !cmap.interactive) return;
    const c = map.getCanvas();
    const hit = cmap.pickAt([c.clientWidth / 2, c.clientHeight / 2]);
    if (hit) select(hit.kind, hit.code);
  });

  measure = new MeasureTool(cmap, $("measure-result"), (mode) => {
    $("measure-distance").setAttribute("aria-pressed", mode === "distance" ? "true" : "false");
    $("measure-area").setAttribute("aria-pressed", mode === "area" ? "true" : "false");
  });
  $("measure-distance").addEventListener("click", () => measure.start("distance"));
  $("measure-area").addEventListener("click", () => measure.start("area"));
  $("share-link").addEventListener("click", share);
  $("floor-select").addEventListener("change", (e) => setFloor(Number(e.target.value)));
  $("panel-toggle").addEventListener("click", () => expandPanel($("panel-body").hidden));
  $("toggle-3d").addEventListener("click", () => (scene ? close3D() : open3D()));
  $("lang-switch").addEventListener("click", () => setLang(getLang() === "zh" ? "en" : "zh"));
  for (const b of document.querySelectorAll(".mode")) {
    b.addEventListener("click", () => setMode(b.dataset.mode));
  }
  initSearch($("search-input"), $("search-list"), (item) => {
    const center = Number.isFinite(item.lon) ? [item.lon, item.lat] : null;
    if (item.kind === "compound") {
      cmap.flyTo({ bbox: item.bbox, center, zoom: 17 });
      return;
    }
    select(item.kind, item.code || item.id, { fly: true, bbox: item.bbox, center });
  });

  owner = new OwnerPanel($("owner-panel"), { onShowUnit: (code) => select("unit", code, { fly: true }) });
  staff = new StaffPanel($("staff-panel"), cmap);
  progress = new ProgressPanel($("progress-panel"));
  onLangChange(() => {
    $("lang-switch").textContent = getLang() === "zh" ? "English" : "中文";
    $("lang-switch").lang = getLang() === "zh" ? "en" : "zh-CN";
    renderFloors(cmap.floorRange());
    if (state.mode === "map") showCurrent();
    if (state.mode === "owner") owner.render();
    if (state.mode === "staff") staff.render();
    if (state.mode === "progress") progress.render();
    $("panel-title").textContent = t(PANEL_TITLES[state.mode] || "panel_title");
    saveHash();
  });
  renderFloors(cmap.floorRange());

  if (h.mode && h.mode !== "map") setMode(h.mode);
  if (h.selection) select(h.selection.kind, h.selection.ref, { fly: !h.view });
  if (h.threeD) map.once("idle", () => open3D());
  if (window.matchMedia("(max-width: 640px)").matches && !h.selection && !h.mode) expandPanel(false);
}

boot().catch((err) => {
  console.error(err);
  viewer.bootError = String(err && err.message ? err.message : err);
});
