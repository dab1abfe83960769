// Drives /console in headless Chromium as a user would (run by tests/console.rs).
//
// node console.spec.mjs '<json>' with {base, customer, quota_customer, admin, fixtures, shots,
// node_modules, chromium}: the server's URL, the tokens of a customer, of a customer with a
// tiny quota and of the admin, the fixtures dir, where to save screenshots, where
// playwright-core is installed and the Chromium binary. Exits non-zero on the first failure.

import { createRequire } from "node:module";
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";

const cfg = JSON.parse(process.argv[2]);
const require = createRequire(join(cfg.node_modules, "noop.js"));
const { chromium } = require("playwright-core");

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const TIMEOUT = 20_000;
const tokens = [cfg.customer, cfg.quota_customer, cfg.admin];
const fixture = (name) => readFileSync(join(cfg.fixtures, name));

const profile = mkdtempSync(join(tmpdir(), "console-chromium-"));
mkdirSync(cfg.shots, { recursive: true });
const context = await chromium.launchPersistentContext(profile, {
  executablePath: cfg.chromium,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
  ],
  viewport: DESKTOP,
  timeout: TIMEOUT,
});
context.setDefaultTimeout(TIMEOUT);
await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: cfg.base });

const problems = [];
const page = context.pages()[0] || (await context.newPage());
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error" && /Content.Security.Policy|Refused to/i.test(m.text())) {
    problems.push(`console: ${m.text()}`);
  }
});
// The token travels only in the Authorization header: never in a URL the browser asks for.
page.on("request", (r) => {
  for (const t of tokens) {
    if (r.url().includes(t)) problems.push(`a token in a URL: ${r.url()}`);
  }
});

let step = 0;
/** Saves the screen at desktop and at phone width (the whole page unless `fullPage` is false). */
async function shot(name, fullPage = true) {
  step += 1;
  const n = String(step).padStart(2, "0");
  await page.screenshot({ path: join(cfg.shots, `${n}-${name}-desktop.png`), fullPage });
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(cfg.shots, `${n}-${name}-phone.png`), fullPage });
  await page.setViewportSize(DESKTOP);
  await page.waitForTimeout(150);
}

function log(msg) {
  console.log(`console.spec: ${msg}`);
}

/** Every control has a name a screen reader reads (its label, or aria-label, or its text). */
async function labelled() {
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea, button, canvas")]
      .filter((e) => !e.closest("[hidden]"))
      .filter((e) => !((e.labels && e.labels.length) || e.getAttribute("aria-label") ||
        (e.tagName === "BUTTON" && e.textContent.trim())))
      .map((e) => e.outerHTML.slice(0, 80)),
  );
  assert.deepEqual(unnamed, [], "controls without a label");
}

/** Signs in by keyboard: the token field has the focus; type, then Enter. */
async function signIn(token, expect) {
  await page.goto(`${cfg.base}/console`);
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === "token");
  await page.keyboard.type(token);
  await page.keyboard.press("Enter");
  await page.waitForSelector(`body[data-role="${expect}"]`);
  await labelled();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("mediastore.token")), token);
  assert.ok(!page.url().includes(token));
}

async function signOut() {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForSelector("#signin:not([hidden])");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("mediastore.token")), null);
}

/** Drops files on the drop zone as a user dragging them from the desktop would. */
async function drop(files) {
  const payload = files.map(([name, bytes, type]) => [name, bytes.toString("base64"), type]);
  const dt = await page.evaluateHandle((list) => {
    const dt = new DataTransfer();
    for (const [name, b64, type] of list) {
      const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([raw], name, { type }));
    }
    return dt;
  }, payload);
  await page.locator("#dropzone").dispatchEvent("dragenter", { dataTransfer: dt });
  await page.locator("#dropzone").dispatchEvent("drop", { dataTransfer: dt });
}

const upload = (name) => page.locator(`li.upload[data-name="${name}"]`);

async function clipboard() {
  return page.evaluate(() => navigator.clipboard.readText());
}

/** Waits (up to 3 s) until `url` answers `status`: nodes stop serving within one second. */
async function answers(url, status) {
  const until = Date.now() + 3000;
  for (;;) {
    const got = (await fetch(url)).status;
    if (got === status) return;
    if (Date.now() > until) assert.equal(got, status, `GET ${url}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function fetchBytes(url) {
  const r = await fetch(url);
  assert.equal(r.status, 200, `GET ${url}`);
  return Buffer.from(await r.arrayBuffer());
}

try {
  // --- A customer signs in. ---
  await page.goto(`${cfg.base}/console`);
  await page.waitForSelector("#signin:not([hidden])");
  await shot("signin");
  await page.getByLabel("Token", { exact: true }).fill("not-a-token-of-this-server");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("This token is not valid on this server.").waitFor();
  await signIn(cfg.customer, "customer");
  await page.locator("#usage-text").filter({ hasText: "of 10.0 GiB used" }).waitFor();
  log("signed in");

  // --- Two files dropped at once: both bars fill and finish. ---
  const speech = fixture("speech16k.wav");
  const music = fixture("music.flac");
  await page.evaluate(() => {
    // Record what each bar shows while the uploads run.
    window.seen = {};
    new MutationObserver((records) => {
      for (const r of records) {
        const p = r.target;
        if (p.tagName !== "PROGRESS") continue;
        const name = p.closest("li").dataset.name;
        (window.seen[name] ||= []).push([p.value, p.max]);
      }
    }).observe(document.getElementById("uploads"), { attributes: true, subtree: true });
  });
  await drop([["speech16k.wav", speech, "audio/wav"], ["music.flac", music, "audio/flac"]]);
  for (const name of ["speech16k.wav", "music.flac"]) {
    await upload(name).and(page.locator(".done")).waitFor();
    await upload(name).getByText("uploaded: ").waitFor();
    const [value, max] = await upload(name)
      .locator("progress")
      .evaluate((p) => [p.value, p.max]);
    assert.equal(value, max, `${name}: the bar is full`);
  }
  const seen = await page.evaluate(() => window.seen);
  for (const name of ["speech16k.wav", "music.flac"]) {
    assert.ok((seen[name] || []).length > 0, `${name}: its bar moved`);
  }
  log(`both uploads finished (bar updates: ${Object.values(seen).map((s) => s.length)})`);

  // --- Found in the list, with filters and pages. ---
  const row = (name) => page.locator("#files-table tbody tr").filter({ hasText: name });
  await row("speech16k.wav").waitFor();
  await row("music.flac").waitFor();
  await page.locator("#usage-detail").filter({ hasText: /^12 files/ }).waitFor();
  await shot("uploaded");
  const filters = page.locator("#filters");
  await filters.getByLabel("Per page").selectOption("10");
  await filters.getByRole("button", { name: "Apply" }).click();
  await page.locator("#page-info").filter({ hasText: "Page 1 of 2 · 12 files" }).waitFor();
  assert.equal(await page.locator("#files-table tbody tr").count(), 10);
  await page.getByRole("button", { name: "Next" }).click();
  await page.locator("#page-info").filter({ hasText: "Page 2 of 2" }).waitFor();
  assert.equal(await page.locator("#files-table tbody tr").count(), 2);
  await filters.getByLabel("Tag").fill("bulk");
  await filters.getByRole("button", { name: "Apply" }).click();
  await page.locator("#page-info").filter({ hasText: "Page 1 of 1 · 10 files" }).waitFor();
  await filters.getByLabel("Tag").fill("");
  await filters.getByLabel("Name").fill("speech16k.wav");
  await filters.getByRole("button", { name: "Apply" }).click();
  await page.locator("#page-info").filter({ hasText: "· 1 file" }).waitFor();
  await shot("filtered");
  await filters.getByRole("button", { name: "Clear" }).click();
  await page.locator("#page-info").filter({ hasText: "Page 1 of 1 · 12 files" }).waitFor();
  log("listed, filtered, paged");

  // --- Played, and a click on the waveform seeks. ---
  await page.getByRole("button", { name: "Play speech16k.wav" }).click();
  await page.waitForSelector('#player[data-waveform="ready"]');
  await page.waitForFunction(() => document.getElementById("audio").readyState >= 1);
  const duration = await page.evaluate(() => document.getElementById("audio").duration);
  assert.ok(duration > 1, `duration ${duration}`);
  const box = await page.locator("#waveform").boundingBox();
  await page.mouse.click(box.x + box.width * 0.6, box.y + box.height / 2);
  await page.waitForFunction(() => document.getElementById("audio").currentTime > 0);
  const at = await page.evaluate(() => document.getElementById("audio").currentTime);
  assert.ok(Math.abs(at - duration * 0.6) < duration * 0.05, `seeked to ${at} of ${duration}`);
  // And by keyboard: the waveform is a slider.
  await page.locator("#waveform").focus();
  await page.keyboard.press("Home");
  await page.waitForFunction(() => document.getElementById("audio").currentTime === 0);
  await page.keyboard.press("ArrowRight");
  await page.waitForFunction(() => document.getElementById("audio").currentTime >= 4);
  await page.mouse.click(box.x + box.width * 0.6, box.y + box.height / 2);
  await page.locator("#player").scrollIntoViewIfNeeded();
  await shot("player");
  log(`waveform click seeked to ${at.toFixed(2)} s of ${duration.toFixed(2)} s`);

  // --- Published; the copied links give the exact bytes. ---
  await page.getByRole("button", { name: "Publish music.flac", exact: true }).click();
  await page.getByRole("button", { name: "Copy the publish URI of music.flac" }).click();
  await page.getByText("Copied the publish URI.").waitFor();
  const uri = await clipboard();
  assert.match(uri, /\/f\/[0-9a-f-]+$/);
  assert.ok((await fetchBytes(uri)).equals(music), "publish URI serves the uploaded bytes");
  await page.getByRole("button", { name: "Copy the signed link of speech16k.wav" }).click();
  await page.getByText("Copied the signed link.").waitFor();
  const link = await clipboard();
  assert.match(link, /\/download\/.+\?expires=\d+&signature=/);
  assert.ok((await fetchBytes(link)).equals(speech), "signed link serves the uploaded bytes");
  await shot("published");
  await page.getByRole("button", { name: "Unpublish music.flac" }).click();
  await page.getByRole("button", { name: "Publish music.flac", exact: true }).waitFor();
  await answers(uri, 404);
  log("published, copied, fetched byte-exact, unpublished");

  // --- A container with a policy refuses what it does not accept, each with its reason. ---
  await page.getByText("New container").click();
  const form = page.locator("#container-form");
  await form.getByLabel("Max file size").fill("64 KiB");
  await form.locator("fieldset", { hasText: "Allowed" }).getByLabel("media").check();
  await form.getByRole("button", { name: "Create container" }).click();
  await page.getByText(/Container .* created\./).waitFor();
  const sid = (await page.locator("#status").textContent()).match(/Container (\S+) created/)[1];
  await page.getByRole("button", { name: `View container ${sid.slice(0, 8)}` }).click();
  await page.locator("#container-fields").getByText("max_file_size").waitFor();
  await page.locator("#container-view").getByText("64.0 KiB (65536)").waitFor();
  await shot("container");
  await page.getByLabel("Into container").selectOption(sid);
  await drop([
    ["speech8k.wav", fixture("speech8k.wav"), "audio/wav"],
    ["notes.txt", Buffer.from("meeting notes, not audio\n".repeat(20)), "text/plain"],
  ]);
  await upload("speech8k.wav").and(page.locator(".failed")).waitFor();
  await upload("notes.txt").and(page.locator(".failed")).waitFor();
  const tooLarge = await upload("speech8k.wav").locator(".outcome").textContent();
  const refused = await upload("notes.txt").locator(".outcome").textContent();
  assert.match(tooLarge, /^Too large/, tooLarge);
  assert.match(refused, /^Not accepted: content_classification: files classified document/, refused);
  await page.locator("#upload").scrollIntoViewIfNeeded();
  await shot("refused");
  log(`refusals shown: "${tooLarge}" / "${refused}"`);

  // --- Deleted after a confirmation (and kept when cancelled). ---
  await page.getByRole("button", { name: "Delete speech16k.wav" }).click();
  await page.locator("#confirm").getByText("Delete speech16k.wav").waitFor();
  await shot("confirm", false);
  await page.keyboard.press("Escape");
  await page.getByText("Nothing deleted.").waitFor();
  assert.equal(await row("speech16k.wav").count(), 1);
  await page.getByRole("button", { name: "Delete speech16k.wav" }).click();
  await page.locator("#confirm").getByRole("button", { name: "Delete" }).click();
  await page.getByText("Deleted speech16k.wav.").waitFor();
  await row("speech16k.wav").waitFor({ state: "detached" });
  await page.locator("#usage-detail").filter({ hasText: /^11 files/ }).waitFor();
  await answers(link, 404);
  log("deleted after confirmation");
  await signOut();

  // --- A customer over its quota is told so. ---
  await signIn(cfg.quota_customer, "customer");
  // This time through the file picker.
  await page.getByLabel("Choose files…").setInputFiles([
    { name: "speech_u8.wav", mimeType: "audio/wav", buffer: fixture("speech_u8.wav") },
  ]);
  await upload("speech_u8.wav").and(page.locator(".failed")).waitFor();
  const quota = await upload("speech_u8.wav").locator(".outcome").textContent();
  assert.match(quota, /^Over quota: /, quota);
  await shot("quota");
  log(`quota refusal shown: "${quota}"`);
  await signOut();

  // --- The admin creates a customer and tokens (each shown once). ---
  await signIn(cfg.admin, "admin");
  await shot("admin");
  const cform = page.locator("#customer-form");
  await cform.getByLabel("Name").fill("globex");
  await cform.getByLabel("Quota").fill("5 GiB");
  await cform.getByRole("button", { name: "Create customer" }).click();
  await page.locator("#token-once").waitFor();
  const first = await page.locator("#token-value").inputValue();
  const account = await fetch(`${cfg.base}/v1/account`, { headers: { Authorization: `Bearer ${first}` } });
  assert.equal(account.status, 200, "the shown token works");
  const created = await account.json();
  assert.equal(created.name, "globex");
  assert.equal(created.quota_bytes, 5 * 1024 ** 3);
  await page.locator("#customers-table").getByText("globex").waitFor();
  await shot("token");
  await page.getByRole("button", { name: "Done, hide it" }).click();
  assert.equal(await page.locator("#token-value").inputValue(), "");
  await page.getByRole("button", { name: "Make a new token for globex" }).click();
  await page.locator("#token-once").waitFor();
  await page.waitForFunction(() => document.getElementById("token-value").value !== "");
  const second = await page.locator("#token-value").inputValue();
  assert.notEqual(second, first);
  const again = await fetch(`${cfg.base}/v1/account`, { headers: { Authorization: `Bearer ${second}` } });
  assert.equal(again.status, 200, "the second token works");
  await page.getByRole("button", { name: "Done, hide it" }).click();
  await page.getByRole("button", { name: "Change the quotas of globex" }).click();
  await page.locator("#quota-dialog").getByLabel("Most containers").fill("4");
  await page.locator("#quota-dialog").getByRole("button", { name: "Save" }).click();
  await page.getByText("Quotas of globex saved.").waitFor();
  await page.locator("#customers-table tr", { hasText: "globex" }).getByText("0 of 4").waitFor();
  await shot("customers");
  log("admin created a customer, two tokens, changed its quotas");

  assert.deepEqual(problems, []);
  log("ok");
} catch (e) {
  await page.screenshot({ path: join(cfg.shots, "failure.png"), fullPage: true }).catch(() => {});
  console.error(e);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
