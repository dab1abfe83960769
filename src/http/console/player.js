// The player: an audio element and the file's waveform (`waveform=json`, BBC audiowaveform
// version 2) drawn on a canvas; a click on the waveform, or the arrow keys, seek.

import { describeError } from "./api.js";
import { $ } from "./ui.js";

/** The waveform on screen: peaks per pixel of the first series, and its length in seconds. */
let wave = null;
/** The file playing (for its duration before the audio element knows it). */
let current = null;

/** Where the file can be fetched without a token: its publish URI, else its signed link. */
function source(f) {
  return f.publish_uri || f.uri_download;
}

function withParam(url, param) {
  return `${url}${url.includes("?") ? "&" : "?"}${param}`;
}

function length() {
  const a = $("audio");
  if (Number.isFinite(a.duration) && a.duration > 0) return a.duration;
  return current && current.media ? current.media.duration_ms / 1000 : 0;
}

function draw() {
  const canvas = $("waveform");
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const h = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  if (!wave) return;
  const style = getComputedStyle(canvas);
  const played = style.getPropertyValue("--played").trim() || "#1d5fbf";
  const rest = style.getPropertyValue("--rest").trim() || "#9aa7b8";
  const total = length();
  const at = total > 0 ? ($("audio").currentTime / total) * w : 0;
  const { peaks, full } = wave;
  const n = peaks.length / 2;
  const mid = h / 2;
  for (let x = 0; x < w; x += 1) {
    const from = Math.floor((x / w) * n);
    const to = Math.max(from + 1, Math.floor(((x + 1) / w) * n));
    let lo = 0;
    let hi = 0;
    for (let i = from; i < to && i < n; i += 1) {
      lo = Math.min(lo, peaks[2 * i]);
      hi = Math.max(hi, peaks[2 * i + 1]);
    }
    g.fillStyle = x < at ? played : rest;
    const top = mid - (hi / full) * mid;
    const bottom = mid - (lo / full) * mid;
    g.fillRect(x, top, 1, Math.max(1, bottom - top));
  }
  g.fillStyle = played;
  g.fillRect(Math.min(at, w - 2), 0, 2, h);
  canvas.setAttribute("aria-valuemax", String(Math.round(total)));
  canvas.setAttribute("aria-valuenow", String(Math.round($("audio").currentTime)));
  canvas.setAttribute("aria-valuetext", `${$("audio").currentTime.toFixed(1)} of ${total.toFixed(1)} seconds`);
}

/** The first series' min/max pairs of a version-2 waveform. */
function peaksOf(json) {
  const channels = json.channels || 1;
  const out = new Float32Array(json.length * 2);
  for (let i = 0; i < json.length; i += 1) {
    out[2 * i] = json.data[i * channels * 2];
    out[2 * i + 1] = json.data[i * channels * 2 + 1];
  }
  return { peaks: out, full: 2 ** ((json.bits || 8) - 1) };
}

function seekTo(seconds) {
  const total = length();
  if (total <= 0) return;
  $("audio").currentTime = Math.min(Math.max(seconds, 0), total);
  draw();
}

/** Opens the player on a file: loads its audio and its waveform. */
export async function play(f) {
  current = f;
  wave = null;
  const panel = $("player");
  panel.hidden = false;
  $("player-name").textContent = f.name || f.file_sid;
  $("player-error").textContent = "";
  const audio = $("audio");
  const src = source(f);
  audio.src = src;
  audio.load();
  panel.scrollIntoView({ block: "nearest" });
  $("waveform").focus();
  draw();
  try {
    const r = await fetch(withParam(src, "waveform=json"), { cache: "no-store" });
    const text = await r.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // Not JSON: reported below with the status.
    }
    if (!r.ok) throw new Error(describeError(r.status, json));
    if (current !== f) return;
    wave = peaksOf(json);
    panel.dataset.waveform = "ready";
    draw();
  } catch (e) {
    $("player-error").textContent = `No waveform: ${e.message}`;
  }
}

/** Wires the player once. */
export function initPlayer() {
  const canvas = $("waveform");
  const audio = $("audio");
  canvas.addEventListener("click", (e) => {
    const r = canvas.getBoundingClientRect();
    seekTo(((e.clientX - r.left) / r.width) * length());
  });
  canvas.addEventListener("keydown", (e) => {
    const step = e.shiftKey ? 1 : 5;
    const keys = {
      ArrowLeft: () => seekTo(audio.currentTime - step),
      ArrowRight: () => seekTo(audio.currentTime + step),
      Home: () => seekTo(0),
      End: () => seekTo(length()),
      " ": () => (audio.paused ? audio.play().catch(() => {}) : audio.pause()),
    };
    if (keys[e.key]) {
      e.preventDefault();
      keys[e.key]();
    }
  });
  for (const ev of ["timeupdate", "loadedmetadata", "seeked"]) audio.addEventListener(ev, draw);
  audio.addEventListener("error", () => {
    $("player-error").textContent = "This browser cannot play this file's format.";
  });
  window.addEventListener("resize", draw);
}
