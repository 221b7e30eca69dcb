// The URL keeps the view, so a link shows the same place:
//   #map=17.50/30.25810/120.03120&floor=3&sel=unit:330106…&view=3d&mode=owner&lang=en
// (map = zoom/lat/lon[/bearing/pitch], as OpenStreetMap writes it.)

export function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  const out = {};
  const m = (p.get("map") || "").split("/").map(Number);
  if (m.length >= 3 && m.slice(0, 3).every(Number.isFinite) && Math.abs(m[1]) <= 85
      && Math.abs(m[2]) <= 180) {
    out.view = { zoom: m[0], lat: m[1], lon: m[2], bearing: m[3] || 0, pitch: m[4] || 0 };
  }
  const floor = Number(p.get("floor"));
  if (p.has("floor") && Number.isInteger(floor)) {
    out.floor = floor;
    if (out.view) out.view.floor = floor;
  }
  const sel = p.get("sel");
  if (sel && /^(parcel|building|unit):[^:]{1,80}$/.test(sel)) {
    const [kind, ref] = sel.split(":");
    out.selection = { kind, ref };
  }
  if (p.get("view") === "3d") out.threeD = true;
  if (["map", "owner", "staff", "progress"].includes(p.get("mode"))) out.mode = p.get("mode");
  if (["zh", "en"].includes(p.get("lang"))) out.lang = p.get("lang");
  return out;
}

export function writeHash(state) {
  const p = new URLSearchParams();
  if (state.view) {
    const v = state.view;
    const parts = [v.zoom.toFixed(2), v.lat.toFixed(6), v.lon.toFixed(6)];
    if (Math.abs(v.bearing || 0) > 0.5 || (v.pitch || 0) > 0.5) {
      parts.push(Math.round(v.bearing || 0), Math.round(v.pitch || 0));
    }
    p.set("map", parts.join("/"));
  }
  if (state.floor !== undefined && state.floor !== 1) p.set("floor", String(state.floor));
  if (state.selection) p.set("sel", `${state.selection.kind}:${state.selection.ref}`);
  if (state.threeD) p.set("view", "3d");
  if (state.mode && state.mode !== "map") p.set("mode", state.mode);
  if (state.lang && state.lang !== "zh") p.set("lang", state.lang);
  const hash = `#${p.toString().replace(/%2F/g, "/").replace(/%3A/g, ":")}`;
  if (hash !== location.hash) history.replaceState(null, "", hash);
}
