// 2D ↔ 3D: hands the current place to the CesiumJS scene (./scene3d.js, loaded on demand so the
// 2D map never waits for Cesium) and brings the 3D camera's place back to the map.
//
// Contract with scene3d.js:
//   open3D(container, {lon, lat, height, heading, pitch, unitCode?}, {onPick(unit), lang})
//     → Promise of (or) {close(), flyTo({lon, lat, height}), view() → {lon, lat, height}}
//   lon/lat: the point in the middle of the view (degrees); height: camera height above it (m);
//   heading: degrees clockwise from north; pitch: degrees, Cesium's convention (-90 = straight
//   down); unitCode: a unit to highlight and fly to; onPick(unit) gets at least {unit_code}.

const EARTH = 40075016.686;   // equatorial circumference (m)
const HALF_FOV = Math.PI / 6;  // Cesium's default 60° field of view (of the wider side)

let modulePromise = null;

export function load3D() {
  if (!modulePromise) {
    modulePromise = import("./scene3d.js").catch((err) => {
      modulePromise = null;
      throw err;
    });
  }
  return modulePromise;
}

function metresPerPixel(zoom, lat) {
  return (EARTH * Math.cos((lat * Math.PI) / 180)) / (512 * 2 ** zoom);
}

export function heightForZoom(zoom, lat, widthPx, heightPx) {
  const side = Math.max(widthPx, heightPx, 1);
  return (side * metresPerPixel(zoom, lat)) / 2 / Math.tan(HALF_FOV);
}

export function zoomForHeight(height, lat, widthPx, heightPx) {
  const side = Math.max(widthPx, heightPx, 1);
  const mpp = (2 * Math.tan(HALF_FOV) * Math.max(height, 1)) / side;
  const z = Math.log2((EARTH * Math.cos((lat * Math.PI) / 180)) / (512 * mpp));
  return Math.max(0, Math.min(22, z));
}

// the 2D view (MapLibre) as the 3D camera: a flat map becomes a 45° oblique look
// (height is the camera's height; along an oblique view the distance to the centre is larger)
export function cameraFromMap(view, widthPx, heightPx) {
  const pitch2d = view.pitch || 0;
  const pitch = pitch2d < 10 ? -45 : -(90 - pitch2d);
  const distance = heightForZoom(view.zoom, view.lat, widthPx, heightPx);
  return {
    lon: view.lon,
    lat: view.lat,
    height: distance * Math.sin((-pitch * Math.PI) / 180),
    heading: ((view.bearing || 0) + 360) % 360,
    pitch,
  };
}

// the 3D camera back as a 2D zoom: the distance to the centre counts, not the height
export function zoomFromCamera(v, widthPx, heightPx) {
  const pitch = Number.isFinite(v.pitch) && v.pitch < -5 ? v.pitch : -90;
  const distance = v.height / Math.sin((-pitch * Math.PI) / 180);
  return zoomForHeight(distance, v.lat, widthPx, heightPx);
}
