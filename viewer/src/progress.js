// 一号查询: the public progress of a case by its number and the query code on the acceptance
// receipt. Shows the stage, dates, promised completion date and light only.
import { api } from "./api.js";
import { addStrings, t } from "./i18n.js";
import { label, lightDot } from "./cases.js";
import { clear, definitionList, el, errorText, fmtDate } from "./ui.js";

addStrings({
  zh: {
    mode_progress: "办件查询", progress_title: "办件进度查询", progress_case: "受理编号（案号）",
    progress_code: "查询码", progress_submit: "查询", progress_hint: "请输入受理回执上的案号和查询码。",
    progress_not_found: "未查询到该办件，请核对案号和查询码", progress_locked: "查询失败次数过多，请稍后再试",
    progress_business: "业务", progress_stage: "当前阶段", progress_applied: "申请时间",
    progress_accepted: "受理时间", progress_due: "承诺办结日期", progress_light: "时限状态",
    progress_registered: "登簿/办结时间", progress_paused: "（暂停计时中）",
  },
  en: {
    mode_progress: "Case progress", progress_title: "Case progress", progress_case: "Case number",
    progress_code: "Query code", progress_submit: "Look up", progress_hint: "Enter the case number and query code from your acceptance receipt.",
    progress_not_found: "No case with that number and query code", progress_locked: "Too many failed attempts, try again later",
    progress_business: "Business", progress_stage: "Stage", progress_applied: "Applied",
    progress_accepted: "Accepted", progress_due: "Promised completion", progress_light: "Time limit",
    progress_registered: "Entered / concluded", progress_paused: " (clock paused)",
  },
});

export class ProgressPanel {
  constructor(panel) { this.panel = panel; }

  render() {
    const p = clear(this.panel);
    const status = el("p", { class: "form-status", role: "alert" });
    const result = el("div", { id: "progress-result", "aria-live": "polite" });
    const form = el("form", { class: "form", id: "progress-form" },
      el("p", { class: "hint" }, t("progress_hint")),
      el("div", { class: "field" }, el("label", { for: "progress-case" }, t("progress_case")),
        el("input", { id: "progress-case", required: true, maxlength: 40, inputmode: "numeric",
          autocomplete: "off" })),
      el("div", { class: "field" }, el("label", { for: "progress-code" }, t("progress_code")),
        el("input", { id: "progress-code", required: true, maxlength: 40, autocomplete: "off",
          spellcheck: "false" })),
      el("button", { type: "submit", class: "btn primary", id: "progress-submit" }, t("progress_submit")),
      status);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      clear(result);
      status.textContent = "";
      const no = form.querySelector("#progress-case").value.trim();
      const code = form.querySelector("#progress-code").value.trim();
      try {
        const c = await api(`api/v1/progress/${encodeURIComponent(no)}?code=${encodeURIComponent(code)}`);
        result.append(this.card(c));
      } catch (err) {
        status.textContent = err.status === 404 ? t("progress_not_found")
          : err.status === 429 ? t("progress_locked") : errorText(err);
      }
    });
    p.append(el("h3", {}, t("progress_title")), form, result);
  }

  card(c) {
    return el("div", { class: "progress-card", id: "progress-card" },
      el("h4", {}, lightDot(c.light), " ", label(c.business_type_label)),
      definitionList([
        [t("progress_stage"), el("span", { id: "progress-stage" }, label(c.stage_label),
          c.paused ? t("progress_paused") : "")],
        [t("progress_applied"), fmtDate(c.applied_at)],
        [t("progress_accepted"), fmtDate(c.accepted_at)],
        [t("progress_due"), c.promised_due_date || ""],
        [t("progress_light"), c.light_label ? label(c.light_label) : ""],
        [t("progress_registered"), fmtDate(c.registered_at)],
      ]),
      c.calendar_warning ? el("p", { class: "hint" }, c.calendar_warning) : "");
  }
}
