"""The 3D scene (viewer/src/scene3d.js, page viewer/src/3d.html) in real headless Chromium.

A real server (uvicorn, shared demo database, read-only) serves the built viewer and the demo 3D
datasets made by the library calls of ``cadastre 3d demo`` (an OSGB production written with
osgconv → ``build_dataset``; unit volumes → ``publish_unit_volumes``). CesiumJS must load both
tilesets with no console error and no ``tileFailed``; a unit volume picked at the projected
screen position of a unit's inner point at mid-height must carry that unit's code and the
attributes the database holds, in the classification (单体化) and the standalone modes.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from PIL import Image

from tests.viewer_support import ARTIFACTS, _file_lock, screenshot

# the fixtures (browser, live_server, page, viewer_assets, viewer_dist) come from the plugin,
# registered once: importing them here would define a second session browser, and Playwright's
# sync API refuses to start inside the first one's loop
pytest_plugins = ("tests.viewer_support",)

pytestmark = pytest.mark.skipif(
    shutil.which("osgconv") is None or not Path("/usr/bin/chromium").exists(),
    reason="needs osgconv (openscenegraph) and Debian chromium",
)
LOAD_TIMEOUT_MS = 120_000


@pytest.fixture(autouse=True)
def _slow_webgl(page: Any) -> None:
    """Timeouts for software WebGL (SwiftShader) on 2 shared cores."""
    page.set_default_timeout(90_000)


@pytest.fixture(scope="module")
def units_dataset(viewer_assets: Path, demo_url: str) -> Path:
    """The shared demo-units dataset, rebuilt (same buildings) if an older tile layout made it."""
    from tiles.threed.compress import Compression
    from tiles.threed.unit_tiles import FORMAT, INDEX, publish_unit_volumes

    folder = viewer_assets / "3dtiles" / "demo-units"
    with _file_lock(viewer_assets.parent / ".lock"):
        index = json.loads((folder / INDEX).read_text())
        options = index.get("options", {})
        if options.get("format") != FORMAT or options["compression"]["geometry"] != "draco":
            with psycopg.connect(demo_url) as conn:
                publish_unit_volumes(
                    conn, viewer_assets, "demo-units", buildings=sorted(index["buildings"]),
                    compression=Compression("draco"),
                )
    return folder


@pytest.fixture(scope="module")
def scene_url(live_server, viewer_dist: Path, units_dataset: Path) -> str:
    build = json.loads((viewer_dist / "build.json").read_text())
    assert (viewer_dist / build["app"] / "3d.html").is_file()
    return f"{live_server.base}/{build['app']}/3d.html"


@pytest.fixture(scope="module")
def target_unit(demo_url: str, units_dataset: Path) -> dict[str, Any]:
    """A top-floor unit of a building in the demo scene, with an inner point ≥ 1.5 m from its
    walls (so the padded neighbours do not cover it) and its attributes from the database."""
    from tiles.threed.unit_tiles import INDEX

    codes = sorted(json.loads((units_dataset / INDEX).read_text())["buildings"])
    with psycopg.connect(demo_url) as conn:
        row = conn.execute(
            """
            WITH u AS (
              SELECT unit_code, building_code, floor_no, use, building_area, base_elevation,
                     height, geom, ST_PointOnSurface(geom) AS p,
                     max(base_elevation + height) OVER (PARTITION BY building_code) AS roof,
                     count(*) OVER (PARTITION BY building_code) AS n
              FROM cad.unit WHERE valid_to IS NULL AND building_code = ANY(%s)
            )
            SELECT unit_code, building_code, floor_no, use, building_area, base_elevation,
                   height, ST_X(ST_Transform(p, 4326)), ST_Y(ST_Transform(p, 4326))
            FROM u
            WHERE base_elevation + height >= roof - 0.001 AND n > 2
              AND ST_Distance(p, ST_Boundary(geom)) >= 1.5
            ORDER BY ST_Area(geom) DESC, unit_code LIMIT 1
            """,
            (codes,),
        ).fetchone()
    assert row is not None, "no top-floor unit in the demo scene"
    keys = ("unit_code", "building_code", "floor_no", "use", "building_area", "base_elevation",
            "height", "lon", "lat")
    unit = dict(zip(keys, row, strict=True))
    unit["unit_code"] = unit["unit_code"].strip()
    unit["building_code"] = unit["building_code"].strip()
    unit["mid"] = float(unit["base_elevation"]) + float(unit["height"]) / 2
    return unit


WAIT_LOADED = """
() => { const s = window.scene3d; if (!s || !s.viewer) return false;
        const t = s.tilesets; const all = [t.photogrammetry, t.units].filter(Boolean);
        return all.length > 0 && all.every(x => x.tilesLoaded)
               && s.viewer.scene.globe.tilesLoaded; }
"""

PICK = """
({lon, lat, h}) => {
  const s = window.scene3d, C = window.Cesium, scene = s.viewer.scene;
  const world = C.Cartesian3.fromDegrees(lon, lat, h);
  const toWindow = C.SceneTransforms.worldToWindowCoordinates
                   || C.SceneTransforms.wgs84ToWindowCoordinates;
  const pos = toWindow(scene, world);
  if (!pos) return {pos: null};
  const picked = scene.pick(pos);
  const out = {pos: [pos.x, pos.y], kind: picked ? picked.constructor.name : null};
  if (picked instanceof C.Cesium3DTileFeature) {
    out.units = picked.tileset === s.tilesets.units;
    out.props = {};
    for (const id of picked.getPropertyIds()) out.props[id] = picked.getProperty(id);
  }
  const rect = scene.canvas.getBoundingClientRect();
  out.page = [rect.left + pos.x, rect.top + pos.y];
  return out;
}
"""

LOOK_DOWN = """
({lon, lat, h}) => {
  const C = window.Cesium;
  window.scene3d.viewer.camera.setView({
    destination: C.Cartesian3.fromDegrees(lon, lat, h),
    orientation: {heading: 0, pitch: C.Math.toRadians(-90), roll: 0}});
}
"""


def _datasets(page: Any, base: str) -> dict[str, dict]:
    body = page.request.get(base + "/api/v1/3d/datasets").json()
    return {d["name"]: d for d in body["datasets"]}


def _wait_loaded(page: Any) -> float:
    started = time.monotonic()
    page.wait_for_function(WAIT_LOADED, timeout=LOAD_TIMEOUT_MS, polling=250)
    page.wait_for_timeout(300)  # a few more frames
    page.wait_for_function(WAIT_LOADED, timeout=LOAD_TIMEOUT_MS, polling=250)
    return time.monotonic() - started


def _failed_requests(page: Any) -> list[str]:
    failures: list[str] = []
    page.on("requestfailed", lambda r: failures.append(f"{r.url}: {r.failure}"))
    page.on(
        "response",
        lambda r: failures.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None,
    )
    return failures


def _busy_pixels(path: Path, box: tuple[int, int, int, int]) -> int:
    img = np.asarray(Image.open(path).convert("RGB").crop(box)).reshape(-1, 3)
    return len(np.unique(img // 8, axis=0))


def test_scene_loads_both_demo_tilesets_without_errors(
    page: Any, scene_url: str, live_server, target_unit: dict
) -> None:
    failures = _failed_requests(page)
    sets = _datasets(page, live_server.base)
    assert sets["demo-photogrammetry"]["kind"] == "osgb" and sets["demo-units"]["kind"] == "units"
    lon, lat = target_unit["lon"], target_unit["lat"]
    started = time.monotonic()
    page.goto(f"{scene_url}#{lon:.6f},{lat:.6f},350,20,-40")
    page.wait_for_function("() => window.scene3d && window.scene3d.ready", timeout=60_000)
    page.evaluate("() => window.scene3d.ready.then(() => true)")
    _wait_loaded(page)
    load_s = time.monotonic() - started
    state = page.evaluate(
        """() => { const s = window.scene3d, t = s.tilesets;
                   return {errors: s.errors, standalone: s.standalone,
                           photo: t.photogrammetry && t.photogrammetry.resource.url,
                           units: t.units && t.units.resource.url,
                           classification: t.units && t.units.classificationType,
                           cesium: window.Cesium.VERSION,
                           base: window.CESIUM_BASE_URL,
                           drawn: [t.photogrammetry, t.units].map(
                             x => x.statistics.numberOfTilesWithContentReady)}; }"""
    )
    shot = screenshot(page, "viewer3d-overlay")
    print(f"\nCesium {state['cesium']}: both tilesets loaded in {load_s:.1f} s; "
          f"tiles with content ready {state['drawn']}")
    assert state["errors"] == [], state["errors"]
    assert failures == [], failures
    assert page.console_errors == [], page.console_errors
    assert "/3dtiles/demo-photogrammetry/tileset.json" in state["photo"]
    assert "/3dtiles/demo-units/tileset.json" in state["units"]
    assert "/vendor/cesium-" in state["base"]
    assert state["standalone"] is False
    tile_class = page.evaluate("() => Cesium.ClassificationType.CESIUM_3D_TILE")
    assert state["classification"] == tile_class
    assert all(n > 0 for n in state["drawn"]), state["drawn"]
    # something was drawn: the model area of the canvas is not a flat colour
    assert _busy_pixels(shot, (340, 200, 940, 600)) > 50


def _pick_and_click(page: Any, unit: dict, mode: str) -> dict:
    page.evaluate(LOOK_DOWN, {"lon": unit["lon"], "lat": unit["lat"], "h": unit["mid"] + 140})
    _wait_loaded(page)
    hit = page.evaluate(PICK, {"lon": unit["lon"], "lat": unit["lat"], "h": unit["mid"]})
    assert hit["pos"] is not None, hit
    assert hit.get("units") is True, (mode, hit)
    # the user's path: hover highlights, click fills the info panel through onPick
    page.mouse.move(*hit["page"])
    page.wait_for_function("() => document.querySelector('.scene3d canvas').style.cursor "
                           "=== 'pointer'", timeout=10_000)
    page.mouse.click(*hit["page"])
    page.wait_for_selector("#info:not([hidden])", timeout=10_000)
    shown = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#info-body dd')]
                 .map(d => [d.dataset.field, d.textContent]))"""
    )
    screenshot(page, f"viewer3d-pick-{mode}")
    return {"props": hit["props"], "shown": shown}


def _check_against_db(result: dict, unit: dict) -> None:
    props, shown = result["props"], result["shown"]
    assert props["unit_code"] == unit["unit_code"]
    assert shown["unit_code"] == unit["unit_code"]
    assert props["building_code"] == unit["building_code"]
    assert int(props["floor_no"]) == unit["floor_no"]
    assert props["use"] == unit["use"].strip()
    assert abs(float(props["building_area"]) - float(unit["building_area"])) < 0.01
    # nothing but the published columns reached the browser
    from tiles.threed.units import public_columns

    assert set(props) <= set(public_columns())


def test_picking_a_unit_returns_its_code(
    page: Any, scene_url: str, target_unit: dict
) -> None:
    u = target_unit
    page.goto(f"{scene_url}#{u['lon']:.6f},{u['lat']:.6f},300,0,-60")
    page.wait_for_function("() => window.scene3d && window.scene3d.ready", timeout=60_000)
    page.evaluate("() => window.scene3d.ready.then(() => true)")
    overlay = _pick_and_click(page, u, "overlay")
    _check_against_db(overlay, u)
    print(f"\npicked {overlay['props']['unit_code']} (classification over photogrammetry)")

    # standalone 3D cadastre: the volumes themselves, photogrammetry hidden
    page.click(".scene3d-mode")
    page.wait_for_function(
        "() => window.scene3d.standalone && window.scene3d.tilesets.units "
        "&& window.scene3d.tilesets.units.classificationType === undefined", timeout=30_000
    )
    assert page.evaluate("() => window.scene3d.tilesets.photogrammetry.show") is False
    standalone = _pick_and_click(page, u, "standalone")
    _check_against_db(standalone, u)
    assert page.console_errors == [], page.console_errors
    assert page.evaluate("() => window.scene3d.errors") == []


def test_english_labels_and_view_round_trip(page: Any, scene_url: str, target_unit: dict) -> None:
    u = target_unit
    page.goto(f"{scene_url}?lang=en#{u['lon']:.6f},{u['lat']:.6f},400,30,-50")
    page.wait_for_function("() => window.scene3d && window.scene3d.ready", timeout=60_000)
    page.evaluate("() => window.scene3d.ready.then(() => true)")
    assert page.inner_text("#title") == "3D cadastre"
    assert page.inner_text(".scene3d-mode") == "3D cadastre"
    v = page.evaluate("() => window.scene3d.view()")
    assert abs(v["lon"] - u["lon"]) < 2e-4 and abs(v["lat"] - u["lat"]) < 2e-4, v
    assert abs(v["height"] - 400) < 5 and abs(v["heading"] - 30) < 0.5
    assert abs(v["pitch"] + 50) < 0.5
    page.evaluate(
        "([lon, lat]) => window.scene3d.flyTo({lon, lat, height: 250})",
        [u["lon"] + 0.001, u["lat"]],
    )
    page.wait_for_function(
        "([lon, h]) => { const w = window.scene3d.view(); "
        "return Math.abs(w.lon - lon) < 2e-4 && Math.abs(w.height - h) < 5; }",
        arg=[u["lon"] + 0.001, 250], timeout=30_000, polling=200)
    w = page.evaluate("() => window.scene3d.view()")
    assert abs(w["lon"] - (u["lon"] + 0.001)) < 2e-4 and abs(w["height"] - 250) < 5, w
    href = page.get_attribute("#to2d", "href")
    assert href.startswith("/#map=") and "lang=en" in href
    assert page.console_errors == [], page.console_errors
    ARTIFACTS.mkdir(exist_ok=True)


FEATURE_STATE = """
(code) => { const s = window.scene3d, C = window.Cesium; const out = {found: 0, colour: null};
  const visit = (tile) => { const c = tile.content;
    if (c && c.featuresLength) for (let i = 0; i < c.featuresLength; i++) {
      const f = c.getFeature(i);
      if (f.getProperty('unit_code') === code) {
        out.found += 1; out.colour = [f.color.red, f.color.green, f.color.blue];
        out.show = f.show; }
    }
    for (const k of tile.children) visit(k); };
  visit(s.tilesets.units.root); return out; }
"""


def _draco_content(base: str, page: Any) -> list[str]:
    """Extensions required by a unit glb and a photogrammetry glb the browser was served."""
    out = []
    for name in ("demo-units", "demo-photogrammetry"):
        body = page.request.get(f"{base}/3dtiles/{name}/tileset.json").json()
        stack, uri, prefix = [body["root"]], None, f"{base}/3dtiles/{name}/"
        while stack and uri is None:
            tile = stack.pop()
            u = (tile.get("content") or {}).get("uri")
            if u and u.endswith(".json"):
                sub = page.request.get(prefix + u).json()
                prefix = prefix + u.rsplit("/", 1)[0] + "/" if "/" in u else prefix
                stack.append(sub["root"])
            elif u:
                uri = prefix + u
            stack += tile.get("children", [])
        raw = page.request.get(uri).body()
        jlen = int.from_bytes(raw[12:16], "little")
        out += json.loads(raw[20 : 20 + jlen]).get("extensionsRequired", [])
    return out


def test_compressed_units_selected_highlighted_and_sliced_by_floor(
    page: Any, scene_url: str, live_server, target_unit: dict
) -> None:
    """The demo datasets are Draco-compressed; CesiumJS decodes them; a unit selected from
    outside the scene (search or the 2D map call ``select``) is highlighted in 3D; floor slicing
    hides the units above floor N (the pick then misses the unit) and shows them again."""
    u = target_unit
    assert _draco_content(live_server.base, page) == ["KHR_draco_mesh_compression"] * 2
    page.goto(f"{scene_url}#{u['lon']:.6f},{u['lat']:.6f},300,0,-60")
    page.wait_for_function("() => window.scene3d && window.scene3d.ready", timeout=60_000)
    page.evaluate("() => window.scene3d.ready.then(() => true)")
    page.click(".scene3d-mode")  # standalone: the volumes themselves
    page.wait_for_function("() => window.scene3d.standalone", timeout=30_000)
    page.evaluate(LOOK_DOWN, {"lon": u["lon"], "lat": u["lat"], "h": u["mid"] + 140})
    _wait_loaded(page)
    page.evaluate("(code) => window.scene3d.select(code)", u["unit_code"])
    page.wait_for_function(
        "(code) => { const s = window.scene3d; const r = (" + FEATURE_STATE + ")(code);"
        " return r.found > 0 && Math.abs(r.colour[1] - 96 / 255) < 0.01; }",
        arg=u["unit_code"], timeout=20_000, polling=250)
    hit = page.evaluate(PICK, {"lon": u["lon"], "lat": u["lat"], "h": u["mid"]})
    assert hit.get("units") and hit["props"]["unit_code"] == u["unit_code"], hit
    screenshot(page, "viewer3d-selected")
    # slice below the unit's floor: it is hidden and no longer picked
    page.fill(".scene3d-floor-input", str(u["floor_no"] - 1))
    page.press(".scene3d-floor-input", "Enter")
    page.wait_for_function(
        "(n) => window.scene3d.floorLimit === n", arg=u["floor_no"] - 1, timeout=10_000)
    _wait_loaded(page)
    state = page.evaluate(FEATURE_STATE, u["unit_code"])
    assert state["found"] > 0 and state["show"] is False, state
    hit = page.evaluate(PICK, {"lon": u["lon"], "lat": u["lat"], "h": u["mid"]})
    assert (hit.get("props") or {}).get("unit_code") != u["unit_code"], hit
    screenshot(page, "viewer3d-sliced")
    page.evaluate("() => window.scene3d.setFloorLimit(null)")
    _wait_loaded(page)
    assert page.evaluate(FEATURE_STATE, u["unit_code"])["show"] is True
    hit = page.evaluate(PICK, {"lon": u["lon"], "lat": u["lat"], "h": u["mid"]})
    assert hit["props"]["unit_code"] == u["unit_code"], hit
    assert page.console_errors == [], page.console_errors
    assert page.evaluate("() => window.scene3d.errors") == []
