// Registrar workspace: survey submissions (diff map, report, accept / reject with a reason),
// QA runs (findings as a vector tile layer with the bearer token, and a list), audit chain status.
import { api } from "./api.js";
import { CasesTab } from "./cases.js";
import { localized, t } from "./i18n.js";
import { bboxOf, qaLayers } from "./map.js";
import { showDiff, showReport, statusLabel, submissionList } from "./submissions.js";
import { clear, el, errorText, fmtDate, fmtNumber, tabs, toast } from "./ui.js";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class RegistrarWorkspace {
  constructor(box, cmap, s) {
    this.box = box;
    this.cmap = cmap;
    this.s = s;
    this.alive = true;
  }

  render() {
    tabs(this.box, [["surveys", t("tab_surveys")], ["cases", t("tab_cases")], ["qa", t("tab_qa")],
      ["audit", t("tab_audit")]],
    (id, panel) => {
        this.cmap.clearOverlay("qa");
        if (id === "cases") new CasesTab(panel, this.s).render();
        else if (id === "surveys") this.surveys(panel);
        else if (id === "qa") this.qa(panel);
        else this.audit(panel);
      });
  }

  dispose() {
    this.alive = false;
    for (const name of ["qa", "diff", "report"]) this.cmap.clearOverlay(name);
  }

  // ---- survey submissions
  surveys(panel) {
    const listBox = el("div", { class: "list-box" });
    const detail = el("div", { class: "detail", id: "survey-detail" });
    panel.append(el("h4", {}, t("surveys")), listBox, detail);
    submissionList(listBox, this.s, (it) => this.openSubmission(detail, it.submission_id));
  }

  async openSubmission(detail, sid) {
    clear(detail).append(el("p", { class: "hint" }, t("loading")));
    for (const name of ["diff", "report"]) this.cmap.clearOverlay(name);
    let st;
    try {
      st = await api(`api/v1/surveys/${sid}`, { token: this.s.token });
    } catch (err) {
      clear(detail).append(el("p", { class: "error" }, errorText(err)));
      return;
    }
    clear(detail).append(el("h4", {}, st.filename),
      el("p", {}, el("span", { class: `chip st-${st.status}`, id: "survey-status" }, statusLabel(st.status)),
        ` ${fmtDate(st.submitted_at)}`));
    if (st.decision_reason) detail.append(el("p", {}, `${t("survey_reason")}${t("colon")}${st.decision_reason}`));
    try {
      if (["validated", "invalid", "accepted", "rejected"].includes(st.status)) {
        await showReport(detail, this.cmap, this.s, sid);
      }
      if (["validated", "accepted"].includes(st.status) || st.status === "rejected") {
        await showDiff(detail, this.cmap, this.s, sid);
      }
    } catch (err) {
      detail.append(el("p", { class: "error" }, errorText(err)));
    }
    if (st.status === "validated") detail.append(this.decisionForm(detail, sid));
  }

  decisionForm(detail, sid) {
    const status = el("p", { class: "form-status", role: "alert" });
    const reason = el("textarea", { id: "decision-reason", rows: 2, maxlength: 2000 });
    const act = async (what) => {
      const text = reason.value.trim();
      if (what === "reject" && !text) { status.textContent = t("survey_reason_needed"); reason.focus(); return; }
      for (const b of form.querySelectorAll("button")) b.disabled = true;
      try {
        await api(`api/v1/surveys/${sid}/${what}`, { method: "POST", token: this.s.token,
          body: { reason: text || null } });
        if (what === "accept") {
          for (const name of ["diff", "report"]) this.cmap.clearOverlay(name);
          // the server drops its cached tiles as soon as the database reports the change
          // (LISTEN/NOTIFY): load fresh tiles now and once more a moment later
          this.cmap.refreshData();
          setTimeout(() => this.cmap.refreshData(), 2500);
          toast(t("survey_accepted"));
        } else {
          toast(t("survey_rejected"));
        }
        this.openSubmission(detail, sid);
        const list = this.box.querySelector(".list-box");
        if (list) submissionList(list, this.s, (it) => this.openSubmission(detail, it.submission_id));
      } catch (err) {
        status.textContent = errorText(err);
        for (const b of form.querySelectorAll("button")) b.disabled = false;
      }
    };
    const form = el("form", { class: "form decision", id: "decision-form",
      onsubmit: (e) => e.preventDefault() },
      el("div", { class: "field" }, el("label", { for: "decision-reason" }, t("survey_reason")), reason),
      el("div", { class: "actions" },
        el("button", { type: "button", class: "btn primary", id: "survey-accept",
          onclick: () => act("accept") }, t("survey_accept")),
        el("button", { type: "button", class: "btn danger", id: "survey-reject",
          onclick: () => act("reject") }, t("survey_reject"))),
      status);
    return form;
  }

  // ---- QA runs
  async qa(panel) {
    const listBox = el("div", { class: "list-box" });
    const detail = el("div", { class: "detail", id: "qa-detail" });
    const start = el("button", { type: "button", class: "btn", id: "qa-start" }, t("qa_new"));
    const progress = el("progress", { max: 1, value: 0, hidden: true, "aria-label": t("qa_started") });
    start.addEventListener("click", async () => {
      const b = this.cmap.map.getBounds();
      start.disabled = true;
      progress.hidden = false;
      try {
        const res = await api("api/v1/qa/runs", { method: "POST", token: this.s.token,
          body: { bbox: [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(",") } });
        toast(t("qa_started"));
        let job;
        do {
          await sleep(700);
          job = await api(`api/v1/qa/jobs/${res.job_id}`, { token: this.s.token });
          progress.value = job.progress || 0;
        } while (this.alive && !["done", "failed"].includes(job.status));
        await this.runList(listBox, detail);
        if (job.run_id) this.openRun(detail, { run_id: job.run_id });
      } catch (err) {
        toast(errorText(err), { error: true });
      } finally {
        start.disabled = false;
        progress.hidden = true;
      }
    });
    panel.append(el("div", { class: "row-between" }, el("h4", {}, t("qa_runs")), start), progress,
      listBox, detail);
    await this.runList(listBox, detail);
  }

  async runList(listBox, detail) {
    clear(listBox);
    try {
      const res = await api("api/v1/qa/runs?limit=20", { token: this.s.token });
      if (!res.items.length) { listBox.append(el("p", { class: "hint" }, t("qa_none"))); return; }
      const ul = el("ul", { class: "runs", id: "qa-runs" });
      for (const r of res.items) {
        ul.append(el("li", { dataset: { run: r.run_id } },
          el("button", { type: "button", class: "linkish", onclick: () => this.openRun(detail, r) },
            `${fmtDate(r.started_at)} · ${scopeText(r.scope)}`),
          el("span", { class: "facts" }, ` ${t("qa_findings", { n: r.total, e: r.errors, w: r.warnings })}`)));
      }
      listBox.append(ul);
    } catch (err) {
      listBox.append(el("p", { class: "error" }, errorText(err)));
    }
  }

  async openRun(detail, run) {
    const rid = run.run_id;
    this.cmap.setOverlay("qa", { type: "vector",
      tiles: [new URL(".", document.baseURI).href + `api/v1/qa/runs/${rid}/tiles/{z}/{x}/{y}.mvt`],
      minzoom: 0, maxzoom: 20 }, qaLayers());
    clear(detail).append(el("p", { class: "hint" }, t("loading")));
    try {
      const rows = await api(`api/v1/qa/runs/${rid}/findings`, { token: this.s.token });
      clear(detail);
      if (!rows.length) { detail.append(el("p", { class: "hint" }, t("qa_list_empty"))); return; }
      const ul = el("ul", { class: "issues", id: "qa-findings" });
      for (const f of rows.slice(0, 300)) {
        const where = f.geometry ? bboxOf({ features: [{ geometry: f.geometry }] }) : null;
        ul.append(el("li", { class: `issue ${f.severity}` },
          el("span", { class: `chip sev-${f.severity}` }, t(`legend_${f.severity}`) || f.severity),
          el("code", {}, f.rule), " ", localized(f.message),
          f.measure !== null && f.measure !== undefined ? ` (${fmtNumber(f.measure)})` : "",
          el("span", { class: "subject" }, ` ${(f.subject || []).join(", ")}`),
          where ? el("button", { type: "button", class: "btn small", "aria-label": "⌖",
            onclick: () => this.cmap.flyTo({ bbox: where, zoom: 19 }) }, "⌖") : ""));
      }
      detail.append(ul);
      const all = bboxOf({ features: rows.filter((f) => f.geometry).map((f) => ({ geometry: f.geometry })) });
      if (run.bbox || all) this.cmap.flyTo({ bbox: run.bbox || all, zoom: 18 });
    } catch (err) {
      clear(detail).append(el("p", { class: "error" }, errorText(err)));
    }
  }

  // ---- audit chain
  async audit(panel) {
    const out = el("p", { id: "audit-status", role: "status" }, t("loading"));
    const check = el("button", { type: "button", class: "btn", onclick: () => run() }, t("audit_check"));
    panel.append(el("h4", {}, t("audit_title")), out, check);
    const run = async () => {
      out.textContent = t("loading");
      out.className = "";
      try {
        const res = await api("api/v1/audit/verify", { token: this.s.token });
        const ok = res.ok === true;
        out.className = ok ? "ok" : "error";
        out.textContent = ok ? t("audit_ok", { n: res.rows ?? "?" })
          : t("audit_bad", { msg: `#${res.first_bad_seq ?? "?"} ${res.reason || ""}`.trim() });
      } catch (err) {
        out.className = "hint";
        out.textContent = [401, 403, 404, 405].includes(err.status)
          ? t("audit_unavailable", { status: err.status }) : errorText(err);
      }
    };
    await run();
  }
}

function scopeText(scope) {
  if (!scope) return "";
  if (scope.kind === "bbox" && scope.bbox) return `bbox ${scope.bbox.map((v) => Number(v).toFixed(3)).join(",")}`;
  return scope.kind || "";
}
