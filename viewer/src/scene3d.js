// 3D scene (CesiumJS): the photogrammetry tileset with the unit volumes (户) as a classification
// layer over it (单体化), or the unit volumes alone (standalone 3D cadastre). Works offline:
// Cesium comes from the local vendor copy, no Ion token, no default imagery or terrain from the
// internet; imagery is the server's orthophoto (/api/v1/rasters) when one is published, the
// globe is the WGS 84 ellipsoid (EllipsoidTerrainProvider).
//
//   const scene = open3D(container, {lon, lat, height, heading, pitch, unitCode},
//                        {onPick(unit) {…}, lang: "zh" | "en"});
//   await scene.ready;            // Cesium loaded, datasets listed, tilesets added
//   scene.flyTo({lon, lat, height}); scene.view(); scene.close();
//
// View convention (shared with the 2D map): lon/lat is the ground point at the centre of the
// screen, height the camera's height above the ellipsoid (m), heading/pitch in degrees
// (pitch < 0 looks down). onPick receives the unit's published properties (unit_code,
// building_code, floor_no, room_no, use, building_area, …): exactly the columns the server's
// privacy policy lets into the unit tiles, never a party.

const DEFAULT_BASE = "/vendor/cesium/";
const TEXT = {
  zh: {
    modeOverlay: "实景+分户",
    modeStandalone: "三维地籍",
    modeTitle: "切换：倾斜摄影上的分户单体化 / 仅分户体块",
    loading: "正在加载三维场景…",
    noData: "没有已发布的三维数据集",
    failed: "三维场景加载失败",
    unit: "不动产单元",
    tiles: "瓦片",
    legend: "悬停高亮分户，点击查看",
    floors: "显示楼层 ≤",
    floorsTitle: "楼层剖切：隐藏此层以上的分户（空 = 全部）",
    building: "自然幢",
  },
  en: {
    modeOverlay: "Model + units",
    modeStandalone: "3D cadastre",
    modeTitle: "Switch: unit volumes over the photogrammetry / unit volumes alone",
    loading: "Loading the 3D scene…",
    noData: "No published 3D datasets",
    failed: "The 3D scene failed to load",
    unit: "Unit",
    tiles: "tiles",
    legend: "Hover highlights a flat, click shows it",
    floors: "Floors ≤",
    floorsTitle: "Floor slicing: hide the units above this floor (empty = all)",
    building: "Building",
  },
};
const OVERLAY_TINT = "rgba(70, 150, 255, 0.3)";
const HOVER_COLOUR = "rgba(255, 214, 0, 0.7)";
const SELECT_COLOUR = "rgba(255, 96, 32, 0.8)";
// standalone colours by the first digit of the house use code (用途: 1x 住宅, 3x 商业, 6x 办公)
const USE_COLOURS = [
  ["1", "rgb(120, 170, 235)"],
  ["3", "rgb(240, 160, 90)"],
  ["6", "rgb(170, 130, 220)"],
];

let cesiumPromise = null;

/** Where Cesium.js, Workers/ and Assets/ are: the caller's option, the page's configuration, or
 * the build's record (viewer/dist/build.json names vendor/cesium-<version>). */
async function cesiumBase(option) {
  const config = window.CADASTRE_VIEWER_CONFIG || {};
  let base = option || window.CESIUM_BASE_URL || config.cesiumBaseUrl;
  if (!base) {
    try {
      const build = await getJSON("/build.json");
      base = "/" + build.cesium.path;
    } catch (_) {
      base = DEFAULT_BASE;
    }
  }
  if (!base.endsWith("/")) base += "/";
  return new URL(base, document.baseURI).href;
}

function loadCesium(base) {
  if (window.Cesium) return Promise.resolve(window.Cesium);
  if (cesiumPromise) return cesiumPromise;
  window.CESIUM_BASE_URL = base;
  cesiumPromise = new Promise((resolve, reject) => {
    const css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = base + "Widgets/widgets.css";
    document.head.appendChild(css);
    const script = document.createElement("script");
    script.src = base + "Cesium.js";
    script.async = true;
    script.onload = () =>
      window.Cesium ? resolve(window.Cesium) : reject(new Error("Cesium.js loaded no Cesium"));
    script.onerror = () => reject(new Error("cannot load " + script.src));
    document.head.appendChild(script);
  });
  return cesiumPromise;
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Unit properties of a picked feature (only what the tiles carry). */
function featureProperties(feature) {
  const out = {};
  for (const id of feature.getPropertyIds()) {
    const v = feature.getProperty(id);
    out[id] = typeof v === "bigint" ? Number(v) : v;
  }
  return out;
}

export function open3D(container, initialView = {}, options = {}) {
  const view = { ...initialView };
  const lang = options.lang === "en" ? "en" : "zh";
  const t = TEXT[lang];
  const onPick = options.onPick || (() => {});
  const apiBase = options.apiBase || "";

  const root = el("div", "scene3d");
  const canvasHost = el("div", "scene3d-canvas");
  const toolbar = el("div", "scene3d-toolbar");
  const modeButton = el("button", "scene3d-mode", t.modeStandalone);
  modeButton.type = "button";
  modeButton.title = t.modeTitle;
  modeButton.setAttribute("aria-pressed", "false");
  // floor slicing: hide the units above floor N (building shells, far away, stay)
  const floorLabel = el("label", "scene3d-floors", t.floors);
  floorLabel.title = t.floorsTitle;
  const floorInput = el("input", "scene3d-floor-input");
  floorInput.type = "number";
  floorInput.min = "-5";
  floorInput.max = "200";
  floorInput.step = "1";
  floorInput.placeholder = "∞";
  floorInput.setAttribute("aria-label", t.floorsTitle);
  floorLabel.append(floorInput);
  const status = el("div", "scene3d-status", t.loading);
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  toolbar.append(floorLabel, modeButton);
  root.append(canvasHost, toolbar, status);
  container.appendChild(root);

  const state = {
    viewer: null,
    Cesium: null,
    photo: null,
    units: null,
    unitsUrl: null,
    standalone: false,
    hovered: null,
    selected: null,
    selectedCode: view.unitCode || null,
    floorLimit: null,
    errors: [],
    closed: false,
    handler: null,
    datasets: [],
  };

  const handle = {
    ready: null,
    /** Cesium objects and load errors, for the page and the tests. */
    get viewer() {
      return state.viewer;
    },
    get tilesets() {
      return { photogrammetry: state.photo, units: state.units };
    },
    get errors() {
      return state.errors.slice();
    },
    get standalone() {
      return state.standalone;
    },
    close() {
      state.closed = true;
      if (state.handler) state.handler.destroy();
      if (state.viewer && !state.viewer.isDestroyed()) state.viewer.destroy();
      state.viewer = null;
      root.remove();
    },
    flyTo({ lon, lat, height }) {
      if (!state.viewer) {
        Object.assign(view, { lon, lat, height: height ?? view.height });
        return;
      }
      const cur = handle.view();
      setCamera({ ...cur, lon, lat, height: height ?? cur.height }, 1.5);
    },
    view() {
      if (!state.viewer) return { ...view };
      const C = state.Cesium;
      const cam = state.viewer.camera;
      const pos = cam.positionCartographic;
      const canvas = state.viewer.scene.canvas;
      const centre = new C.Cartesian2(canvas.clientWidth / 2, canvas.clientHeight / 2);
      const hit = cam.pickEllipsoid(centre, C.Ellipsoid.WGS84);
      const target = hit ? C.Cartographic.fromCartesian(hit) : pos;
      return {
        lon: C.Math.toDegrees(target.longitude),
        lat: C.Math.toDegrees(target.latitude),
        height: pos.height,
        heading: C.Math.toDegrees(cam.heading),
        pitch: C.Math.toDegrees(cam.pitch),
      };
    },
    /** Standalone 3D cadastre (true) or unit volumes classifying the photogrammetry. */
    setStandalone(on) {
      return setMode(Boolean(on));
    },
    /** Select (highlight) a unit by code once its tile is loaded. */
    select(code) {
      state.selectedCode = code;
      highlightSelected();
    },
    /** Floor slicing: show units up to floor ``n`` (null: all floors). */
    setFloorLimit(n) {
      const v = n === null || n === undefined || n === "" ? null : Math.trunc(Number(n));
      state.floorLimit = Number.isFinite(v) ? v : null;
      floorInput.value = state.floorLimit === null ? "" : String(state.floorLimit);
      styleUnits();
      if (state.viewer) state.viewer.scene.requestRender();
      return state.floorLimit;
    },
    get floorLimit() {
      return state.floorLimit;
    },
  };

  function setCamera(v, duration) {
    const C = state.Cesium;
    const pitch = C.Math.toRadians(v.pitch ?? -45);
    const heading = C.Math.toRadians(v.heading ?? 0);
    const height = Math.max(v.height ?? 600, 20);
    const target = C.Cartesian3.fromDegrees(v.lon, v.lat, 0);
    // camera at `height` above the ellipsoid, looking at the target with `pitch`
    const range = height / Math.max(Math.sin(-pitch), 0.05);
    const offset = new C.HeadingPitchRange(heading, pitch, range);
    const cam = state.viewer.camera;
    if (duration) {
      cam.flyToBoundingSphere(new C.BoundingSphere(target, 1), { offset, duration });
    } else {
      cam.lookAt(target, offset);
      cam.lookAtTransform(C.Matrix4.IDENTITY);
    }
  }

  function styleUnits() {
    const C = state.Cesium;
    if (!state.units) return;
    // building shells (far level of detail) carry no floor_no: they are never sliced away
    const show = state.floorLimit === null ? "true" :
      `\${floor_no} === undefined || \${floor_no} <= ${state.floorLimit}`;
    if (state.standalone) {
      const conditions = USE_COLOURS.map(([d, c]) => [
        `regExp('^${d}').test(String(\${use}))`,
        `color('${c}')`,
      ]);
      conditions.push(["true", "color('rgb(150, 190, 230)')"]);
      state.units.style = new C.Cesium3DTileStyle({ color: { conditions }, show });
    } else {
      state.units.style = new C.Cesium3DTileStyle({ color: `color('${OVERLAY_TINT}')`, show });
    }
    // a restyle recolours every feature: the selection keeps its colour
    state.selected = null;
    setTimeout(highlightSelected, 0);
  }

  function restore(feature) {
    if (!feature) return;
    try {
      // re-apply the style's colour for this one feature
      const C = state.Cesium;
      const style = state.units && state.units.style;
      feature.color = style && style.color ? style.color.evaluateColor(feature, new C.Color()) :
        C.Color.WHITE;
    } catch (_) {
      /* the tile was unloaded */
    }
  }

  function highlightSelected() {
    if (!state.units || !state.selectedCode) return;
    const C = state.Cesium;
    const root = state.units.root;
    const visit = (tile) => {
      const content = tile.content;
      if (content && content.featuresLength) {
        for (let i = 0; i < content.featuresLength; i++) {
          const f = content.getFeature(i);
          if (f.getProperty("unit_code") === state.selectedCode) {
            if (state.selected && state.selected !== f) restore(state.selected);
            state.selected = f;
            f.color = C.Color.fromCssColorString(SELECT_COLOUR);
            state.viewer.scene.requestRender();
          }
        }
      }
      for (const c of tile.children) visit(c);
    };
    if (root) visit(root);
  }

  async function addUnits() {
    const C = state.Cesium;
    if (!state.unitsUrl) return;
    if (state.units) {
      state.viewer.scene.primitives.remove(state.units);
      state.units = null;
      state.hovered = state.selected = null;
    }
    const opts = state.standalone || !state.photo ? {} : {
      classificationType: C.ClassificationType.CESIUM_3D_TILE,
    };
    const tileset = await C.Cesium3DTileset.fromUrl(state.unitsUrl, opts);
    if (state.closed) return;
    watch(tileset, "units");
    tileset.tileLoad.addEventListener(() => setTimeout(highlightSelected, 0));
    state.units = state.viewer.scene.primitives.add(tileset);
    styleUnits();
  }

  async function setMode(standalone) {
    state.standalone = standalone;
    modeButton.textContent = standalone ? t.modeOverlay : t.modeStandalone;
    modeButton.setAttribute("aria-pressed", String(standalone));
    if (state.photo) state.photo.show = !standalone;
    if (state.viewer) {
      await addUnits();
      state.viewer.scene.requestRender();
    }
  }

  function watch(tileset, label) {
    tileset.tileFailed.addEventListener((e) => {
      state.errors.push(`${label}: ${e.url}: ${e.message}`);
      status.textContent = `${t.failed}: ${e.message}`;
    });
  }

  async function imagery() {
    const C = state.Cesium;
    try {
      const body = await getJSON(apiBase + "/api/v1/rasters");
      const r = (body.rasters || [])[0];
      if (!r) return null;
      const [w, s, e, n] = r.bounds;
      return new C.ImageryLayer(
        new C.UrlTemplateImageryProvider({
          url: r.tiles, // the server's XYZ template: {z}/{x}/{y}
          rectangle: C.Rectangle.fromDegrees(w, s, e, n),
          // the raster only has tiles from minzoom (the rectangle keeps them few there)
          minimumLevel: r.minzoom,
          maximumLevel: r.maxzoom,
          credit: new C.Credit("正射影像 / orthophoto"),
        }),
      );
    } catch (_) {
      return null; // no raster service: the plain globe
    }
  }

  function pickUnit(position) {
    const picked = state.viewer.scene.pick(position);
    const C = state.Cesium;
    if (picked instanceof C.Cesium3DTileFeature && picked.tileset === state.units) return picked;
    return null;
  }

  function setupPicking() {
    const C = state.Cesium;
    const handler = new C.ScreenSpaceEventHandler(state.viewer.scene.canvas);
    state.handler = handler;
    handler.setInputAction((movement) => {
      const f = pickUnit(movement.endPosition);
      if (f === state.hovered) return;
      if (state.hovered && state.hovered !== state.selected) restore(state.hovered);
      state.hovered = f;
      if (f && f !== state.selected) f.color = C.Color.fromCssColorString(HOVER_COLOUR);
      state.viewer.scene.canvas.style.cursor = f ? "pointer" : "";
      state.viewer.scene.requestRender();
    }, C.ScreenSpaceEventType.MOUSE_MOVE);
    handler.setInputAction((click) => {
      const f = pickUnit(click.position);
      if (!f) return;
      const props = featureProperties(f);
      state.selectedCode = props.unit_code || null;
      if (state.selected && state.selected !== f) restore(state.selected);
      state.selected = f;
      f.color = C.Color.fromCssColorString(SELECT_COLOUR);
      state.viewer.scene.requestRender();
      status.textContent = props.unit_code ? `${t.unit} ${props.unit_code}` :
        `${t.building} ${props.building_code}`;
      onPick(props);
    }, C.ScreenSpaceEventType.LEFT_CLICK);
  }

  async function start() {
    const C = await loadCesium(await cesiumBase(options.cesiumBaseUrl));
    if (state.closed) return handle;
    state.Cesium = C;
    C.Ion.defaultAccessToken = "";
    const baseLayer = await imagery();
    if (state.closed) return handle;
    const viewer = new C.Viewer(canvasHost, {
      baseLayer: baseLayer || false,
      terrainProvider: new C.EllipsoidTerrainProvider(),
      geocoder: false,
      baseLayerPicker: false,
      animation: false,
      timeline: false,
      homeButton: false,
      sceneModePicker: false,
      navigationHelpButton: false,
      fullscreenButton: false,
      infoBox: false,
      selectionIndicator: false,
      // render on change only (tile loads, camera moves, highlights): light on weak GPUs
      requestRenderMode: true,
      maximumRenderTimeChange: Infinity,
    });
    state.viewer = viewer;
    viewer.scene.globe.baseColor = C.Color.fromCssColorString("#2b3440");
    viewer.scene.globe.depthTestAgainstTerrain = false;
    if (viewer.scene.skyAtmosphere) viewer.scene.skyAtmosphere.show = true;
    viewer.scene.debugShowFramesPerSecond = false;
    const body = await getJSON(apiBase + "/api/v1/3d/datasets");
    if (state.closed) return handle;
    state.datasets = body.datasets || [];
    const photo = state.datasets.find((d) => d.kind !== "units" && d.kind !== "pointcloud") ||
      state.datasets.find((d) => d.kind === "pointcloud");
    const units = state.datasets.find((d) => d.kind === "units");
    if (!photo && !units) {
      status.textContent = t.noData;
    }
    if (view.lon === undefined || view.lat === undefined) {
      const ext = (units || photo || { extent: [116.39, 39.9, 116.4, 39.91] }).extent;
      Object.assign(view, { lon: (ext[0] + ext[2]) / 2, lat: (ext[1] + ext[3]) / 2 });
    }
    setCamera(view, 0);
    if (photo) {
      state.photo = await C.Cesium3DTileset.fromUrl(photo.tileset, {
        maximumScreenSpaceError: 8,
      });
      if (state.closed) return handle;
      watch(state.photo, photo.name);
      viewer.scene.primitives.add(state.photo);
    }
    if (units) {
      state.unitsUrl = units.tileset;
      state.standalone = state.standalone || !photo;
      await setMode(state.standalone);
    }
    setupPicking();
    if (!state.errors.length && (photo || units)) status.textContent = t.legend;
    return handle;
  }

  handle.ready = start().catch((err) => {
    state.errors.push(String(err && err.message ? err.message : err));
    status.textContent = `${t.failed}: ${err && err.message ? err.message : err}`;
    throw err;
  });
  modeButton.addEventListener("click", () => setMode(!state.standalone));
  floorInput.addEventListener("change", () => handle.setFloorLimit(floorInput.value));
  return handle;
}
