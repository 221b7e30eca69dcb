// Registration cases (办件) for registrars: the worklist coloured by traffic light (most urgent
// first), a summary of the lights, and one case with its clock, parties, history and the moves
// its stage allows (审核, 登簿, 缮证, 发证, 归档, 驳回, 暂停/恢复 …).
import { api } from "./api.js";
import { addStrings, getLang, t } from "./i18n.js";
import { clear, definitionList, el, errorText, fmtDate, toast } from "./ui.js";

addStrings({
  zh: {
    tab_cases: "办件", cases_summary: "在办：{green} 绿 · {yellow} 黄 · {red} 红（其中 {stat} 件超法定时限）",
    cases_all: "全部", cases_mine: "只看我的", light_green: "正常", light_yellow: "预警", light_red: "超期",
    case_no: "案号", case_business: "业务", case_stage: "阶段", case_left: "剩余工作日",
    case_due: "承诺办结", case_statutory: "法定期限", case_accepted: "受理时间", case_units: "不动产单元",
    case_parties: "当事人", case_history: "流转记录", case_materials: "材料", case_paused: "暂停中",
    case_none: "没有符合条件的办件", case_more: "更多", case_review_step: "审核环节",
    case_review_opinion: "审核意见", case_reason: "理由", case_pause_reason: "暂停原因",
    case_done: "已执行：{action}", case_cal_warning: "日历提示",
    act_review: "审核通过", act_register: "登簿", act_conclude: "办结", act_prepare: "缮证",
    act_issue: "发证", act_archive: "归档", act_reject: "驳回", act_withdraw: "撤回",
    act_accept: "受理", act_refuse: "不予受理", act_pause: "暂停计时", act_resume: "恢复计时",
  },
  en: {
    tab_cases: "Cases", cases_summary: "Open: {green} green · {yellow} yellow · {red} red ({stat} past the statutory limit)",
    cases_all: "All", cases_mine: "Mine only", light_green: "on time", light_yellow: "due soon", light_red: "overdue",
    case_no: "Case", case_business: "Business", case_stage: "Stage", case_left: "Working days left",
    case_due: "Promised by", case_statutory: "Statutory limit", case_accepted: "Accepted", case_units: "Units",
    case_parties: "Parties", case_history: "History", case_materials: "Materials", case_paused: "paused",
    case_none: "No cases match", case_more: "More", case_review_step: "Review step",
    case_review_opinion: "Opinion", case_reason: "Reason", case_pause_reason: "Pause reason",
    case_done: "Done: {action}", case_cal_warning: "Calendar note",
    act_review: "Review: pass", act_register: "Enter in register", act_conclude: "Conclude",
    act_prepare: "Prepare certificate", act_issue: "Issue", act_archive: "Archive", act_reject: "Reject",
    act_withdraw: "Withdraw", act_accept: "Accept", act_refuse: "Refuse", act_pause: "Pause clock",
    act_resume: "Resume clock",
  },
});

// what each stage allows (the server checks again)
const MOVES = {
  applied: ["accept", "refuse", "withdraw"],
  accepted: ["review", "register", "conclude", "reject", "withdraw"],
  reviewing: ["review", "register", "conclude", "reject", "withdraw"],
  registered: ["prepare", "archive"],
  certificate_prepared: ["issue"],
  issued: ["archive"],
  concluded: ["archive"],
};
const NEEDS_REASON = new Set(["reject", "refuse"]);
const PAUSES = ["supplement", "announcement", "site_visit", "investigation", "policy_check", "tax_payment"];

export const label = (pair) => (pair && typeof pair === "object" ? pair[getLang()] ?? pair.zh : pair ?? "");

export function lightDot(light) {
  if (!light) return el("span", { class: "light none", "aria-hidden": "true" }, "○");
  return el("span", { class: `light light-${light}`, title: t(`light_${light}`),
    "aria-label": t(`light_${light}`) }, "●");
}

export class CasesTab {
  constructor(panel, s) {
    this.panel = panel;
    this.s = s;
    this.filter = { light: "", mine: false };
  }

  async render() {
    const summary = el("p", { class: "cases-summary", id: "cases-summary" }, t("loading"));
    const filters = el("div", { class: "chips", role: "group" });
    for (const light of ["", "red", "yellow", "green"]) {
      filters.append(el("button", { type: "button", class: `chip ${light ? `light-${light}` : ""}`,
        "aria-pressed": this.filter.light === light ? "true" : "false", dataset: { light },
        onclick: () => { this.filter.light = light; this.refresh(); } },
      light ? [lightDot(light), " ", t(`light_${light}`)] : t("cases_all")));
    }
    const mine = el("label", { class: "inline" }, el("input", { type: "checkbox", id: "cases-mine",
      checked: this.filter.mine, onchange: (e) => { this.filter.mine = e.target.checked; this.refresh(); } }),
    ` ${t("cases_mine")}`);
    this.list = el("div", { class: "list-box", id: "case-list" });
    this.detail = el("div", { class: "detail", id: "case-detail" });
    clear(this.panel).append(summary, filters, mine, this.list, this.detail);
    this.summary = summary;
    this.filters = filters;
    await this.refresh();
  }

  async refresh() {
    for (const b of this.filters.querySelectorAll("button")) {
      b.setAttribute("aria-pressed", b.dataset.light === this.filter.light ? "true" : "false");
    }
    try {
      const stats = await api("api/v1/cases/stats", { token: this.s.token });
      const x = stats.totals;
      this.summary.textContent = t("cases_summary", { green: x.green, yellow: x.yellow, red: x.red, stat: x.statutory_overdue });
    } catch (err) { this.summary.textContent = errorText(err); }
    await this.page(null, true);
  }

  async page(cursor, fresh) {
    const q = new URLSearchParams({ limit: "30" });
    if (this.filter.light) q.set("light", this.filter.light);
    if (this.filter.mine) q.set("mine", "true");
    if (cursor) q.set("cursor", cursor);
    let res;
    try {
      res = await api(`api/v1/cases?${q}`, { token: this.s.token });
    } catch (err) {
      clear(this.list).append(el("p", { class: "error" }, errorText(err)));
      return;
    }
    if (fresh) clear(this.list);
    this.list.querySelector(".more")?.remove();
    let table = this.list.querySelector("table");
    if (!table) {
      table = el("table", { class: "cases" }, el("thead", {}, el("tr", {},
        el("th", {}, ""), el("th", {}, t("case_no")), el("th", {}, t("case_business")),
        el("th", {}, t("case_stage")), el("th", {}, t("case_left")), el("th", {}, t("case_due")))),
      el("tbody"));
      this.list.append(table);
    }
    const body = table.querySelector("tbody");
    for (const c of res.items) {
      const row = el("tr", { class: `case-row light-${c.light || "none"}`, tabindex: "0",
        dataset: { caseNo: c.case_no, light: c.light || "" },
        onclick: () => this.open(c.case_no),
        onkeydown: (e) => { if (e.key === "Enter") this.open(c.case_no); } },
      el("td", {}, lightDot(c.light)), el("td", { class: "mono" }, c.case_no),
      el("td", {}, label(c.business_type_label)),
      el("td", {}, label(c.stage_label), c.paused ? ` · ${t("case_paused")}` : ""),
      el("td", { class: "num" }, c.remaining_workdays ?? ""), el("td", {}, c.promised_due_date || ""));
      body.append(row);
    }
    if (!body.children.length) this.list.append(el("p", { class: "hint" }, t("case_none")));
    if (res.next) {
      this.list.append(el("button", { type: "button", class: "btn more",
        onclick: () => this.page(res.next, false) }, t("case_more")));
    }
  }

  async open(caseNo) {
    const d = this.detail;
    clear(d).append(el("p", { class: "hint" }, t("loading")));
    let c;
    try {
      c = await api(`api/v1/cases/${encodeURIComponent(caseNo)}`, { token: this.s.token });
    } catch (err) {
      clear(d).append(el("p", { class: "error" }, errorText(err)));
      return;
    }
    clear(d).append(
      el("h4", {}, lightDot(c.light), " ", `${label(c.business_type_label)} · ${c.case_no}`),
      el("p", {}, el("span", { class: "chip", id: "case-stage" }, label(c.stage_label)),
        c.paused ? el("span", { class: "chip warn" }, t("case_paused")) : ""),
      definitionList([
        [t("case_accepted"), fmtDate(c.accepted_at || c.applied_at)],
        [t("case_due"), fmtDate(c.due_at)], [t("case_statutory"), fmtDate(c.statutory_due_at)],
        [t("case_left"), c.remaining_workdays ?? ""],
        [t("case_units"), (c.unit_codes || []).join(", ")],
        [t("case_parties"), (c.parties || []).map((p) => `${p.name || ""}（${p.case_role}）`).join("、")],
        ...(c.calendar_warning ? [[t("case_cal_warning"), c.calendar_warning]] : []),
      ]),
      this.actions(c),
      el("h5", {}, t("case_history")),
      el("ol", { class: "history" }, ...(c.transitions || []).map((x) =>
        el("li", {}, `${fmtDate(x.at)} ${x.action}${x.note ? ` — ${x.note}` : ""}`))));
    if ((c.materials || []).length) {
      d.append(el("h5", {}, t("case_materials")), el("ul", {}, ...c.materials.map((m) =>
        el("li", { class: `material-${m.status}` }, `${label({ zh: m.name_zh, en: m.name_en })} · ${m.status}`))));
    }
  }

  actions(c) {
    const box = el("div", { class: "case-actions", id: "case-actions" });
    const status = el("p", { class: "form-status", role: "alert" });
    const step = el("input", { id: "case-review-step", value: "初审", maxlength: 40, "aria-label": t("case_review_step") });
    const opinion = el("input", { id: "case-review-opinion", value: "材料齐全，同意", maxlength: 2000,
      "aria-label": t("case_review_opinion") });
    const reason = el("input", { id: "case-reason", maxlength: 2000, placeholder: t("case_reason"),
      "aria-label": t("case_reason") });
    const run = async (action) => {
      const body = { action };
      if (action === "review") body.review = { step: step.value.trim(), opinion: opinion.value.trim(), passed: true };
      if (NEEDS_REASON.has(action)) {
        if (!reason.value.trim()) { status.textContent = t("case_reason"); reason.focus(); return; }
        body.reason = reason.value.trim();
      }
      await this.post(c, `api/v1/cases/${c.case_no}/actions`, body, t(`act_${action}`), status);
    };
    const buttons = (MOVES[c.stage] || []).map((a) => el("button", { type: "button",
      class: `btn ${a === "register" ? "primary" : ""}`, id: `case-act-${a}`, onclick: () => run(a) },
    t(`act_${a}`)));
    if (c.stage === "accepted" || c.stage === "reviewing") box.append(el("div", { class: "row" }, step, opinion));
    box.append(el("div", { class: "row" }, ...buttons), reason);
    if (["applied", "accepted", "reviewing"].includes(c.stage)) {
      const pauseReason = el("select", { id: "case-pause-reason", "aria-label": t("case_pause_reason") },
        ...PAUSES.filter((p) => p !== "supplement").map((p) => el("option", { value: p }, p)));
      box.append(el("div", { class: "row" }, c.paused
        ? el("button", { type: "button", class: "btn", id: "case-resume",
          onclick: () => this.post(c, `api/v1/cases/${c.case_no}/resume`, {}, t("act_resume"), status) }, t("act_resume"))
        : [pauseReason, el("button", { type: "button", class: "btn", id: "case-pause",
          onclick: () => this.post(c, `api/v1/cases/${c.case_no}/pauses`, { reason: pauseReason.value },
            t("act_pause"), status) }, t("act_pause"))]));
    }
    box.append(status);
    return box;
  }

  async post(c, path, body, what, status) {
    for (const b of this.detail.querySelectorAll("button")) b.disabled = true;
    try {
      await api(path, { method: "POST", token: this.s.token, body });
      toast(t("case_done", { action: what }));
      await this.open(c.case_no);
      await this.refresh();
    } catch (err) {
      status.textContent = errorText(err);
      for (const b of this.detail.querySelectorAll("button")) b.disabled = false;
    }
  }
}
