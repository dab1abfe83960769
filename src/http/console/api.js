// The contract's HTTP API as the console calls it: bearer token from session storage, JSON in
// and out, errors turned into ApiError with the contract's error body.

const TOKEN_KEY = "mediastore.token";

/** The signed-in token (this tab only), or null. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer: `status`, and the contract's `{"status","message","errors"}` body. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || { status, message: `HTTP ${status}`, errors: [] };
  }

  /** One sentence for a person: what happened, then each field's message. */
  describe() {
    return describeError(this.status, this.body);
  }
}

const TITLES = {
  0: "Network error",
  400: "Bad input",
  401: "Not signed in (token unknown)",
  403: "Forbidden",
  404: "Not found",
  409: "Conflict",
  413: "Too large",
  415: "Not audio",
  422: "Not accepted",
  429: "Over quota",
  502: "External storage failed",
  503: "Server busy, try again",
};

/** A person's reading of a contract error body. */
export function describeError(status, body) {
  const title = TITLES[status] || `Error ${status}`;
  const fields = ((body && body.errors) || [])
    .map((e) => (e.field ? `${e.field}: ${e.message}` : e.message))
    .filter(Boolean);
  const head = body && body.message && !fields.length ? `${title} (${body.message})` : title;
  return fields.length ? `${head}: ${fields.join("; ")}` : head;
}

/** The signed-in token stopped working (revoked, or the server's data reset). */
function unauthorized() {
  window.dispatchEvent(new Event("mediastore:unauthorized"));
}

function parse(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** Calls `path` with the token; resolves to the JSON answer (null for 204), or throws ApiError. */
export async function call(method, path, body, tokenOverride) {
  const headers = { Authorization: `Bearer ${tokenOverride || token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, { status: 0, message: String(e.message || e), errors: [] });
  }
  const json = parse(await r.text());
  if (r.status === 401 && !tokenOverride) unauthorized();
  if (!r.ok) throw new ApiError(r.status, json);
  return json;
}

/** A query string of the non-empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * Uploads `file` as a raw body (fields in the query, as the contract's second way), reporting
 * progress(sent, total). Resolves to the File object; rejects with ApiError. XMLHttpRequest
 * because fetch reports no upload progress.
 */
export function upload(file, fields, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/files${query(fields)}`);
    xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.responseType = "text";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) progress(e.loaded, e.total);
    };
    xhr.onload = () => {
      const json = parse(xhr.responseText);
      if (xhr.status === 401) unauthorized();
      if (xhr.status === 201) resolve(json);
      else reject(new ApiError(xhr.status, json));
    };
    // A connection lost mid-upload. (An early refusal, 413 or 429 before the body is read,
    // arrives as its answer: Chromium reads the response when the server stops reading.)
    xhr.onerror = () =>
      reject(new ApiError(0, { status: 0, message: "the upload was cut off", errors: [] }));
    xhr.send(file);
  });
}
