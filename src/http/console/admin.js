// The admin's console: new customers, their quotas, new tokens (shown once).

import { call, ApiError } from "./api.js";
import { $, el, cell, bytes, parseSize, parseCount, say, copy } from "./ui.js";

// The API lists no customers: the console remembers the ids it created or looked up (this tab).
const KNOWN_KEY = "mediastore.customers";

function known() {
  try {
    return JSON.parse(sessionStorage.getItem(KNOWN_KEY) || "[]");
  } catch {
    return [];
  }
}

function remember(id) {
  const ids = known().filter((k) => k !== id);
  ids.unshift(id);
  sessionStorage.setItem(KNOWN_KEY, JSON.stringify(ids));
}

function message(e) {
  return e instanceof ApiError ? e.describe() : String(e.message || e);
}

/** Shows a token once; it is not kept anywhere. */
function showToken(customer, token) {
  $("token-for").textContent = `${customer.name} (${customer.customer_id})`;
  $("token-value").value = token;
  const box = $("token-once");
  box.hidden = false;
  box.focus();
}

function hideToken() {
  $("token-value").value = "";
  $("token-once").hidden = true;
}

function row(c) {
  const button = (text, aria, onclick) =>
    el("button", { type: "button", text, "aria-label": `${aria} ${c.name}`, onclick });
  return el(
    "tr",
    { "data-id": c.customer_id },
    cell("Name", c.name),
    cell("Customer id", el("code", { text: c.customer_id })),
    cell("Used / quota", `${bytes(c.total_file_size)} / ${bytes(c.quota_bytes)} · ${c.total_file_count} files`),
    cell("Containers", `${c.container_count} of ${c.max_containers}`),
    cell(
      "Actions",
      el(
        "div",
        { class: "actions" },
        button("Quotas…", "Change the quotas of", () => editQuotas(c)),
        button("New token", "Make a new token for", () => newToken(c)),
      ),
    ),
  );
}

/** Loads and draws the customers this tab knows. */
export async function loadCustomers() {
  const rows = [];
  for (const id of known()) {
    try {
      rows.push(row(await call("GET", `/v1/customers/${encodeURIComponent(id)}`)));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
  }
  $("customers-table").tBodies[0].replaceChildren(...rows);
}

async function newToken(c) {
  try {
    const r = await call("POST", `/v1/customers/${encodeURIComponent(c.customer_id)}/tokens`);
    showToken(c, r.token);
  } catch (e) {
    say(message(e), true);
  }
}

function editQuotas(c) {
  const d = $("quota-dialog");
  d.dataset.id = c.customer_id;
  $("quota-title").textContent = `Quotas of ${c.name}`;
  $("quota-bytes").value = bytes(c.quota_bytes).replace(" bytes", "");
  // The shown size is rounded: it is sent only when changed.
  d.dataset.shown = $("quota-bytes").value;
  $("quota-containers").value = String(c.max_containers);
  $("quota-error").textContent = "";
  d.showModal();
  $("quota-bytes").focus();
}

async function saveQuotas(e) {
  e.preventDefault();
  const d = $("quota-dialog");
  try {
    const body = {};
    const text = $("quota-bytes").value;
    const q = text.trim() === d.dataset.shown ? null : parseSize(text, "Quota");
    const m = parseCount($("quota-containers").value, "Most containers");
    if (q !== null) body.quota_bytes = q;
    if (m !== null) body.max_containers = m;
    const c = await call("PATCH", `/v1/customers/${encodeURIComponent(d.dataset.id)}`, body);
    d.close();
    say(`Quotas of ${c.name} saved.`);
    await loadCustomers();
  } catch (err) {
    $("quota-error").textContent = message(err);
  }
}

async function create(e) {
  e.preventDefault();
  const form = e.target;
  $("customer-error").textContent = "";
  try {
    const body = { name: form.elements.name.value.trim() };
    const q = parseSize(form.elements.quota_bytes.value, "Quota");
    const m = parseCount(form.elements.max_containers.value, "Most containers");
    if (q !== null) body.quota_bytes = q;
    if (m !== null) body.max_containers = m;
    const r = await call("POST", "/v1/customers", body);
    form.reset();
    remember(r.customer.customer_id);
    showToken(r.customer, r.token);
    say(`Customer ${r.customer.name} created.`);
    await loadCustomers();
  } catch (err) {
    $("customer-error").textContent = message(err);
  }
}

async function lookUp(e) {
  e.preventDefault();
  const id = $("lookup-id").value.trim();
  $("lookup-error").textContent = "";
  if (!id) return;
  try {
    await call("GET", `/v1/customers/${encodeURIComponent(id)}`);
    remember(id);
    $("lookup-id").value = "";
    await loadCustomers();
  } catch (err) {
    $("lookup-error").textContent = message(err);
  }
}

/** Wires the admin panels once. */
export function initAdmin() {
  $("customer-form").addEventListener("submit", create);
  $("lookup-form").addEventListener("submit", lookUp);
  $("quota-form").addEventListener("submit", saveQuotas);
  $("quota-cancel").addEventListener("click", () => $("quota-dialog").close());
  $("token-copy").addEventListener("click", () => copy($("token-value").value, "token"));
  $("token-done").addEventListener("click", hideToken);
}
