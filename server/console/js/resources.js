// Connections and workbooks: the workspace's list, "New connection" / "New workbook",
// and each resource's Sharing section ("Specific users and groups"), whose controls only
// owners and admins get: the server answers the access list to them alone.

import { ApiError, call, ws } from "./api.js";
import { announce, dialog, field, h, setError, table } from "./dom.js";
import { groupLabel } from "./groups.js";

const WORDS = {
  connection: { plural: "connections", title: "Connections", one: "Connection" },
  workbook: { plural: "workbooks", title: "Workbooks", one: "Workbook" },
};

function href(kind, id) {
  return `#/${WORDS[kind].plural}/${encodeURIComponent(id)}`;
}

function openNew(opener, kind) {
  const words = WORDS[kind];
  dialog(`New ${kind}`, (close) => {
    const id = field(`${words.one} id`, h("input", { type: "text", autocomplete: "off", required: true }),
      { hint: "Letters, digits and /_|-=+; you will own it." });
    const form = h("form", { novalidate: true }, id.wrap,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, `Create ${kind}`),
        h("button", { type: "button", onclick: close }, "Cancel")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      setError(id, null);
      try {
        const created = await call("PUT", ws(words.plural, id.input.value.trim()));
        close();
        announce(`Created ${kind} ${created.id}`);
        location.hash = href(kind, created.id);
      } catch (error) {
        setError(id, error.message);
      }
    });
    return form;
  }, opener);
}

/** The Connections or Workbooks list. */
export async function renderResources(main, ctx, kind) {
  const words = WORDS[kind];
  const create = h("button", { type: "button", class: "primary" }, `New ${kind}`);
  create.addEventListener("click", () => openNew(create, kind));
  const { resources } = await call("GET", ws(words.plural), undefined, { signal: ctx.signal });
  main.append(h("h1", {}, words.title), h("div", { class: "toolbar" }, create),
    resources.length
      ? table([words.one, "Owners"], resources.map((r) => [h("a", { href: href(kind, r.id) }, r.id), r.owners.join(", ")]), words.title)
      : h("p", { class: "empty" }, `No ${words.plural} in this workspace yet.`));
}

function roleField(labelText) {
  const select = h("select", {}, h("option", { value: "viewer" }, "viewer"), h("option", { value: "editor" }, "editor"));
  return field(labelText, select, { inline: true });
}

function grantRow(kind, resourceId, who, label, role, onChange, problem) {
  const name = h("span", { id: `grant-${who.type}-${who.id}` }, label);
  const remove = h("button", { type: "button", "aria-describedby": name.id }, "Remove");
  remove.addEventListener("click", async () => {
    try {
      await call("DELETE", ws(WORDS[kind].plural, resourceId, "access", `${who.type}s`, who.id));
      announce(`Removed ${label}`);
      onChange();
    } catch (error) {
      problem.textContent = error.message;
    }
  });
  const cells = [name, who.type];
  if (kind === "workbook") cells.push(role || "");
  cells.push(remove);
  return cells;
}

/** A connection's or workbook's page with its Sharing section. */
export async function renderResource(main, ctx, kind, id) {
  const words = WORDS[kind];
  const sharing = h("section", { "aria-labelledby": "sharing-heading" }, h("h2", { id: "sharing-heading" }, "Sharing"));
  main.append(h("p", {}, h("a", { href: `#/${words.plural}` }, `← ${words.title}`)),
    h("h1", {}, `${words.one} ${id}`), sharing);
  async function draw() {
    let access;
    try {
      access = await call("GET", ws(words.plural, id, "access"), undefined, { signal: ctx.signal });
    } catch (error) {
      const body = error instanceof ApiError && error.status === 403
        ? h("p", {}, `Only the ${kind}'s owners and workspace admins see and change who has access.`)
        : h("p", { class: "error", role: "alert" }, error.message);
      sharing.replaceChildren(h("h2", { id: "sharing-heading" }, "Sharing"), body);
      return;
    }
    const [{ groups }, { members }] = await Promise.all([
      call("GET", ws("groups"), undefined, { signal: ctx.signal }),
      call("GET", ws("members"), undefined, { signal: ctx.signal }),
    ]);
    const problem = h("p", { class: "error", role: "alert" });
    const groupPick = field("Group", h("select", {},
      h("option", { value: "" }, "Choose a group"),
      groups.map((g) => h("option", { value: g.id }, groupLabel(g)))), { inline: true });
    const userPick = field("User", h("select", {},
      h("option", { value: "" }, "Choose a member"),
      members.map((m) => h("option", { value: m.id }, `${m.id} (${m.role})`))), { inline: true });
    const groupRole = kind === "workbook" ? roleField("Group role") : null;
    const userRole = kind === "workbook" ? roleField("User role") : null;
    async function share(type, pick, role) {
      problem.textContent = "";
      setError(pick, null);
      if (!pick.input.value) {
        setError(pick, `choose a ${type} first`);
        return;
      }
      try {
        const body = role ? { role: role.input.value } : {};
        await call("PUT", ws(words.plural, id, "access", `${type}s`, pick.input.value), body);
        announce(`Shared with ${pick.input.selectedOptions[0].textContent}`);
        await draw();
      } catch (error) {
        setError(pick, error.message);
      }
    }
    const shareGroup = h("button", { type: "button", class: "primary", onclick: () => share("group", groupPick, groupRole) }, "Share with group");
    const shareUser = h("button", { type: "button", class: "primary", onclick: () => share("user", userPick, userRole) }, "Share with user");
    const rows = [
      ...access.groups.map((g) => grantRow(kind, id, { type: "group", id: g.id }, groupLabel(g), g.role, draw, problem)),
      ...access.users.map((u) => grantRow(kind, id, { type: "user", id: u.id }, u.id, u.role, draw, problem)),
    ];
    const headers = kind === "workbook" ? ["Grantee", "Kind", "Role", "Action"] : ["Grantee", "Kind", "Action"];
    sharing.replaceChildren(
      h("h2", { id: "sharing-heading" }, "Sharing"),
      h("p", {}, "Owners: ", access.owners.length ? access.owners.join(", ") : h("span", { class: "empty" }, "none")),
      h("fieldset", {},
        h("legend", {}, "Specific users and groups"),
        h("div", { class: "toolbar" }, groupPick.wrap, groupRole ? groupRole.wrap : null, h("div", { class: "field inline" }, shareGroup)),
        h("div", { class: "toolbar" }, userPick.wrap, userRole ? userRole.wrap : null, h("div", { class: "field inline" }, shareUser))),
      problem,
      h("h3", {}, "Current grants"),
      rows.length ? table(headers, rows, "Current grants") : h("p", { class: "empty" }, "Shared with no one yet."));
  }
  await draw();
}
