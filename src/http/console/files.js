// Files: the list with filters and pages, and each file's actions (play, publish, copy its
// links, delete).

import { call, query, ApiError } from "./api.js";
import { $, el, cell, bytes, duration, when, say, copy, confirmDialog } from "./ui.js";
import { play } from "./player.js";

const FILTERS = ["container_sid", "name", "tag", "reference_type", "reference_id", "owner_id"];

const state = { page: 1, limit: 20, filters: {}, total: 0 };
/** Called after a change to the stored files (usage and containers follow). */
let onChange = async () => {};

function fail(e) {
  say(e instanceof ApiError ? e.describe() : String(e.message || e), true);
}

/** Loads and draws the current page of files. */
export async function loadFiles() {
  const r = await call(
    "GET",
    `/v1/files${query({ ...state.filters, page: state.page, limit: state.limit })}`,
  );
  const pages = Math.max(1, Math.ceil(r.pagination.total_records / state.limit));
  if (state.page > pages && r.pagination.total_records > 0) {
    // The page emptied (deletes); show the last one there is.
    state.page = pages;
    return loadFiles();
  }
  state.total = r.pagination.total_records;
  $("files-table").tBodies[0].replaceChildren(...r.items.map(row));
  $("files-empty").hidden = r.items.length > 0;
  const count = state.total === 1 ? "1 file" : `${state.total} files`;
  $("page-info").textContent = `Page ${state.page} of ${pages} · ${count}`;
  $("page-prev").disabled = state.page <= 1;
  $("page-next").disabled = state.page >= pages;
  return r;
}

function row(f) {
  const name = f.name || f.file_sid;
  const button = (text, aria, onclick, extra = {}) =>
    el("button", { type: "button", text, "aria-label": `${aria} ${name}`, onclick, ...extra });
  const published = f.publish !== "no";
  const actions = [
    button("Play", "Play", () => play(f), { disabled: !f.media }),
    published
      ? button("Unpublish", "Unpublish", () => setPublish(f, "no"))
      : button("Publish", "Publish", () => setPublish(f, "file_sid")),
    published
      ? button("Copy URI", "Copy the publish URI of", () => copy(f.publish_uri, "publish URI"))
      : null,
    button("Copy signed link", "Copy the signed link of", () => copy(f.uri_download, "signed link")),
    button("Delete", "Delete", () => remove(f), { class: "danger" }),
  ];
  const format = f.media
    ? `${f.content_format} · ${f.media.sample_rate / 1000} kHz · ${f.media.channels} ch`
    : `${f.content_format} (${f.content_classification})`;
  return el(
    "tr",
    { "data-sid": f.file_sid },
    cell("Name", el("span", { class: "name", text: name, title: f.file_sid })),
    cell("Size", bytes(f.size)),
    cell("Format", format),
    cell("Duration", f.media ? duration(f.media.duration_ms) : "—"),
    cell(
      "Published",
      published ? el("a", { href: f.publish_uri, text: "yes", target: "_blank", rel: "noopener" }) : "no",
    ),
    cell("Created", when(f.date_created)),
    cell("Actions", el("div", { class: "actions" }, ...actions)),
  );
}

async function setPublish(f, publish) {
  try {
    const g = await call("PATCH", `/v1/files/${encodeURIComponent(f.file_sid)}`, { publish });
    say(publish === "no" ? `${g.name} is no longer published.` : `${g.name} is published at ${g.publish_uri}`);
    await loadFiles();
  } catch (e) {
    fail(e);
  }
}

async function remove(f) {
  const name = f.name || f.file_sid;
  if (!(await confirmDialog(`Delete ${name} (${bytes(f.size)})? This cannot be undone.`))) {
    say("Nothing deleted.");
    return;
  }
  try {
    await call("DELETE", `/v1/files/${encodeURIComponent(f.file_sid)}`);
    say(`Deleted ${name}.`);
    await loadFiles();
    await onChange();
  } catch (e) {
    fail(e);
  }
}

/** Wires the files panel once; `changed` runs after a delete. */
export function initFiles(changed) {
  onChange = changed;
  const form = $("filters");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    state.filters = Object.fromEntries(FILTERS.map((k) => [k, form.elements[k].value.trim()]));
    state.limit = Number(form.elements.limit.value);
    state.page = 1;
    loadFiles().catch(fail);
  });
  form.addEventListener("reset", () => {
    state.filters = {};
    state.limit = 20;
    state.page = 1;
    // After the form has reset its fields.
    setTimeout(() => loadFiles().catch(fail));
  });
  $("page-prev").addEventListener("click", () => {
    state.page = Math.max(1, state.page - 1);
    loadFiles().catch(fail);
  });
  $("page-next").addEventListener("click", () => {
    state.page += 1;
    loadFiles().catch(fail);
  });
}
