// The information panel: natural attributes of a parcel, building or unit, a building's floors
// and its 楼盘表 (floors × units grid). Only what the public API returns is shown; the server's
// privacy policy decides that (no right holders, no ID numbers).
import { api } from "./api.js";
import { queryContext } from "./interested.js";
import { codeLabel, fieldLabel, fieldUnit, getLang, t } from "./i18n.js";
import { clear, definitionList, el, errorText, fmtDate, fmtNumber } from "./ui.js";

const ORDER = {
  parcel: ["parcel_code", "seat", "compound_name", "land_use", "right_type", "registered_area",
    "neighbour_east", "neighbour_south", "neighbour_west", "neighbour_north", "map_sheet",
    "valid_from"],
  building: ["building_code", "name", "project_name", "seat", "parcel_code", "planned_use",
    "structure", "floors_total", "floors_above", "floors_below", "height", "floor_area",
    "footprint_area", "completion_date", "completion_year", "ground_elevation"],
  unit: ["unit_code", "seat", "building_code", "parcel_code", "floor_no", "floor_label",
    "floor_count", "room_no", "use", "house_type", "house_nature", "layout", "building_area",
    "inner_area", "shared_area", "shared_coefficient", "registration_status", "base_elevation",
    "height", "valid_from"],
};
const SKIP = new Set(["id", "kind", "geometry", "bbox", "center", "floors", "links", "valid_to",
  "use_label", "label", "type", "buildings", "building", "floor", "at_point"]);
const CODED = new Set(["land_use", "use", "planned_use", "structure", "right_type",
  "registration_status", "house_type", "house_nature"]);
const PATHS = { parcel: "parcels", building: "buildings", unit: "units" };

export function formatValue(name, value, record = {}) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "boolean") return getLang() === "zh" ? (value ? "是" : "否") : (value ? "yes" : "no");
  if (name === "floor_span" && Array.isArray(value)) return `${value[0]}–${value[1]}`;
  if (Array.isArray(value)) return value.join(getLang() === "zh" ? "、" : ", ");
  // the server's own label of a coded value (Chinese) wins; English from our table
  const serverLabel = record[`${name}_label`];
  if (serverLabel && getLang() === "zh" && CODED.has(name)) return String(serverLabel);
  if (CODED.has(name)) return codeLabel(name, value);
  if (name === "valid_from" || name.endsWith("_at")) return fmtDate(value);
  if (typeof value === "number") {
    const unit = fieldUnit(name);
    if (unit) return `${fmtNumber(value)} ${unit}`;
    return Number.isInteger(value) ? String(value) : fmtNumber(value, 4);   // years, counts
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function attributeRows(kind, record) {
  // a unit's floor label and building name come as nested records
  if (kind === "unit") {
    record = { ...record };
    if (record.floor && record.floor.floor_label && !record.floor_label) {
      record.floor_label = record.floor.floor_label;
    }
  }
  const keys = [...(ORDER[kind] || []), ...Object.keys(record).filter(
    (k) => !(ORDER[kind] || []).includes(k))];
  const rows = [];
  for (const k of keys) {
    if (SKIP.has(k) || !(k in record) || (k.endsWith("_label") && k !== "floor_label")) continue;
    if (k === "floor_span" && (!Array.isArray(record[k]) || record[k][0] === record[k][1])) continue;
    const v = formatValue(k, record[k], record);
    if (v !== null) rows.push([fieldLabel(k), v]);
  }
  return rows;
}

export async function fetchFeature(kind, ref) {
  // an interested party's stated purpose and case go with the request (the server then shows
  // them what the policy allows them beyond the natural attributes, and audits it)
  const ctx = queryContext();
  return api(`api/v1/${PATHS[kind]}/${encodeURIComponent(ref)}`, ctx || {});
}

function titleOf(kind, rec) {
  if (kind === "unit") {
    if (rec.seat && (!rec.room_no || rec.seat.includes(rec.room_no))) return rec.seat;
    return rec.room_no ? `${rec.seat || ""} ${rec.room_no}`.trim() : rec.unit_code;
  }
  if (kind === "building") return rec.name || rec.building_code;
  return rec.seat || rec.compound_name || rec.parcel_code;
}

// render a record into the panel; actions: {onFloor(n), onUnit(code), on3D(rec), onClose()}
export function renderFeature(panel, kind, rec, actions) {
  clear(panel);
  const head = el("div", { class: "info-head" },
    el("span", { class: `badge kind-${kind}` }, t(`kind_${kind}`)),
    el("h3", { class: "info-title", tabindex: "-1" }, titleOf(kind, rec) || ""),
    el("button", { type: "button", class: "btn icon close", "aria-label": t("close"),
      onclick: actions.onClose }, "×"));
  panel.append(head, definitionList(attributeRows(kind, rec)),
    el("p", { class: "note" }, t(queryContext() ? "interested_note" : "natural_note")));

  const bar = el("div", { class: "actions" });
  if (kind === "unit") {
    if (rec.floor_no !== undefined && rec.floor_no !== null) {
      bar.append(el("button", { type: "button", class: "btn", onclick: () => actions.onFloor(rec.floor_no) },
        t("show_floor")));
    }
    bar.append(el("button", { type: "button", class: "btn", onclick: () => actions.on3D(rec) },
      t("in_3d")));
    if (rec.building_code) {
      const name = rec.building && rec.building.name;
      bar.append(el("button", { type: "button", class: "btn",
        onclick: () => actions.onBuilding(rec.building_code) },
      name ? `${t("kind_building")}${t("colon")}${name}` : t("kind_building")));
    }
  }
  if (kind === "building") {
    const tableBox = el("div", { class: "unit-table-box" });
    const open = el("button", { type: "button", class: "btn", "aria-expanded": "false",
      onclick: async () => {
        const expanded = open.getAttribute("aria-expanded") === "true";
        open.setAttribute("aria-expanded", expanded ? "false" : "true");
        clear(tableBox);
        if (!expanded) await renderUnitTable(tableBox, rec.id || rec.building_code, actions);
      } }, t("unit_table_open"));
    bar.append(open, el("button", { type: "button", class: "btn", onclick: () => actions.on3D(rec) },
      t("in_3d")));
    panel.append(bar);
    if (Array.isArray(rec.floors) && rec.floors.length) panel.append(floorChips(rec.floors, actions));
    panel.append(tableBox);
    return;
  }
  if (bar.childNodes.length) panel.append(bar);
  if (kind === "parcel" && Array.isArray(rec.buildings) && rec.buildings.length) {
    const list = el("ul", { class: "related", "aria-label": t("kind_building") });
    for (const b of rec.buildings) {
      list.append(el("li", {}, el("button", { type: "button", class: "linkish",
        onclick: () => actions.onBuilding(b.building_code) },
      `${b.name || b.building_code}${b.floors_above ? ` · ${t("floor_n", { n: b.floors_above })}` : ""}`)));
    }
    panel.append(el("h4", {}, t("kind_building")), list);
  }
}

function floorChips(floors, actions) {
  const box = el("div", { class: "floors", role: "group", "aria-label": t("floors") },
    el("span", { class: "floors-label" }, `${t("floors")}${t("colon")}`));
  const sorted = [...floors].sort((a, b) => b.floor_no - a.floor_no);
  for (const f of sorted) {
    box.append(el("button", { type: "button", class: "chip", onclick: () => actions.onFloor(f.floor_no) },
      f.floor_label || String(f.floor_no)));
  }
  return box;
}

export async function renderUnitTable(box, buildingRef, actions) {
  box.append(el("p", { class: "hint" }, t("loading")));
  let table;
  try {
    table = await api(`api/v1/buildings/${encodeURIComponent(buildingRef)}/table`);
  } catch (err) {
    clear(box).append(el("p", { class: "error" }, errorText(err)));
    return;
  }
  clear(box);
  const floors = [...(table.floors || [])].sort((a, b) => b.floor_no - a.floor_no);
  if (!floors.some((f) => (f.units || []).length)) {
    box.append(el("p", { class: "hint" }, t("unit_table_empty")));
    return;
  }
  const width = Math.max(...floors.map((f) => (f.units || []).length));
  const b = table.building || {};
  const grid = el("table", { class: "unit-table", id: "unit-table" },
    el("caption", {}, t("unit_table_caption", { name: b.name || b.building_code || "" })));
  const legend = el("div", { class: "legend" }, ...["registered", "pre_sale", "unregistered"].map(
    (s) => el("span", { class: `swatch status-${s}` }, codeLabel("registration_status", s))));
  const body = el("tbody");
  for (const f of floors) {
    const row = el("tr", {}, el("th", { scope: "row" }, f.floor_label || String(f.floor_no)));
    const units = [...(f.units || [])].sort((a, c) => String(a.room_no).localeCompare(String(c.room_no)));
    for (let i = 0; i < width; i++) {
      const u = units[i];
      if (!u) { row.append(el("td", { class: "empty" })); continue; }
      const label = `${u.room_no || ""}`;
      const status = u.registration_status || "unregistered";
      row.append(el("td", {}, el("button", {
        type: "button", class: `unit-cell status-${status}`, dataset: { unitCode: u.unit_code },
        title: `${u.unit_code} · ${u.use_label || codeLabel("use", u.use)} · ${fmtNumber(u.building_area)} m²`,
        "aria-label": `${f.floor_label || f.floor_no} ${label} ${codeLabel("registration_status", status)}`,
        onclick: () => actions.onUnit(u.unit_code, f.floor_no),
      }, el("span", { class: "room" }, label),
      el("span", { class: "area" }, u.building_area ? `${fmtNumber(u.building_area, 1)}` : ""))));
    }
    body.append(row);
  }
  grid.append(body);
  box.append(legend, el("div", { class: "unit-table-scroll" }, grid));
}
