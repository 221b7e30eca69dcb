// HTTP helpers: JSON calls with the server's error shape, bearer tokens, blob downloads and
// uploads with progress. Tokens live in memory and sessionStorage only (gone with the tab).

import { localized } from "./i18n.js";

// An error from the server. Its message is "中文 / English"; ``message`` reads the half of the
// language chosen when it is shown (the switch may change in between), ``raw`` the whole text.
export class ApiError extends Error {
  constructor(status, code, message) {
    super();
    this.status = status;
    this.code = code;
    this.raw = message || code || `HTTP ${status}`;
    Object.defineProperty(this, "message", { get: () => localized(this.raw) });
  }
}

async function errorOf(res) {
  let code = `HTTP_${res.status}`;
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    } else if (body && body.detail) {
      message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    }
  } catch { /* not JSON */ }
  return new ApiError(res.status, code, message);
}

export async function api(path, { token, method = "GET", body, signal, headers = {} } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined && !(body instanceof FormData)) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  } else {
    payload = body;
  }
  const res = await fetch(path, { method, headers: h, body: payload, signal });
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export async function fetchBlob(path, token) {
  const res = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw await errorOf(res);
  const blob = await res.blob();
  const cd = res.headers.get("content-disposition") || "";
  const m = /filename\*=UTF-8''([^;]+)|filename="?([^";]+)"?/i.exec(cd);
  const name = m ? decodeURIComponent(m[1] || m[2]) : null;
  return { blob, name };
}

export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// multipart upload with progress (fetch has no upload progress)
export function upload(path, formData, token, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError(0, "NETWORK", "network error"));
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(body);
      } else {
        const err = body && body.error;
        reject(new ApiError(xhr.status, err ? err.code : `HTTP_${xhr.status}`,
          err ? err.message : xhr.statusText));
      }
    };
    xhr.send(formData);
  });
}

// ---- sessions: staff (login) and owner (verification), one of each per tab
function load(key) {
  try {
    const s = JSON.parse(sessionStorage.getItem(key) || "null");
    if (s && s.expiresAt > Date.now()) return s;
  } catch { /* ignore */ }
  return null;
}

function store(key, value) {
  try {
    if (value) sessionStorage.setItem(key, JSON.stringify(value));
    else sessionStorage.removeItem(key);
  } catch { /* storage disabled: memory only */ }
}

const sessions = { staff: load("cadastre.staff"), owner: load("cadastre.owner") };

export function session(kind) {
  const s = sessions[kind];
  if (s && s.expiresAt <= Date.now()) {
    sessions[kind] = null;
    store(`cadastre.${kind}`, null);
    return null;
  }
  return s;
}

export function setSession(kind, token, expiresIn, extra = {}) {
  const s = token ? { token, expiresAt: Date.now() + (expiresIn || 3600) * 1000, ...extra } : null;
  sessions[kind] = s;
  store(`cadastre.${kind}`, s);
  return s;
}

// change what a session carries besides its token (e.g. an interested party's query purpose)
export function updateSession(kind, extra) {
  const s = session(kind);
  if (!s) return null;
  const next = { ...s, ...extra };
  sessions[kind] = next;
  store(`cadastre.${kind}`, next);
  return next;
}
