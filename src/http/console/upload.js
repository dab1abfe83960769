// Uploads: files dropped or picked, each with its own progress bar and outcome.

import { upload, ApiError } from "./api.js";
import { $, el, bytes } from "./ui.js";

/** Called after each upload ends (usage, containers and files follow). */
let onDone = async () => {};

/** Sends one file, drawing its progress and its outcome in the uploads list. */
async function send(file) {
  const bar = el("progress", { max: String(file.size || 1), value: "0", "aria-label": `Upload of ${file.name}` });
  const status = el("span", { class: "outcome", text: "waiting…" });
  const item = el(
    "li",
    { class: "upload", "data-name": file.name },
    el("span", { class: "name", text: `${file.name} (${bytes(file.size)})` }),
    bar,
    status,
  );
  $("uploads").prepend(item);
  const container = $("upload-container").value;
  try {
    const f = await upload(file, { name: file.name, container_sid: container }, (sent, total) => {
      bar.max = total || 1;
      bar.value = sent;
      status.textContent = `${Math.floor((sent / (total || 1)) * 100)}%`;
    });
    bar.max = 1;
    bar.value = 1;
    item.classList.add("done");
    status.textContent = `uploaded: ${f.content_format}, ${f.content_classification}`;
  } catch (e) {
    item.classList.add("failed");
    bar.value = 0;
    status.textContent = e instanceof ApiError ? e.describe() : String(e.message || e);
    status.setAttribute("role", "alert");
  }
  await onDone();
}

/** Sends several files at once. */
function sendAll(files) {
  return Promise.all([...files].map(send));
}

/** Wires the drop zone and the file picker once. */
export function initUpload(done) {
  onDone = done;
  const zone = $("dropzone");
  const input = $("upload-input");
  for (const ev of ["dragenter", "dragover"]) {
    zone.addEventListener(ev, (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const ev of ["dragleave", "drop"]) {
    zone.addEventListener(ev, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) sendAll(e.dataTransfer.files);
  });
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    sendAll(files);
  });
  // A file dropped outside the zone would open in the tab and leave the console.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}
