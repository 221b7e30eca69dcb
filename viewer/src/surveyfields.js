// What a surveyor says about a file besides the file: field map, team preset, "new parcels",
// and how a local-coordinate floor plan is placed on its building; and what the report says
// back: the fields it could not recognise with the suggested mapping, and every feature's area.
import { api } from "./api.js";
import { t } from "./i18n.js";
import { el, fmtNumber } from "./ui.js";

const field = (id, label, input) => el("div", { class: "field" }, el("label", { for: id }, label), input);

// the optional part of the upload form
export function optionFields() {
  const check = (id, label) => el("div", { class: "field check" },
    el("input", { id, type: "checkbox" }), el("label", { for: id }, label));
  return el("details", { id: "upload-options" }, el("summary", {}, t("upload_options")),
    field("survey-field-map", t("upload_field_map"), el("input", { id: "survey-field-map",
      type: "text", maxlength: 4000, autocomplete: "off", spellcheck: "false" })),
    field("survey-preset", t("upload_preset"), el("select", { id: "survey-preset" },
      el("option", { value: "" }, t("upload_preset_none")))),
    check("survey-new-parcels", t("upload_new_parcels")),
    field("survey-building", t("upload_building"), el("input", { id: "survey-building",
      type: "text", maxlength: 24, pattern: "[0-9]{12}[GJZ][A-Z][0-9]{5}F[0-9]{4}" })),
    field("survey-points", t("upload_points"), el("input", { id: "survey-points", type: "text",
      maxlength: 4000, spellcheck: "false" })),
    check("survey-fit", t("upload_fit")));
}

// the team's presets into the select (quietly empty when there are none)
export async function loadPresets(form, s) {
  const select = form.querySelector("#survey-preset");
  try {
    const res = await api("api/v1/surveys/field-maps", { token: s.token });
    for (const p of res.items) select.append(el("option", { value: p.name }, p.name));
  } catch { /* no presets shown */ }
}

// the form's options into the upload's FormData
export function appendOptions(form, data) {
  const v = (id) => form.querySelector(`#${id}`).value.trim();
  const on = (id) => form.querySelector(`#${id}`).checked;
  if (v("survey-field-map")) data.append("field_map", v("survey-field-map"));
  if (v("survey-preset")) data.append("preset", v("survey-preset"));
  if (on("survey-new-parcels")) data.append("new_parcels", "true");
  if (v("survey-building")) data.append("anchor_building", v("survey-building"));
  if (v("survey-points")) data.append("control_points", v("survey-points"));
  if (on("survey-fit")) data.append("fit_outline", "true");
}

// the layers whose fields were not recognised, with the suggested mapping and its buttons
export function mappingBox(mapping, { onApply, onSave } = {}) {
  const box = el("section", { class: "mapping", id: "survey-mapping" }, el("h5", {}, t("mapping_title")));
  for (const m of mapping) {
    box.append(el("p", { class: "fields" }, t("mapping_fields", { layer: m.layer, fields: m.fields.join(", ") })));
    if (m.field_map) {
      box.append(el("p", {}, `${t("mapping_suggested")}${t("colon")}`,
        el("code", { class: "suggested-map" }, m.field_map)));
      const reasons = el("ul", { class: "reasons" }, ...m.suggested.map((x) =>
        el("li", {}, el("code", {}, `${x.key}=${x.field}`), ` ${x.reason}`)));
      box.append(reasons);
    } else box.append(el("p", {}, t("mapping_none")));
    if (m.new_parcels_suggested) box.append(el("p", { class: "hint" }, t("mapping_new")));
  }
  const suggested = mapping.map((m) => m.field_map).filter(Boolean).join(",");
  const newParcels = mapping.some((m) => m.new_parcels_suggested);
  if (onApply && (suggested || newParcels)) {
    box.append(el("button", { type: "button", class: "btn primary", id: "mapping-apply",
      onclick: () => onApply(suggested, newParcels) }, t("mapping_apply")));
  }
  if (onSave && suggested) {
    const name = el("input", { id: "mapping-preset-name", type: "text", maxlength: 64,
      "aria-label": t("upload_preset") });
    box.append(el("div", { class: "inline" }, name, el("button", { type: "button", class: "btn",
      id: "mapping-save", onclick: () => name.value.trim() && onSave(name.value.trim(), suggested) },
    t("mapping_save"))));
  }
  return box;
}

// every feature with its computed and declared area, and the totals per kind
export function areasTable(areas) {
  const num = (v) => (v === null || v === undefined ? "" : fmtNumber(v, 2));
  // the feature: its code (if any) over the file's own reference
  const body = el("tbody", {}, ...areas.items.map((it) => el("tr", { dataset: { kind: it.kind, code: it.code || "" } },
    el("td", { class: "feature" }, el("span", { class: "code" }, it.code || t(`kind_${it.kind}`)),
      el("span", { class: "ref" }, it.ref)),
    el("td", { class: "num" }, num(it.area_m2)), el("td", { class: "num" }, num(it.declared_m2)),
    el("td", { class: "num" }, num(it.difference_m2)))));
  for (const [kind, tot] of Object.entries(areas.totals)) {
    body.append(el("tr", { class: "total" }, el("td", {}, t("areas_total", { kind: t(`kind_${kind}`), n: tot.count })),
      el("td", { class: "num" }, num(tot.area_m2)),
      el("td", { class: "num" }, tot.declared_m2 ? num(tot.declared_m2) : ""), el("td", {})));
  }
  const head = ["areas_ref", "areas_area", "areas_declared", "areas_diff"]
    .map((k) => el("th", { scope: "col" }, t(k)));
  return el("section", { class: "areas" }, el("h5", {}, t("areas_title", { srid: areas.srid })),
    el("table", { class: "list", id: "report-areas" }, el("thead", {}, el("tr", {}, ...head)), body),
    areas.complete ? "" : el("p", { class: "hint" }, t("areas_more", { n: areas.items.length })));
}

export function placementLine(p) {
  return el("p", { class: "facts", id: "report-placement" }, t("placement", {
    method: p.method, rot: fmtNumber(p.rotation_deg, 3), scale: fmtNumber(p.scale, 5),
    res: p.residual_m === undefined ? "—" : fmtNumber(p.residual_m, 3),
    tol: p.tolerance_m === undefined ? "—" : fmtNumber(p.tolerance_m, 2) }));
}
