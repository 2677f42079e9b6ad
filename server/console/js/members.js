// The Members screen: every member with their role and groups; admins add members,
// change roles and remove members through the "Remove from workspace" dialog.

import { call, ws } from "./api.js";
import { announce, dialog, field, h, setError, table } from "./dom.js";
import { groupHref } from "./groups.js";

const ROLES = ["admin", "editor", "viewer"];

function roleSelect(labelText, value) {
  const select = h("select", { "aria-label": labelText },
    ROLES.map((r) => h("option", { value: r, selected: r === value }, r)));
  select.value = value;
  return select;
}

function openRemove(opener, id, onDone) {
  dialog("Remove from workspace", (close) => {
    const alert = h("p", { class: "error", role: "alert" });
    const confirm = h("button", { type: "button", class: "danger" }, "Remove from workspace");
    confirm.addEventListener("click", async () => {
      try {
        await call("DELETE", ws("members", id));
        close();
        announce(`Removed ${id} from the workspace`);
        onDone();
      } catch (error) {
        alert.textContent = error.message;
      }
    });
    return h("div", {},
      h("p", {}, h("strong", {}, id),
        " will be removed from every group and lose all access in this workspace."),
      alert,
      h("div", { class: "actions" }, confirm,
        // Focus starts on the way out, so Enter on opening does not destroy anything.
        h("button", { type: "button", onclick: close, autofocus: true }, "Cancel")));
  }, opener);
}

/** The Members screen. */
export async function renderMembers(main, ctx) {
  const list = h("div", {});
  main.append(h("h1", {}, "Members"));
  if (ctx.isAdmin) {
    const user = field("User id", h("input", { type: "text", autocomplete: "off" }), { inline: true });
    const role = h("select", { id: "new-member-role" }, ROLES.map((r) => h("option", { value: r, selected: r === "viewer" }, r)));
    const roleField = h("div", { class: "field inline" }, h("label", { for: "new-member-role" }, "Role"), role);
    const form = h("form", { class: "toolbar", "aria-label": "Add member", novalidate: true },
      user.wrap, roleField, h("div", { class: "field inline" }, h("button", { type: "submit", class: "primary" }, "Add member")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      setError(user, null);
      try {
        await call("PUT", ws("members", user.input.value.trim()), { role: role.value });
        announce(`Added ${user.input.value.trim()}`);
        user.input.value = "";
        await refresh();
      } catch (error) {
        setError(user, error.message);
      }
    });
    main.append(form);
  }
  main.append(list);
  async function refresh() {
    const { members } = await call("GET", ws("members"), undefined, { signal: ctx.signal });
    const rows = members.map((m) => {
      const groups = m.groups.length
        ? h("ul", { class: "inline-list" }, m.groups.map((g) => h("li", {}, h("a", { href: groupHref(g.id) }, g.name))))
        : h("span", { class: "empty" }, "none");
      let roleCell = m.role;
      const cells = [m.id];
      if (ctx.isAdmin) {
        const select = roleSelect(`Role of ${m.id}`, m.role);
        const problem = h("p", { class: "error", role: "alert" });
        select.addEventListener("change", async () => {
          problem.textContent = "";
          try {
            await call("PUT", ws("members", m.id), { role: select.value });
            announce(`${m.id} is now ${select.value}`);
            await refresh();
          } catch (error) {
            problem.textContent = error.message;
            select.value = m.role;
          }
        });
        roleCell = h("div", {}, select, problem);
      }
      cells.push(roleCell, groups);
      if (ctx.isAdmin) {
        const remove = h("button", { type: "button" }, `Remove ${m.id}`);
        remove.addEventListener("click", () => openRemove(remove, m.id, refresh));
        cells.push(remove);
      }
      return cells;
    });
    list.replaceChildren(table(ctx.isAdmin ? ["Member", "Role", "Groups", "Action"] : ["Member", "Role", "Groups"], rows, "Members"));
  }
  await refresh();
}
