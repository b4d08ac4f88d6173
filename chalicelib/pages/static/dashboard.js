// The dashboard's shared code: the JSON API client (the session cookie, X-Requested-With on every
// change), DOM helpers that never parse HTML (every value is set as text: nothing user-supplied can
// become markup), status badges that say their status in words, a confirmation dialog, polling and
// form handling. Each page's script (page-<name>.js) imports what it needs from here.

export const ctx = document.body.dataset;
// Where the app is served (``/api`` on API Gateway's own address, else empty): every link and call
// the scripts make starts with it; paths in ``?next=`` do not.
const base = ctx.base || "";
export const href = (path) => (path.startsWith("/") && !path.startsWith("//") ? base + path : path);
const ownPath = (path) => (base && (path === base || path.startsWith(`${base}/`)) ? path.slice(base.length) || "/" : path);

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the API answered ${status}`);
    this.status = status;
    this.code = error.code || "error";
    this.details = error.details || {};
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-Requested-With"] = "dashboard"; // the API's CSRF rule for sessions
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(href(path), init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401 && ctx.page !== "login") {
    location.assign(href(`/login?next=${encodeURIComponent(ownPath(location.pathname) + location.search)}`));
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const enc = encodeURIComponent;
export const nsPath = (rest = "") => `/v1/namespaces/${enc(ctx.ns)}${rest}`;
export const svcPath = (rest = "", svc = ctx.svc) => nsPath(`/services/${enc(svc)}${rest}`);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "href") node.setAttribute(key, href(String(value)));
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function replace(target, ...children) {
  const node = typeof target === "string" ? $(target) : target;
  if (!node) return;
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  node.removeAttribute("aria-busy");
}

const statusRegion = () => $("#status");

export function say(message, kind = "ok") {
  const region = statusRegion();
  if (!region) return;
  region.className = `status ${kind}`;
  region.textContent = message;
}

export function sayError(error) {
  say(describe(error), "error");
}

export function describe(error) {
  if (error instanceof ApiError) {
    const fields = (error.details.fields || []).map((f) => `${f.field}: ${f.message}`);
    return [error.message, ...fields].join(" — ");
  }
  if (error instanceof TypeError) return `Could not reach the API (${error.message}). Try again.`;
  return error && error.message ? error.message : String(error);
}

// A status in words with a symbol, never colour alone.
const KINDS = {
  ok: ["active", "running", "succeeded", "ok", "linked", "enabled", "sent", "paid", "healthy"],
  bad: ["failed", "error", "suspended", "disabled", "crashed", "refused", "uncollectible", "past_due", "unavailable"],
  warn: ["rolled_back", "superseded", "stopped", "paused", "deleting", "stopping", "degraded"],
  run: ["queued", "provisioning", "starting", "building", "deploying", "started", "waiting", "pending", "in_progress", "gathered", "sending"],
};
const SYMBOLS = { ok: "\u2713", bad: "\u2715", warn: "\u21BA", run: "\u2026", idle: "\u2022" };

export function badge(status) {
  const text = String(status || "unknown");
  const kind = Object.keys(KINDS).find((k) => KINDS[k].includes(text)) || "idle";
  return el("span", { class: `badge badge-${kind}` }, el("span", { "aria-hidden": "true" }, SYMBOLS[kind]), text.replace(/_/g, " "));
}

export function when(iso) {
  if (!iso) return el("span", { class: "muted" }, "—");
  const date = new Date(iso);
  const text = isNaN(date) ? iso : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  return el("time", { datetime: iso, title: iso }, text);
}

export const short = (sha) => (sha ? String(sha).slice(0, 10) : "—");

export function dollars(cents, currency = "usd") {
  return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(cents / 100);
}

// A quantity as people read it: at most two decimals, two significant digits below 0.01 (the API
// keeps the exact figure), no grouping.
export function num(quantity, decimals = 2) {
  const x = Number(quantity);
  return String(x !== 0 && Math.abs(x) < 0.01 ? +x.toPrecision(2) : +x.toFixed(decimals));
}

// A quantity with its unit, plural when it is not one: "6 requests", "1.69 hours", "1 seat".
export function amount(quantity, unit) {
  const n = num(quantity);
  return unit ? `${n} ${unit}${n === "1" || unit.endsWith("s") ? "" : "s"}` : n;
}

export function table(caption, headers, rows, { numeric = [] } = {}) {
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      caption ? el("caption", {}, caption) : null,
      el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, h)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c, i) => el("td", { class: numeric.includes(i) ? "num" : null }, c))))),
    ),
  );
}

export function facts(pairs) {
  return pairs.filter(Boolean).flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]);
}

export function empty(title, ...body) {
  return el("div", { class: "empty" }, el("h2", {}, title), ...body);
}

// A confirmation in a modal <dialog>: focus moves into it, Escape cancels, focus comes back after.
export function confirmAction(title, text, confirmLabel = "Confirm") {
  const dialog = $("#confirm");
  if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(window.confirm(`${title}\n\n${text}`));
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = confirmLabel;
  const opener = document.activeElement;
  dialog.returnValue = "cancel";
  dialog.showModal();
  $("#confirm-cancel").focus();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (opener && opener.focus) opener.focus();
        resolve(dialog.returnValue === "ok");
      },
      { once: true },
    );
  });
}

// Calls fn now and again while it answers true (after `seconds`) or a number (after that many seconds).
export function poll(fn, seconds = 2) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    let again = false;
    try {
      again = await fn();
    } catch (error) {
      sayError(error);
    }
    if (again && !stopped) timer = setTimeout(tick, (typeof again === "number" ? again : seconds) * 1000);
  };
  tick();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

// A form's values as the API's JSON: checkboxes are booleans (a group of checkboxes of one name a
// list of their values), data-type="int" a whole number, empty text fields left out.
export function formValues(form) {
  const out = {};
  const groups = {};
  for (const input of form.elements) {
    if (!input.name || input.disabled) continue;
    if (input.type === "checkbox") {
      const many = form.querySelectorAll(`input[type=checkbox][name="${input.name}"]`).length > 1;
      if (many) {
        groups[input.name] = groups[input.name] || [];
        if (input.checked) groups[input.name].push(input.value);
      } else out[input.name] = input.checked;
    } else if (input.value !== "") {
      out[input.name] = input.dataset.type === "int" ? parseInt(input.value, 10) : input.value;
    }
  }
  return { ...out, ...groups };
}

export function clearFieldErrors(form) {
  for (const node of form.querySelectorAll(".error[data-for]")) node.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    const ids = (input.getAttribute("aria-describedby") || "").split(" ").filter((id) => id && !id.endsWith("-error"));
    if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
    else input.removeAttribute("aria-describedby");
  }
}

export function showFieldErrors(form, error, names = {}) {
  if (!(error instanceof ApiError)) return;
  let first = null;
  for (const f of error.details.fields || []) {
    const name = names[f.field] || String(f.field).split(".")[0];
    const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (!input) continue;
    const id = `${input.id || name}-error`;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", `${input.getAttribute("aria-describedby") || ""} ${id}`.trim());
    const holder = input.closest(".field") || input.parentElement;
    holder.append(el("span", { class: "error", id, "data-for": name }, f.message));
    first = first || input;
  }
  if (first) first.focus();
}

// Submits a form through `send(values)`; the button is disabled meanwhile; errors are shown beside
// their fields and in the status region.
export function onSubmit(form, send) {
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit], button:not([type])");
    clearFieldErrors(form);
    if (button) button.disabled = true;
    try {
      await send(formValues(form), form);
    } catch (error) {
      sayError(error);
      showFieldErrors(form, error);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

// The header: the namespace switcher and logout, on every page but the login page.
async function header() {
  const logout = $("#logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      logout.disabled = true;
      try {
        await api("POST", "/v1/auth/logout");
      } finally {
        location.assign(href("/login"));
      }
    });
  }
  const list = $("#switcher-list");
  if (!list) return;
  try {
    const me = await api("GET", "/v1/me");
    const items = me.namespaces.map((n) =>
      el("li", {}, el("a", { href: `/namespaces/${enc(n.id)}`, "aria-current": n.id === ctx.ns ? "page" : null }, `${n.id} (${n.role})`)),
    );
    items.push(el("li", {}, el("a", { href: "/onboard" }, "+ Onboard a team")));
    replace(list, items);
  } catch (error) {
    replace(list, el("li", { class: "hint" }, describe(error)));
  }
}

if (ctx.page && ctx.page !== "login") header();
