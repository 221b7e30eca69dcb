// Survey submissions shared by the surveyor and registrar workspaces: the paged list, the
// validation report (list + map layer: errors at their locations) and the diff map.
import { api } from "./api.js";
import { localized, t } from "./i18n.js";
import { bboxOf, diffLayers, reportLayers } from "./map.js";
import { clear, el, errorText, fmtDate, fmtNumber } from "./ui.js";

export const statusLabel = (st) => t(`st_${st}`);

// a paged table of submissions; onOpen(item) when one is opened
export async function submissionList(box, s, onOpen, { status } = {}) {
  clear(box);
  const table = el("table", { class: "list", id: "submission-list" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("filename")),
      el("th", { scope: "col" }, t("status")), el("th", { scope: "col" }, t("submitted_at")),
      el("th", { scope: "col" }, el("span", { class: "sr-only" }, t("actions"))))));
  const body = el("tbody");
  table.append(body);
  const more = el("button", { type: "button", class: "btn", hidden: true }, t("more"));
  box.append(table, more);
  let cursor = null;
  async function page() {
    const q = new URLSearchParams({ limit: "20" });
    if (cursor) q.set("cursor", cursor);
    if (status) q.set("status", status);
    try {
      const res = await api(`api/v1/surveys?${q}`, { token: s.token });
      for (const it of res.items) {
        const counts = it.error_count !== null && it.error_count !== undefined
          ? ` (${t("survey_errors", { e: it.error_count, w: it.warning_count || 0 })})` : "";
        body.append(el("tr", { dataset: { submission: it.submission_id, status: it.status } },
          el("td", { class: "wrap" }, it.filename),
          el("td", {}, el("span", { class: `chip st-${it.status}` }, statusLabel(it.status)), counts),
          el("td", {}, fmtDate(it.submitted_at)),
          el("td", {}, el("button", { type: "button", class: "btn small", onclick: () => onOpen(it),
            "aria-label": `${t("survey_open")} ${it.filename}` }, t("survey_open")))));
      }
      if (!body.childNodes.length) body.append(el("tr", {}, el("td", { colspan: 4 }, t("surveys_none"))));
      cursor = res.next;
      more.hidden = !cursor;
    } catch (err) {
      box.append(el("p", { class: "error" }, errorText(err)));
    }
  }
  more.addEventListener("click", page);
  await page();
}

// the validation report: counts, the issue list and the map layer
export async function showReport(box, cmap, s, sid) {
  const base = `api/v1/surveys/${sid}`;
  const [report, layer] = await Promise.all([
    api(`${base}/report`, { token: s.token }),
    api(`${base}/report.geojson`, { token: s.token }),
  ]);
  cmap.setOverlay("report", { type: "geojson", data: layer }, reportLayers());
  const errors = report.errors || [];
  const warnings = report.warnings || [];
  const section = el("section", { class: "report", id: "survey-report", "aria-labelledby": "report-title" },
    el("h4", { id: "report-title" }, t("survey_report")),
    el("p", { class: errors.length ? "error" : "ok", id: "report-summary" },
      errors.length || warnings.length ? t("survey_errors", { e: errors.length, w: warnings.length })
        : t("survey_ok")));
  const counts = Object.entries(report.counts || {}).map(([k, v]) => `${t(`kind_${k}`)} ${v}`);
  if (counts.length) section.append(el("p", { class: "facts" }, counts.join(" · ")));
  const ul = el("ul", { class: "issues" });
  for (const [severity, items] of [["error", errors], ["warning", warnings]]) {
    for (const it of items) {
      const where = it.geometry ? bboxOf({ features: [{ geometry: it.geometry }] }) : null;
      const li = el("li", { class: `issue ${severity}` },
        el("span", { class: `chip sev-${severity}` }, t(`legend_${severity}`)),
        el("code", {}, it.code), " ", localized(it.message),
        it.measure !== null && it.measure !== undefined ? ` (${fmtNumber(it.measure)})` : "",
        (it.subject || []).length ? el("span", { class: "subject" }, ` ${it.subject.join(", ")}`) : "");
      if (where) {
        li.append(" ", el("button", { type: "button", class: "btn small",
          onclick: () => cmap.flyTo({ bbox: where, zoom: 19 }) }, "⌖"));
      }
      ul.append(li);
    }
  }
  section.append(ul, legend([["error", t("legend_error")], ["warning", t("legend_warning")]], "sev"));
  box.append(section);
  const b = bboxOf(layer);
  if (b) cmap.flyTo({ bbox: b, zoom: 19 });
  return { report, layer };
}

export async function showDiff(box, cmap, s, sid) {
  const base = `api/v1/surveys/${sid}`;
  const [summary, layer] = await Promise.all([
    api(`${base}/diff`, { token: s.token }),
    api(`${base}/diff.geojson`, { token: s.token }),
  ]);
  cmap.setOverlay("diff", { type: "geojson", data: layer }, diffLayers());
  const pc = summary.parcels || {};
  box.append(el("section", { class: "diff", id: "survey-diff" },
    el("p", { id: "diff-summary" }, t("survey_diff", { new: pc.new || 0, changed: pc.changed || 0,
      retired: pc.retired || 0 })),
    legend([["new", t("legend_new")], ["changed", t("legend_changed")],
      ["retired", `${t("legend_retired")} / ${t("legend_before")}`]], "chg")));
  const b = bboxOf(layer);
  if (b) cmap.flyTo({ bbox: b, zoom: 19 });
  return { summary, layer };
}

function legend(items, prefix) {
  return el("div", { class: "legend" }, ...items.map(([k, label]) =>
    el("span", { class: `swatch ${prefix}-${k}` }, label)));
}
