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

/** Waits `ms` milliseconds, or less if `signal` aborts first. */
function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** A refusal that retrying will not cure (the actor is no member, the workspace is gone). */
function final(error) {
  return error instanceof ApiError && error.status >= 400 && error.status < 500 &&
    error.status !== 408 && error.status !== 429;
}

/**
 * Follows the signed-in workspace (`GET /v1/workspaces/{ws}/watch`): calls `onChange`
 * after each commit that changed something the workspace shows (members and roles, a
 * group's members, its name or description, resources and their grants), until `signal`
 * aborts. The promise resolves once the stream is open (or failed to open), so a screen
 * that draws after it misses nothing: whatever commits later arrives as a change. A
 * dropped stream reconnects after a second, resuming after the last revision it reported,
 * so nothing is missed in between either; one that could not open at first reports a
 * change once it opens, as the screen drew without it.
 */
export function follow(onChange, signal) {
  let opened;
  const ready = new Promise((resolve) => { opened = resolve; });
  (async () => {
    let cursor = null;
    let missed = false;
    while (!signal.aborted) {
      const auth = session();
      if (!auth) break;
      try {
        const query = cursor ? `?after=${encodeURIComponent(cursor)}` : "";
        const response = await fetch(`${ws("watch")}${query}`, { headers: headers(auth), signal });
        if (!response.ok) throw await refusal(response);
        await readLines(response, (line) => {
          if (line.error) throw new ApiError(response.status, line.error.code, line.error.message);
          if (!line.result) return;
          cursor = line.result.changesThrough.token;
          if (line.result.changed) {
            onChange();
          } else {
            opened();
            if (missed) onChange();
            missed = false;
          }
        });
      } catch (error) {
        if (signal.aborted || final(error)) break;
      }
      if (!cursor) missed = true;
      opened();
      await pause(1000, signal);
    }
    opened();
  })();
  return ready;
}
