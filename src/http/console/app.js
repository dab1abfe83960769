// The console's entry: sign-in, then the customer's or the admin's view.

import { call, token, setToken, clearToken, ApiError } from "./api.js";
import { $, el, say } from "./ui.js";
import { showUsage } from "./account.js";
import { initContainers, loadContainers, fillSelect } from "./containers.js";
import { initFiles, loadFiles } from "./files.js";
import { initUpload } from "./upload.js";
import { initPlayer } from "./player.js";
import { initAdmin, loadCustomers } from "./admin.js";

const SECTIONS = {
  customer: [["usage", "Usage"], ["containers", "Containers"], ["upload", "Upload"], ["files", "Files"]],
  admin: [],
};

/** Who a token belongs to: "customer", "admin", or null when the server knows it not. */
async function roleOf(t) {
  try {
    await call("GET", "/v1/account", undefined, t);
    return "customer";
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
  }
  // The admin token has no account; it reads customers (an unknown one is a 404).
  try {
    await call("GET", "/v1/customers/00000000-0000-0000-0000-000000000000", undefined, t);
    return "admin";
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    if (e instanceof ApiError) return "admin";
    throw e;
  }
}

/** Everything that follows a change to the stored files. */
async function refreshCustomer() {
  await Promise.all([showUsage(), loadContainers(), loadFiles()]);
}

function showNav(role) {
  const nav = $("nav");
  nav.replaceChildren(
    ...SECTIONS[role].map(([id, text]) => el("a", { href: `#${id}`, text })),
  );
  nav.hidden = SECTIONS[role].length === 0;
}

async function enter(role) {
  $("signin").hidden = true;
  $("sign-out").hidden = false;
  showNav(role);
  if (role === "customer") {
    $("customer").hidden = false;
    await refreshCustomer();
  } else {
    $("who").textContent = "Admin";
    $("admin").hidden = false;
    await loadCustomers();
  }
  document.body.dataset.role = role;
  $("main").focus();
}

function showSignIn(message = "") {
  for (const id of ["customer", "admin", "player", "token-once"]) $(id).hidden = true;
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  delete document.body.dataset.role;
  $("token").focus();
}

async function signIn(e) {
  e.preventDefault();
  const t = $("token").value.trim();
  if (!t) {
    $("signin-error").textContent = "Enter a token.";
    return;
  }
  try {
    const role = await roleOf(t);
    if (!role) {
      $("signin-error").textContent = "This token is not valid on this server.";
      return;
    }
    setToken(t);
    $("token").value = "";
    $("signin-error").textContent = "";
    await enter(role);
  } catch (err) {
    $("signin-error").textContent = err instanceof ApiError ? err.describe() : String(err.message);
  }
}

function signOut() {
  clearToken();
  sessionStorage.clear();
  const audio = $("audio");
  audio.pause();
  audio.removeAttribute("src");
  location.reload();
}

async function start() {
  initContainers((list) => {
    fillSelect($("upload-container"), "default container", list);
    fillSelect($("filters").elements.container_sid, "any", list);
  });
  initFiles(refreshCustomer);
  initUpload(refreshCustomer);
  initPlayer();
  initAdmin();
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  window.addEventListener("mediastore:unauthorized", () => {
    clearToken();
    showSignIn("The server no longer accepts this token: sign in again.");
  });
  const t = token();
  if (!t) return showSignIn();
  try {
    const role = await roleOf(t);
    if (!role) {
      clearToken();
      return showSignIn("The token kept in this tab is no longer valid.");
    }
    await enter(role);
  } catch (e) {
    say(e instanceof ApiError ? e.describe() : String(e.message), true);
    showSignIn();
  }
}

start();
