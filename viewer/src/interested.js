// Interested parties (利害关系人) and departments: they query with a stated purpose and a case
// reference (不动产登记暂行条例 Art. 28). Both ride along with every detail request
// (X-Purpose, X-Case-Ref); the server's policy then adds the restrictions on a unit (mortgage,
// seizure, …) to its natural attributes, and the audit trail records purpose and case.
import { api, session, updateSession } from "./api.js";
import { getLang, t } from "./i18n.js";
import { clear, el, errorText } from "./ui.js";

// (the server checks the form of a case reference; a wrong one comes back as its message)
const CASE_REF = "\\S{3,64}";

export class InterestedWorkspace {
  constructor(box, cmap, s) {
    this.box = box;
    this.cmap = cmap;
    this.session = s;
  }

  async render() {
    const box = clear(this.box);
    const status = el("p", { class: "form-status", role: "status", id: "query-context-status" });
    const select = el("select", { id: "query-purpose", required: true },
      el("option", { value: "" }, t("purpose_choose")));
    const caseRef = el("input", { id: "query-case-ref", required: true, maxlength: 64,
      pattern: CASE_REF, title: t("case_ref_hint"), placeholder: t("case_ref_hint") });
    const form = el("form", { class: "form", id: "query-context-form" },
      el("div", { class: "field" }, el("label", { for: "query-purpose" }, t("purpose")), select),
      el("div", { class: "field" }, el("label", { for: "query-case-ref" }, t("case_ref")), caseRef),
      el("button", { type: "submit", class: "btn primary", id: "query-context-save" },
        t("query_context_save")),
      status);
    box.append(el("h3", {}, t("query_context_title")), el("p", { class: "hint" }, t("query_context_intro")),
      form);
    try {
      const { items } = await api("api/v1/auth/purposes");
      for (const p of items) {
        select.append(el("option", { value: p.code }, getLang() === "zh" ? p.zh : p.en));
      }
    } catch (err) {
      status.textContent = errorText(err);
    }
    const s = session("staff");
    if (s && s.purpose) {
      select.value = s.purpose;
      caseRef.value = s.caseRef || "";
      status.textContent = this.savedText(s);
    }
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const label = select.options[select.selectedIndex].textContent;
      const saved = updateSession("staff", { purpose: select.value, purposeLabel: label,
        caseRef: caseRef.value.trim() });
      status.textContent = this.savedText(saved);
    });
  }

  savedText(s) {
    return t("query_context_saved", { purpose: s.purposeLabel || s.purpose, ref: s.caseRef });
  }

  dispose() {}
}

// what a detail request carries for the signed-in interested party / department (or nothing)
export function queryContext() {
  const s = session("staff");
  if (!s || !["interested", "department"].includes(s.role) || !s.purpose || !s.caseRef) return null;
  return { token: s.token, headers: { "X-Purpose": s.purpose,
    "X-Case-Ref": encodeURIComponent(s.caseRef) } };
}
