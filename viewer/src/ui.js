// Small DOM helpers shared by the panels.
import { getLang, t } from "./i18n.js";

// el("button", {class: "btn", onclick: fn, "aria-label": "x"}, "text", child, …)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "text") node.textContent = v;
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

let toastTimer = null;
export function toast(message, { error = false, ms = 4000 } = {}) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.classList.toggle("error", error);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, ms);
}

export function fmtNumber(v, digits = 2) {
  if (v === null || v === undefined || v === "") return "";
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  return n.toLocaleString(getLang() === "zh" ? "zh-CN" : "en-GB",
    { maximumFractionDigits: digits });
}

export function fmtDate(v) {
  if (!v) return "";
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleString(getLang() === "zh" ? "zh-CN" : "en-GB",
    { dateStyle: "medium", timeStyle: "short" });
}

export function fmtLength(m) {
  return m >= 1000 ? `${fmtNumber(m / 1000, 3)} km` : `${fmtNumber(m, 2)} m`;
}

export function fmtArea(m2) {
  if (m2 >= 1e6) return `${fmtNumber(m2 / 1e6, 3)} km²`;
  if (m2 >= 1e4) return `${fmtNumber(m2, 0)} m² (${fmtNumber(m2 / 1e4, 3)} ${getLang() === "zh" ? "公顷" : "ha"})`;
  return `${fmtNumber(m2, 2)} m²`;
}

export function errorText(err) {
  return t("error", { msg: err && err.message ? err.message : String(err) });
}

// a <dl> of label/value pairs
export function definitionList(rows) {
  const dl = el("dl", { class: "attrs" });
  for (const [label, value] of rows) {
    dl.append(el("dt", {}, label), el("dd", {}, value));
  }
  return dl;
}

// a simple tab strip with roving focus (arrow keys), ARIA tabs pattern
export function tabs(container, items, onSelect) {
  const list = el("div", { role: "tablist", class: "tabs" });
  const buttons = items.map(([id, label], i) => el("button", {
    type: "button", role: "tab", id: `tab-${id}`, "aria-selected": i === 0 ? "true" : "false",
    tabindex: i === 0 ? "0" : "-1", "aria-controls": `tabpanel-${id}`,
    onclick: () => choose(i),
  }, label));
  list.append(...buttons);
  list.addEventListener("keydown", (e) => {
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      e.preventDefault();
      const j = (i + (e.key === "ArrowRight" ? 1 : buttons.length - 1)) % buttons.length;
      buttons[j].focus();
      choose(j);
    }
  });
  const panel = el("div", { role: "tabpanel", class: "tabpanel", tabindex: "0" });
  container.append(list, panel);
  function choose(i) {
    buttons.forEach((b, j) => {
      b.setAttribute("aria-selected", j === i ? "true" : "false");
      b.tabIndex = j === i ? 0 : -1;
    });
    panel.id = `tabpanel-${items[i][0]}`;
    panel.setAttribute("aria-labelledby", buttons[i].id);
    clear(panel);
    onSelect(items[i][0], panel);
  }
  choose(0);
  return { choose };
}
