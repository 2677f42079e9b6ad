// The console's only door to the server: the same HTTP API apps use, with the key and the
// `Pemba-Actor` header from the signed-in session. Credentials live in sessionStorage
// only (gone when the tab closes), never in a URL or a cookie.

const STORAGE = "pemba.console.session";

/** The signed-in session `{ key, workspace, actor }`, or null. */
export function session() {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORAGE) || "null");
    return value && value.key && value.workspace && value.actor ? value : null;
  } catch {
    return null;
  }
}

/** Keeps the session for this tab. */
export function saveSession(value) {
  sessionStorage.setItem(STORAGE, JSON.stringify(value));
}

/** Forgets the session. */
export function clearSession() {
  sessionStorage.removeItem(STORAGE);
}

/** A refusal from the server: its HTTP status, gRPC code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(auth, extra = {}) {
  const h = { Authorization: `Bearer ${auth.key}`, ...extra };
  if (auth.actor) h["Pemba-Actor"] = auth.actor;
  return h;
}

async function refusal(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    return new ApiError(response.status, body.code, body.message || `HTTP ${response.status}`);
  } catch {
    return new ApiError(response.status, null, text || `HTTP ${response.status}`);
  }
}

/**
 * `method path` with a JSON body (or none); the decoded answer, null for 204. `auth`
 * defaults to the session; a refusal throws an ApiError.
 */
export async function call(method, path, body, { auth = session(), signal } = {}) {
  if (!auth) throw new ApiError(401, 16, "not signed in");
  const init = { method, headers: headers(auth), signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await refusal(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** `/v1/workspaces/{ws}/...parts`, each part escaped. */
export function ws(...parts) {
  const s = session();
  const base = `/v1/workspaces/${encodeURIComponent(s ? s.workspace : "")}`;
  return parts.length ? `${base}/${parts.map(encodeURIComponent).join("/")}` : base;
}

/** Reads a newline-delimited JSON answer, calling `onLine` with each decoded line. */
async function readLines(response, onLine) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 1);
      if (line) onLine(JSON.parse(line));
    }
  }
  if (buffer.trim()) onLine(JSON.parse(buffer));
}

/**
 * A streamed general-API route (lookups, read): every `result`, in order; the first
 * `error` line throws.
 */
export async function stream(path, body, { signal } = {}) {
  const auth = session();
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ key: auth.key }, { "Content-Type": "application/json" }),
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await refusal(response);
  const results = [];
  let failure = null;
  await readLines(response, (line) => {
    if (line.error && !failure) failure = new ApiError(response.status, line.error.code, line.error.message);
    else if (line.result) results.push(line.result);
  });
  if (failure) throw failure;
  return results;
}

/** A general-API call (no actor: the key alone, as apps call it). */
export function general(path, body, options = {}) {
  const s = session();
  return call("POST", path, body, { ...options, auth: s ? { key: s.key } : null });
}

/**
 * Watches changes to `objectTypes` and calls `onChange` after each commit that touches
 * them, until `signal` aborts; reconnects after a dropped stream, resuming after the
 * last revision seen so nothing is missed. A rename or a new description changes only
 * the group's record, which the watch API (relationships only) does not carry, so the
 * store's revision is also read once a second and a move past the last seen one counts
 * as a change too.
 */
export async function watch(objectTypes, onChange, signal) {
  let cursor = null;
  let seen = null;
  (async () => {
    while (!signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      try {
        const auth = session();
        if (!auth || signal.aborted) return;
        const response = await fetch("/healthz", { headers: headers({ key: auth.key }), signal });
        const { revision } = await response.json();
        if (seen !== null && revision && revision !== seen) onChange();
        seen = revision;
      } catch {
        // A failed probe is retried on the next tick; the watch stream still runs.
      }
    }
  })();
  while (!signal.aborted) {
    try {
      const auth = session();
      if (!auth) return;
      const body = { optionalObjectTypes: objectTypes };
      if (cursor) body.optionalStartCursor = cursor;
      const response = await fetch("/v1/watch", {
        method: "POST",
        headers: headers({ key: auth.key }, { "Content-Type": "application/json" }),
        body: JSON.stringify(body),
        signal,
      });
      if (!response.ok) throw await refusal(response);
      await readLines(response, (line) => {
        if (!line.result) return;
        if (line.result.changesThrough) cursor = line.result.changesThrough;
        if ((line.result.updates || []).length) onChange();
      });
    } catch (error) {
      if (signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
