// Usage against quota (GET /v1/account).

import { call } from "./api.js";
import { $, bytes } from "./ui.js";

/** Loads the account and draws the usage bar; resolves to the account. */
export async function showUsage() {
  const a = await call("GET", "/v1/account");
  const used = a.total_file_size;
  const quota = a.quota_bytes;
  const share = quota > 0 ? Math.min(used / quota, 1) : 1;
  const bar = $("usage-bar");
  bar.value = share;
  bar.classList.toggle("high", share >= 0.9);
  bar.setAttribute("aria-valuetext", `${(share * 100).toFixed(1)} percent of the quota used`);
  $("usage-text").textContent =
    `${bytes(used)} of ${bytes(quota)} used (${(share * 100).toFixed(1)}%)`;
  const containers =
    a.max_containers === null || a.max_containers === undefined
      ? `${a.container_count} containers`
      : `${a.container_count} of ${a.max_containers} containers`;
  $("usage-detail").textContent = `${a.total_file_count} files · ${containers}`;
  $("who").textContent = a.name ? `Customer ${a.name}` : `Customer ${a.customer_id}`;
  return a;
}
