// Containers and their policies: list, create, view, delete (/v1/containers).

import { call, ApiError } from "./api.js";
import { $, el, cell, bytes, parseSize, parseCount, say, confirmDialog, when } from "./ui.js";

const CLASSES = ["archive", "document", "executable", "media", "unknown"];

/** The containers as last loaded. */
let containers = [];
/** Called after the list changes (the upload and filter selects follow it). */
let onChange = () => {};

/** A short name for a container: the start of its sid (the whole sid is its title). */
export function label(c) {
  return c.container_sid.slice(0, 8);
}

/** Fills a select with "" (named `none`) and the containers, keeping its choice if still there. */
export function fillSelect(select, none, list) {
  const keep = select.value;
  select.replaceChildren(
    el("option", { value: "", text: none }),
    ...list.map((c) => el("option", { value: c.container_sid, text: label(c) })),
  );
  select.value = list.some((c) => c.container_sid === keep) ? keep : "";
}

function policy(c) {
  const parts = [];
  if (c.allowed_classifications) parts.push(`only ${c.allowed_classifications.join(", ") || "none"}`);
  if (c.blocked_classifications && c.blocked_classifications.length) {
    parts.push(`not ${c.blocked_classifications.join(", ")}`);
  }
  return parts.join("; ") || "any";
}

function threshold(c) {
  if (c.threshold_action === "no_action") return "none";
  const at = [
    c.threshold_bytes !== null ? bytes(c.threshold_bytes) : null,
    c.threshold_files !== null ? `${c.threshold_files} files` : null,
  ].filter(Boolean);
  return `${c.threshold_action} at ${at.join(" or ")}`;
}

/** Loads and draws the containers. */
export async function loadContainers() {
  const r = await call("GET", "/v1/containers?limit=100");
  containers = r.items;
  const body = $("containers-table").tBodies[0];
  body.replaceChildren(
    ...containers.map((c) =>
      el(
        "tr",
        {},
        cell("Container", el("code", { text: label(c), title: c.container_sid })),
        cell("Files", c.quota_files === null ? `${c.total_files}` : `${c.total_files} / ${c.quota_files}`),
        cell("Used / quota", `${bytes(c.total_bytes)} / ${bytes(c.quota_bytes)}`),
        cell("Max file size", c.max_file_size === null ? "server maximum" : bytes(c.max_file_size)),
        cell("Classifications", policy(c)),
        cell("Threshold", threshold(c)),
        cell(
          "Actions",
          el("button", {
            type: "button",
            text: "View",
            "aria-label": `View container ${label(c)}`,
            onclick: () => view(c.container_sid),
          }),
        ),
      ),
    ),
  );
  onChange(containers);
  return containers;
}

const FIELD_NAMES = {
  quota_bytes: "size",
  max_file_size: "size",
  threshold_bytes: "size",
  threshold_bytes_target: "size",
  total_bytes: "size",
  threshold_total_bytes: "size",
  date_created: "time",
  date_modified: "time",
};

async function view(sid) {
  const c = await call("GET", `/v1/containers/${encodeURIComponent(sid)}`);
  $("container-view-title").textContent = `Container ${c.container_sid}`;
  $("container-fields").replaceChildren(
    ...Object.entries(c).flatMap(([k, v]) => {
      let shown;
      if (v === null) shown = "—";
      else if (FIELD_NAMES[k] === "size") shown = `${bytes(v)} (${v})`;
      else if (FIELD_NAMES[k] === "time") shown = when(v);
      else if (Array.isArray(v)) shown = v.join(", ") || "(none)";
      else if (typeof v === "object") shown = JSON.stringify(v);
      else shown = String(v);
      return [el("dt", { text: k }), el("dd", { text: shown })];
    }),
  );
  const box = $("container-view");
  box.dataset.sid = c.container_sid;
  box.hidden = false;
  box.focus();
}

async function remove() {
  const sid = $("container-view").dataset.sid;
  if (!(await confirmDialog(`Delete container ${sid}? Only an empty container can be deleted.`))) {
    return;
  }
  try {
    await call("DELETE", `/v1/containers/${encodeURIComponent(sid)}`);
    $("container-view").hidden = true;
    say("Container deleted.");
    await loadContainers();
  } catch (e) {
    say(e instanceof ApiError ? e.describe() : String(e.message), true);
  }
}

function checked(form, name) {
  return [...form.querySelectorAll(`[data-list="${name}"] input:checked`)].map((i) => i.value);
}

/** The form's body for POST /v1/containers (only what was filled in). */
function formBody(form) {
  const v = (n) => form.elements[n].value;
  const body = {};
  const put = (k, x) => {
    if (x !== null && x !== "") body[k] = x;
  };
  put("quota_bytes", parseSize(v("quota_bytes"), "Quota"));
  put("quota_files", parseCount(v("quota_files"), "Most files"));
  put("max_file_size", parseSize(v("max_file_size"), "Max file size"));
  const allowed = checked(form, "allowed_classifications");
  const blocked = checked(form, "blocked_classifications");
  if (allowed.length) body.allowed_classifications = allowed;
  if (blocked.length) body.blocked_classifications = blocked;
  if (v("threshold_action") !== "no_action") body.threshold_action = v("threshold_action");
  put("threshold_bytes", parseSize(v("threshold_bytes"), "Threshold size"));
  put("threshold_files", parseCount(v("threshold_files"), "Threshold files"));
  put("threshold_grace_period", parseCount(v("threshold_grace_period"), "Grace period"));
  return body;
}

async function create(e) {
  e.preventDefault();
  const form = e.target;
  const error = $("container-error");
  error.textContent = "";
  try {
    const c = await call("POST", "/v1/containers", formBody(form));
    form.reset();
    say(`Container ${c.container_sid} created.`);
    await loadContainers();
  } catch (err) {
    error.textContent = err instanceof ApiError ? err.describe() : err.message;
  }
}

/** Wires the container panel once; `changed` hears every reload of the list. */
export function initContainers(changed) {
  onChange = changed;
  for (const box of document.querySelectorAll("#container-form .checks")) {
    const list = box.dataset.list;
    box.append(
      ...CLASSES.map((c) =>
        el("label", { class: "check" }, el("input", { type: "checkbox", value: c, name: `${list}.${c}` }), ` ${c}`),
      ),
    );
  }
  $("container-form").addEventListener("submit", create);
  $("container-close").addEventListener("click", () => {
    $("container-view").hidden = true;
  });
  $("container-delete").addEventListener("click", remove);
}
