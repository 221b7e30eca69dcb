// Search box with suggestions (ARIA combobox + listbox): GET /api/v1/search?q=&limit=.
import { api } from "./api.js";
import { t } from "./i18n.js";
import { clear, el } from "./ui.js";

const KIND_ICON = { unit: "户", building: "幢", parcel: "宗", compound: "区" };

export function initSearch(input, list, onChoose) {
  let items = [];
  let active = -1;
  let timer = null;
  let controller = null;
  let lastQuery = "";
  let shownQuery = null;     // the query whose results the list shows

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function message(text) {
    clear(list);
    list.append(el("li", { class: "search-msg", role: "option", "aria-disabled": "true" }, text));
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function render() {
    clear(list);
    if (!items.length) { message(t("search_none")); return; }
    items.forEach((it, i) => {
      const li = el("li", {
        id: `search-opt-${i}`, role: "option", class: "search-item",
        "aria-selected": i === active ? "true" : "false", dataset: { kind: it.kind, code: it.code || "" },
      },
      el("span", { class: `kind kind-${it.kind}`, "aria-hidden": "true" }, KIND_ICON[it.kind] || "•"),
      el("span", { class: "search-text" },
        el("span", { class: "search-label" }, it.label || it.code),
        el("span", { class: "search-sub" },
          `${t(`kind_${it.kind}`)}${it.seat && it.seat !== it.label ? ` · ${it.seat}` : ""}`)));
      li.addEventListener("mousedown", (e) => e.preventDefault());   // keep focus in the input
      li.addEventListener("click", () => choose(i));
      list.append(li);
    });
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    if (active >= 0) input.setAttribute("aria-activedescendant", `search-opt-${active}`);
    else input.removeAttribute("aria-activedescendant");
  }

  function choose(i) {
    const it = items[i];
    if (!it) return;
    input.value = it.label || it.code;
    close();
    onChoose(it);
  }

  async function run(q) {
    if (controller) controller.abort();
    controller = new AbortController();
    try {
      const res = await api(`api/v1/search?q=${encodeURIComponent(q)}&limit=10`,
        { signal: controller.signal });
      if (q !== lastQuery) return;
      shownQuery = q;
      items = res.items || [];
      active = items.length ? 0 : -1;
      render();
    } catch (err) {
      if (err.name === "AbortError") return;
      if (err.code === "QUERY_TOO_SHORT") message(t("search_short"));
      else message(t("search_failed", { msg: err.message }));
    }
  }

  input.addEventListener("input", () => {
    const q = input.value.trim();
    lastQuery = q;
    clearTimeout(timer);
    if (q.length < 2) {
      items = [];
      shownQuery = null;
      if (q.length === 0) close(); else message(t("search_short"));
      return;
    }
    timer = setTimeout(() => run(q), 180);
  });

  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (list.hidden && items.length) { render(); return; }
      if (!items.length) return;
      e.preventDefault();
      active = (active + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      render();
      document.getElementById(`search-opt-${active}`)?.scrollIntoView({ block: "nearest" });
    } else if (e.key === "Enter") {
      e.preventDefault();
      const q = input.value.trim();
      if (shownQuery === q && items.length && !list.hidden) choose(active < 0 ? 0 : active);
      else if (q.length >= 2) {
        // results for what is typed now are not in yet: fetch them and take the first
        clearTimeout(timer);
        lastQuery = q;
        run(q).then(() => { if (shownQuery === q && items.length) choose(0); });
      }
    } else if (e.key === "Escape") {
      if (!list.hidden) { e.preventDefault(); close(); } else input.value = "";
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 150));
  input.addEventListener("focus", () => { if (items.length && input.value.trim().length >= 2) render(); });
  return { close };
}
