// Staff sign-in (POST /api/v1/auth/login) and the workspace for the signed-in role.
import { api, session, setSession } from "./api.js";
import { t } from "./i18n.js";
import { InterestedWorkspace } from "./interested.js";
import { RegistrarWorkspace } from "./registrar.js";
import { SurveyorWorkspace } from "./surveyor.js";
import { clear, el, errorText } from "./ui.js";

export class StaffPanel {
  constructor(panel, cmap) {
    this.panel = panel;
    this.cmap = cmap;
    this.workspace = null;
  }

  render() {
    const s = session("staff");
    if (!s) { this.renderLogin(); return; }
    const p = clear(this.panel);
    const roleName = ["registrar", "surveyor", "interested", "department"].includes(s.role)
      ? t(`role_${s.role}`) : s.role;
    p.append(el("div", { class: "row-between" },
      el("p", { class: "who", id: "staff-who" }, t("staff_hello", { name: s.name || "", role: roleName })),
      el("button", { type: "button", class: "btn", id: "staff-logout", onclick: () => this.logout() },
        t("staff_logout"))));
    const box = el("div", { class: "workspace" });
    p.append(box);
    if (this.workspace) this.workspace.dispose();
    if (s.role === "registrar") this.workspace = new RegistrarWorkspace(box, this.cmap, s);
    else if (s.role === "surveyor") this.workspace = new SurveyorWorkspace(box, this.cmap, s);
    else if (s.role === "interested" || s.role === "department") {
      this.workspace = new InterestedWorkspace(box, this.cmap, s);
    }
    else { this.workspace = null; box.append(el("p", { class: "hint" }, t("role_other"))); }
    this.workspace?.render();
  }

  renderLogin(message) {
    const p = clear(this.panel);
    const status = el("p", { class: "form-status", role: "alert" }, message || "");
    const form = el("form", { class: "form", id: "staff-form" },
      el("div", { class: "field" }, el("label", { for: "staff-user" }, t("staff_user")),
        el("input", { id: "staff-user", name: "username", autocomplete: "username", required: true,
          maxlength: 64 })),
      el("div", { class: "field" }, el("label", { for: "staff-password" }, t("staff_password")),
        el("input", { id: "staff-password", name: "password", type: "password",
          autocomplete: "current-password", required: true, maxlength: 256 })),
      el("button", { type: "submit", class: "btn primary", id: "staff-submit" }, t("staff_login")),
      status);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const button = form.querySelector("#staff-submit");
      button.disabled = true;
      try {
        const res = await api("api/v1/auth/login", { method: "POST", body: {
          username: form.querySelector("#staff-user").value.trim(),
          password: form.querySelector("#staff-password").value } });
        setSession("staff", res.access_token, res.expires_in,
          { role: res.role, name: res.display_name || form.querySelector("#staff-user").value.trim() });
        this.render();
      } catch (err) {
        status.textContent = err.status === 401 ? t("staff_failed") : errorText(err);
        button.disabled = false;
      }
    });
    p.append(el("h3", {}, t("staff_title")), form);
  }

  logout() {
    setSession("staff", null);
    this.workspace?.dispose();
    this.workspace = null;
    this.renderLogin();
  }

  dispose() { this.workspace?.dispose(); }
}
