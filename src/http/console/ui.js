// Small DOM helpers shared by the console's views.

export const $ = (id) => document.getElementById(id);

/** An element with attributes (`text` sets its text, `on*` adds listeners) and children. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null) e.append(c);
  }
  return e;
}

/** A table cell with the column's label, shown before the value on narrow screens. */
export function cell(label, ...children) {
  return el("td", { "data-label": label }, ...children);
}

/** Tells the user something in the status line (read out by screen readers). */
export function say(text, isError = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", isError);
}

const UNITS = ["bytes", "KiB", "MiB", "GiB", "TiB"];

/** 1536 → "1.5 KiB". */
export function bytes(n) {
  if (n === null || n === undefined) return "—";
  let v = Number(n);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u += 1;
  }
  const digits = u === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${UNITS[u]}`;
}

const FACTORS = {
  "": 1, b: 1, byte: 1, bytes: 1,
  k: 1024, kib: 1024, kb: 1000,
  m: 1024 ** 2, mib: 1024 ** 2, mb: 1000 ** 2,
  g: 1024 ** 3, gib: 1024 ** 3, gb: 1000 ** 3,
  t: 1024 ** 4, tib: 1024 ** 4, tb: 1000 ** 4,
};

/** "10 GiB" / "500MB" / "1234" → bytes; "" → null; anything else throws naming `field`. */
export function parseSize(text, field) {
  const t = String(text || "").trim();
  if (!t) return null;
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(t);
  const f = m && FACTORS[m[2].toLowerCase()];
  if (!f) throw new Error(`${field}: write a size such as 500 MiB, 10 GiB or a number of bytes`);
  return Math.round(Number(m[1]) * f);
}

/** "12" → 12; "" → null; anything else throws naming `field`. */
export function parseCount(text, field) {
  const t = String(text || "").trim();
  if (!t) return null;
  if (!/^\d+$/.test(t)) throw new Error(`${field}: write a whole number`);
  return Number(t);
}

/** 83450 ms → "1:23". */
export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** An RFC 3339 time as the reader's local date and time. */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** Asks for confirmation in a modal dialog; resolves true when confirmed. */
export function confirmDialog(text, okLabel = "Delete") {
  const d = $("confirm");
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  d.returnValue = "cancel";
  d.showModal();
  $("confirm-cancel").focus();
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
  });
}

/** Copies `text` to the clipboard (a selection-copy where the Clipboard API is unavailable). */
export async function copy(text, what) {
  try {
    if (!navigator.clipboard) throw new Error("no clipboard API");
    await navigator.clipboard.writeText(text);
  } catch {
    const t = el("textarea", { readonly: true, class: "offscreen" });
    t.value = text;
    document.body.append(t);
    t.select();
    const ok = document.execCommand("copy");
    t.remove();
    if (!ok) {
      say(`Could not copy the ${what}: ${text}`, true);
      return;
    }
  }
  say(`Copied the ${what}.`);
}
