// Surveyor workspace: upload a survey (upload progress bar), follow its validation live, see the
// report on the map (errors at their locations), and the submission history.
import { api, upload } from "./api.js";
import { t } from "./i18n.js";
import { showReport, statusLabel, submissionList } from "./submissions.js";
import { appendOptions, loadPresets, optionFields } from "./surveyfields.js";
import { clear, el, errorText, tabs, toast } from "./ui.js";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const STEPS = { reading: ["读取文件", "reading"], staging: ["暂存", "staging"],
  checking: ["检查", "checking"], done: ["完成", "done"] };

export class SurveyorWorkspace {
  constructor(box, cmap, s) {
    this.box = box;
    this.cmap = cmap;
    this.s = s;
    this.alive = true;
  }

  render() {
    tabs(this.box, [["upload", t("tab_upload")], ["history", t("tab_history")]], (id, panel) => {
      if (id === "upload") this.uploadForm(panel);
      else this.history(panel);
    });
  }

  dispose() {
    this.alive = false;
    this.cmap.clearOverlay("report");
  }

  uploadForm(panel) {
    const status = el("p", { class: "form-status", role: "alert" });
    const upBar = el("progress", { id: "upload-progress", max: 100, value: 0 });
    const valBar = el("progress", { id: "validate-progress", max: 100, value: 0 });
    const upText = el("span", { id: "upload-text", "aria-live": "polite" });
    const valText = el("span", { id: "validate-text", "aria-live": "polite" });
    const bars = el("div", { class: "bars", hidden: true },
      el("label", { for: "upload-progress" }, t("upload_progress")), upBar, upText,
      el("label", { for: "validate-progress" }, t("validate_progress")), valBar, valText);
    const result = el("div", { class: "detail", id: "upload-result" });
    const form = el("form", { class: "form", id: "upload-form" },
      el("div", { class: "field" }, el("label", { for: "survey-file" }, t("upload_file")),
        el("input", { id: "survey-file", name: "file", type: "file", required: true,
          accept: ".txt,.zip,.gpkg,.geojson,.json,.fgb,.dxf,.csv,.ifc" })),
      el("div", { class: "field" }, el("label", { for: "survey-srid" }, t("upload_srid")),
        el("input", { id: "survey-srid", name: "srid", type: "number", inputmode: "numeric",
          min: 1024, max: 999999, placeholder: "4528" })),
      optionFields(),
      el("button", { type: "submit", class: "btn primary", id: "upload-submit" }, t("upload_submit")),
      status, bars);
    loadPresets(form, this.s);
    // the report's suggested mapping: into the form, and the same file validated again
    const mapping = {
      onApply: (fieldMap, newParcels) => {
        form.querySelector("#survey-field-map").value = fieldMap;
        form.querySelector("#survey-new-parcels").checked = newParcels;
        form.querySelector("#upload-options").open = true;
        form.requestSubmit();
      },
      onSave: async (name, fieldMap) => {
        try {
          await api(`api/v1/surveys/field-maps/${encodeURIComponent(name)}`, { token: this.s.token,
            method: "PUT", body: { field_map: fieldMap } });
          form.querySelector("#survey-preset").append(el("option", { value: name }, name));
          toast(t("mapping_saved", { name }));
        } catch (err) {
          toast(errorText(err), { error: true });
        }
      },
    };
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const file = form.querySelector("#survey-file").files[0];
      const srid = form.querySelector("#survey-srid").value.trim();
      const data = new FormData();
      data.append("file", file, file.name);
      if (srid) data.append("srid", srid);
      appendOptions(form, data);
      const button = form.querySelector("#upload-submit");
      button.disabled = true;
      status.textContent = "";
      bars.hidden = false;
      upBar.value = 0;
      valBar.value = 0;
      clear(result);
      this.cmap.clearOverlay("report");
      try {
        const res = await upload("api/v1/surveys", data, this.s.token, (f) => {
          upBar.value = Math.round(f * 100);
          upText.textContent = t("upload_sent", { p: Math.round(f * 100) });
        });
        await this.follow(res.submission_id, valBar, valText, result, mapping);
      } catch (err) {
        status.textContent = errorText(err);
      } finally {
        button.disabled = false;
      }
    });
    panel.append(el("h4", {}, t("upload_title")), form, result);
  }

  // poll the submission until validation has finished, then draw its report
  async follow(sid, bar, text, result, mapping) {
    let st;
    for (;;) {
      st = await api(`api/v1/surveys/${sid}`, { token: this.s.token });
      const p = st.job ? st.job.progress : 0;
      bar.value = Math.round((p || 0) * 100);
      const step = (st.job && st.job.step) || st.status;
      const label = STEPS[step] ? STEPS[step][document.documentElement.lang === "en" ? 1 : 0] : step;
      text.textContent = t("validate_step", { step: label });
      if (!["received", "validating"].includes(st.status) || !this.alive) break;
      await sleep(400);
    }
    bar.value = 100;
    text.textContent = t("validate_done", { status: statusLabel(st.status) });
    result.dataset.status = st.status;
    result.dataset.submission = sid;
    if (st.status === "failed") {
      result.append(el("p", { class: "error" }, st.job?.error || statusLabel(st.status)));
      return;
    }
    await showReport(result, this.cmap, this.s, sid, mapping);
  }

  history(panel) {
    const listBox = el("div", { class: "list-box" });
    const detail = el("div", { class: "detail", id: "history-detail" });
    panel.append(el("h4", {}, t("history")), listBox, detail);
    submissionList(listBox, this.s, async (it) => {
      clear(detail).append(el("h4", {}, it.filename),
        el("p", {}, el("span", { class: `chip st-${it.status}` }, statusLabel(it.status))));
      if (it.decision_reason) detail.append(el("p", {}, `${t("survey_reason")}${t("colon")}${it.decision_reason}`));
      this.cmap.clearOverlay("report");
      if (["received", "validating"].includes(it.status)) return;
      try {
        await showReport(detail, this.cmap, this.s, it.submission_id);
      } catch (err) {
        detail.append(el("p", { class: "error" }, errorText(err)));
      }
    });
  }
}
