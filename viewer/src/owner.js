// Owner flow: verify (name, ID number, certificate number) → my units with rights and status →
// 宗地图 / 分层分户图 PDF downloads, the signed electronic certificate and query result, and the
// certificate QR code. The owner token stays in memory
// and sessionStorage (gone when the tab closes); nothing is kept in localStorage or cookies.
import { api, fetchBlob, saveBlob, session, setSession } from "./api.js";
import { codeLabel, fieldLabel, getLang, t } from "./i18n.js";
import { formatValue } from "./info.js";
import { clear, el, errorText, toast } from "./ui.js";

const ownerUrl = (code, file) => `api/v1/owner/units/${encodeURIComponent(code)}/${file}`;
const STATUS_FLAGS = ["mortgaged", "seized", "pre_noticed", "objected"];
const RIGHT_KINDS = {
  ownership: ["房地产权", "ownership"], land_use: ["建设用地使用权", "land use right"],
  mortgage: ["抵押权", "mortgage"], seizure: ["查封登记", "seizure"],
  pre_notice: ["预告登记", "pre-notice"], objection: ["异议登记", "objection"],
  easement: ["地役权", "easement"], cancellation: ["注销登记", "cancellation"],
};
// QSZT 权属状态
const RIGHT_STATUS = { 0: ["临时", "provisional"], 1: ["现势", "current"], 2: ["历史", "historic"] };
const pick = (table, v) => (table[v] ? table[v][getLang() === "zh" ? 0 : 1] : v);

export class OwnerPanel {
  constructor(panel, { onShowUnit }) {
    this.panel = panel;
    this.onShowUnit = onShowUnit;
    this.units = null;
    this.qrUrls = [];
  }

  render() {
    const s = session("owner");
    if (s) this.renderUnits(s); else this.renderForm();
  }

  renderForm(message) {
    const p = clear(this.panel);
    const status = el("p", { class: "form-status", role: "alert" }, message || "");
    const form = el("form", { class: "form", id: "owner-form", novalidate: true },
      field("owner-name", t("owner_name"), { autocomplete: "name", required: true, maxlength: 64 }),
      field("owner-id", t("owner_id"), { autocomplete: "off", required: true, maxlength: 18,
        inputmode: "text", spellcheck: "false", pattern: "[0-9]{17}[0-9Xx]" }),
      field("owner-cert", t("owner_cert"), { autocomplete: "off", required: true, maxlength: 80,
        placeholder: t("owner_cert_ph") }),
      el("button", { type: "submit", class: "btn primary", id: "owner-submit" }, t("owner_verify")),
      status);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = {
        name: form.querySelector("#owner-name").value.trim(),
        id_number: form.querySelector("#owner-id").value.trim().toUpperCase(),
        certificate_no: form.querySelector("#owner-cert").value.trim(),
      };
      if (!form.reportValidity()) return;
      const button = form.querySelector("#owner-submit");
      button.disabled = true;
      status.textContent = t("owner_verifying");
      try {
        const res = await api("api/v1/owner/verify", { method: "POST", body });
        const s = setSession("owner", res.access_token, res.expires_in);
        this.renderUnits(s);
      } catch (err) {
        status.textContent = err.status === 429 || err.code === "OWNER_LOCKED" ? t("owner_locked")
          : err.status === 401 ? t("owner_failed") : errorText(err);
        button.disabled = false;
        form.querySelector("#owner-name").focus();
      }
    });
    p.append(el("h3", {}, t("owner_title")), el("p", { class: "hint" }, t("owner_intro")), form);
  }

  async renderUnits(s) {
    const p = clear(this.panel);
    p.append(el("div", { class: "row-between" }, el("h3", { id: "owner-units-title" }, t("owner_units")),
      el("button", { type: "button", class: "btn", id: "owner-logout", onclick: () => this.logout() },
        t("owner_logout"))));
    const list = el("div", { class: "owner-units", "aria-labelledby": "owner-units-title" },
      el("p", { class: "hint" }, t("loading")));
    p.append(list);
    let res;
    try {
      res = await api("api/v1/owner/units", { token: s.token });
    } catch (err) {
      if (err.status === 401) { setSession("owner", null); this.renderForm(t("owner_expired")); return; }
      clear(list).append(el("p", { class: "error" }, errorText(err)));
      return;
    }
    const items = res.items || res.units || [];
    clear(list);
    if (!items.length) { list.append(el("p", { class: "hint" }, t("owner_none"))); return; }
    for (const u of items) list.append(this.unitCard(u, s));
  }

  unitCard(u, s) {
    const code = u.unit_code;
    const card = el("article", { class: "card owner-unit", dataset: { unitCode: code } },
      el("h4", {}, u.seat || code),
      el("p", { class: "mono" }, code));
    const facts = [];
    for (const k of ["use", "building_area", "inner_area", "floor_no", "room_no"]) {
      const v = formatValue(k, u[k], u);
      if (v !== null) facts.push(`${fieldLabel(k)} ${v}`);
    }
    if (facts.length) card.append(el("p", { class: "facts" }, facts.join(" · ")));
    card.append(statusChips(u.status || u));
    const rights = u.rights || [];
    if (rights.length) {
      const ul = el("ul", { class: "rights", "aria-label": t("owner_rights") });
      for (const r of rights) {
        const parts = [pick(RIGHT_KINDS, r.kind) || codeLabel("right_type", r.right_type)];
        if (r.status) parts.push(pick(RIGHT_STATUS, String(r.status)));
        if (r.certificate_no) parts.push(r.certificate_no);
        if (r.registered_at) parts.push(formatValue("valid_from", r.registered_at));
        if (r.right_start || r.right_end) parts.push(`${r.right_start || ""} – ${r.right_end || ""}`);
        ul.append(el("li", {}, parts.filter(Boolean).join(" · ")));
      }
      card.append(el("h5", {}, t("owner_rights")), ul);
    }
    const qrBox = el("div", { class: "qr-box", hidden: true });
    card.append(el("div", { class: "actions" },
      el("button", { type: "button", class: "btn", dataset: { action: "parcel-map" },
        onclick: (e) => this.download(e.currentTarget, s, code, "parcel-map.pdf") }, t("owner_parcel_pdf")),
      el("button", { type: "button", class: "btn", dataset: { action: "floor-plan" },
        onclick: (e) => this.download(e.currentTarget, s, code, "floor-plan.pdf") }, t("owner_floor_pdf")),
      el("button", { type: "button", class: "btn", dataset: { action: "certificate" },
        onclick: (e) => this.download(e.currentTarget, s, code, "certificate.pdf") }, t("owner_certificate_pdf")),
      el("button", { type: "button", class: "btn", dataset: { action: "query-result" },
        onclick: (e) => this.download(e.currentTarget, s, code, "query-result.pdf") }, t("owner_query_pdf")),
      el("button", { type: "button", class: "btn", dataset: { action: "qr" }, "aria-expanded": "false",
        onclick: (e) => this.toggleQr(e.currentTarget, qrBox, s, code, u) }, t("owner_qr")),
      el("button", { type: "button", class: "btn", onclick: () => this.onShowUnit(code) },
        t("owner_show_map"))),
    qrBox);
    return card;
  }

  async download(button, s, code, file) {
    button.disabled = true;
    try {
      const { blob, name } = await fetchBlob(ownerUrl(code, file), s.token);
      const filename = name || `${code}-${file}`;
      saveBlob(blob, filename);
      toast(t("owner_downloaded", { name: filename }));
    } catch (err) {
      if (err.status === 401) { setSession("owner", null); this.renderForm(t("owner_expired")); return; }
      toast(errorText(err), { error: true });
    } finally {
      button.disabled = false;
    }
  }

  async toggleQr(button, box, s, code, u) {
    const open = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", open ? "false" : "true");
    if (open) { box.hidden = true; return; }
    clear(box).append(el("p", { class: "hint" }, t("loading")));
    box.hidden = false;
    try {
      const { blob } = await fetchBlob(ownerUrl(code, "certificate-qr.png"), s.token);
      const url = URL.createObjectURL(blob);
      this.qrUrls.push(url);
      const cert = (u.rights || []).map((r) => r.certificate_no).find(Boolean) || code;
      clear(box).append(el("figure", { class: "qr" },
        el("img", { src: url, alt: `${t("owner_qr_title")} ${cert}`, width: 200, height: 200 }),
        el("figcaption", {}, `${t("owner_qr_title")}${t("colon")}${cert}`)),
      el("button", { type: "button", class: "btn", onclick: () => printQr(url, cert) }, t("owner_print")));
    } catch (err) {
      clear(box).append(el("p", { class: "error" }, errorText(err)));
    }
  }

  logout() {
    setSession("owner", null);
    for (const u of this.qrUrls) URL.revokeObjectURL(u);
    this.qrUrls = [];
    this.renderForm();
  }
}

function field(id, label, attrs) {
  return el("div", { class: "field" }, el("label", { for: id }, label),
    el("input", { id, name: id, type: "text", ...attrs }));
}

function statusChips(st) {
  const box = el("div", { class: "chips", "aria-label": t("owner_status") });
  if (st.registration_status) {
    box.append(el("span", { class: `chip status-${st.registration_status}` },
      codeLabel("registration_status", st.registration_status)));
  }
  for (const f of STATUS_FLAGS) {
    if (st[f]) box.append(el("span", { class: "chip warn" }, fieldLabel(f)));
  }
  return box;
}

function printQr(url, cert) {
  const w = window.open("", "_blank", "noopener=no,width=420,height=520");
  if (!w) return;
  const doc = w.document;
  doc.title = t("owner_qr_title");
  const img = doc.createElement("img");
  img.src = url;
  img.style.width = "300px";
  const cap = doc.createElement("p");
  cap.textContent = cert;
  doc.body.append(img, cap);
  img.onload = () => w.print();
}
