// The console's shell: sign in, navigation and the hash router. Each screen is a module
// whose `render(main, ctx)` fills the main region; `ctx` carries who is signed in, their
// role and an AbortSignal that ends when the user navigates away (closing the screen's
// watch stream and cancelling its reads).

import { ApiError, call, clearSession, saveSession, session, ws } from "./api.js";
import { field, h, setError } from "./dom.js";
import { renderGroup, renderGroups } from "./groups.js";
import { renderMembers } from "./members.js";
import { renderResource, renderResources } from "./resources.js";
import { renderSchema } from "./schema.js";
import { renderRelationships } from "./relationships.js";
import { renderCheck } from "./check.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const sessionBox = document.getElementById("session");

const screens = [
  [/^#\/groups$/, "Groups", (ctx) => renderGroups(main, ctx)],
  [/^#\/groups\/(.+)$/, "Groups", (ctx, id) => renderGroup(main, ctx, id)],
  [/^#\/members$/, "Members", (ctx) => renderMembers(main, ctx)],
  [/^#\/connections$/, "Connections", (ctx) => renderResources(main, ctx, "connection")],
  [/^#\/connections\/(.+)$/, "Connections", (ctx, id) => renderResource(main, ctx, "connection", id)],
  [/^#\/workbooks$/, "Workbooks", (ctx) => renderResources(main, ctx, "workbook")],
  [/^#\/workbooks\/(.+)$/, "Workbooks", (ctx, id) => renderResource(main, ctx, "workbook", id)],
  [/^#\/schema$/, "Schema", (ctx) => renderSchema(main, ctx)],
  [/^#\/relationships$/, "Relationships", (ctx) => renderRelationships(main, ctx)],
  [/^#\/check$/, "Check", (ctx) => renderCheck(main, ctx)],
];

let current = null;

/** What a refusal means to the person signing in. */
function signInProblem(error, actor, workspace) {
  if (!(error instanceof ApiError)) return `the server did not answer: ${error.message}`;
  if (error.status === 401 && !/Pemba-Actor/.test(error.message)) return "invalid API key";
  if (error.status === 403) return `${actor} is not a member of workspace ${workspace}`;
  return error.message;
}

function renderSignIn(problem) {
  nav.hidden = true;
  sessionBox.replaceChildren();
  document.title = "Sign in · Pemba console";
  const key = field("API key", h("input", { type: "password", autocomplete: "off", required: true }),
    { hint: "The server's preshared key (pemba-data/api-key by default)." });
  const workspace = field("Workspace", h("input", { type: "text", required: true, autocomplete: "off" }));
  const actor = field("Act as user", h("input", { type: "text", required: true, autocomplete: "off" }),
    { hint: "The workspace member whose rights the console uses." });
  const alert = h("p", { class: "error", role: "alert" }, problem || "");
  const form = h("form", { class: "signin", novalidate: true },
    key.wrap, workspace.wrap, actor.wrap, alert,
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.textContent = "";
    const fields = [key, workspace, actor];
    let missing = false;
    for (const f of fields) {
      const empty = !f.input.value.trim();
      setError(f, empty ? "required" : null);
      missing = missing || empty;
    }
    if (missing) return;
    const auth = { key: key.input.value.trim(), workspace: workspace.input.value.trim(), actor: actor.input.value.trim() };
    try {
      await call("GET", `/v1/workspaces/${encodeURIComponent(auth.workspace)}/members`, undefined, { auth });
    } catch (error) {
      alert.textContent = signInProblem(error, auth.actor, auth.workspace);
      return;
    }
    saveSession(auth);
    if (location.hash === "#/groups") route();
    else location.hash = "#/groups";
  });
  main.replaceChildren(h("h1", {}, "Sign in"), form);
  key.input.focus();
}

function renderSession(s, role) {
  sessionBox.replaceChildren(
    h("span", {}, `${s.actor} (${role}) in ${s.workspace}`),
    h("button", {
      type: "button",
      class: "link",
      onclick: () => {
        clearSession();
        location.hash = "";
        route();
      },
    }, "Sign out"));
}

/** Shows a screen's failure in the main region. */
export function showFailure(target, error) {
  target.append(h("p", { class: "error", role: "alert" }, error.message || String(error)));
}

async function route() {
  if (current) current.abort();
  // A dialog belongs to the screen that opened it (Back with one open leaves it behind).
  for (const open of document.querySelectorAll("dialog")) open.close();
  current = new AbortController();
  const signal = current.signal;
  const s = session();
  if (!s) {
    renderSignIn();
    return;
  }
  let me;
  try {
    const { members } = await call("GET", ws("members"), undefined, { signal });
    me = members.find((m) => m.id === s.actor);
  } catch (error) {
    if (signal.aborted) return;
    if (error instanceof ApiError && (error.status === 401 || error.status === 403 || error.status === 404)) {
      clearSession();
      renderSignIn(signInProblem(error, s.actor, s.workspace));
      return;
    }
    main.replaceChildren(h("h1", {}, "Pemba console"));
    showFailure(main, error);
    return;
  }
  if (signal.aborted) return;
  const role = me ? me.role : "none";
  nav.hidden = false;
  renderSession(s, role);
  const hash = location.hash || "#/groups";
  const match = screens.map(([re, section, screen]) => [hash.match(re), section, screen]).find(([m]) => m);
  for (const link of nav.querySelectorAll("a")) {
    if (match && link.textContent === match[1]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.replaceChildren();
  if (!match) {
    main.append(h("h1", {}, "Not found"), h("p", {}, "No screen has this address."));
    return;
  }
  const [m, section, screen] = match;
  document.title = `${section} · Pemba console`;
  const ctx = { signal, actor: s.actor, workspace: s.workspace, role, isAdmin: role === "admin" };
  try {
    await screen(ctx, m[1] === undefined ? undefined : decodeURIComponent(m[1]));
  } catch (error) {
    if (!signal.aborted) showFailure(main, error);
  }
}

window.addEventListener("hashchange", route);
route();
