// The group directory (search, the Create group dialog) and a group's page (members,
// Add members, Edit, Delete group, and for admins the Resources it reaches). Both follow
// the workspace's watch stream, so changes made elsewhere (members, renames, descriptions,
// grants) show without a reload.

import { ApiError, call, follow, ws } from "./api.js";
import { announce, dialog, field, h, plural, setError, table } from "./dom.js";

/** Where a group's page lives. */
export function groupHref(id) {
  return `#/groups/${encodeURIComponent(id)}`;
}

/** Group name errors go beside the name; others (members, permissions) below the form. */
function isAboutName(error) {
  return error instanceof ApiError && (error.status === 409 || /name/i.test(error.message)) &&
    !/member/i.test(error.message);
}

/**
 * A member picker: a search box labelled `label` filtering checkboxes, one per member
 * (minus `exclude`); `picked()` lists the checked ids.
 */
function memberPicker(label, members, exclude = []) {
  const search = field(label, h("input", { type: "search", autocomplete: "off" }),
    { hint: "Type to filter the workspace's members, then tick each one to add." });
  const list = h("div", { class: "picker", role: "group", "aria-label": `${label}: workspace members` });
  const boxes = members.filter((m) => !exclude.includes(m.id)).map((m) => {
    const box = h("input", { type: "checkbox", value: m.id });
    const row = h("label", {}, box, m.id, h("span", { class: "hint" }, ` ${m.role}`));
    list.append(row);
    return { id: m.id, row, box };
  });
  if (!boxes.length) list.append(h("p", { class: "empty" }, "Every workspace member is already here."));
  search.input.addEventListener("input", () => {
    const text = search.input.value.trim().toLowerCase();
    for (const b of boxes) b.row.hidden = Boolean(text) && !b.id.toLowerCase().includes(text);
  });
  return { wrap: h("div", {}, search.wrap, list), picked: () => boxes.filter((b) => b.box.checked).map((b) => b.id) };
}

function openCreateDialog(opener, members, onCreated) {
  dialog("Create group", (close) => {
    const name = field("Group name", h("input", { type: "text", required: true, autocomplete: "off" }),
      { hint: "At most 50 characters, unique in the workspace." });
    const description = field("Description", h("textarea", {}));
    const picker = memberPicker("Add members", members);
    const alert = h("p", { class: "error", role: "alert" });
    const form = h("form", { novalidate: true }, name.wrap, description.wrap, picker.wrap, alert,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, "Create group"),
        h("button", { type: "button", onclick: close }, "Cancel")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      setError(name, null);
      alert.textContent = "";
      try {
        const group = await call("POST", ws("groups"), {
          name: name.input.value,
          description: description.input.value,
          members: picker.picked(),
        });
        close();
        announce(`Created group ${group.name}`);
        onCreated(group);
      } catch (error) {
        if (isAboutName(error)) {
          setError(name, error.message);
          name.input.focus();
        } else {
          alert.textContent = error.message;
        }
      }
    });
    return form;
  }, opener);
}

/** The Groups screen. */
export async function renderGroups(main, ctx) {
  const search = field("Search groups", h("input", { type: "search", autocomplete: "off" }), { inline: true });
  const results = h("div", { "aria-live": "polite" });
  const heading = h("h1", {}, "Groups");
  const toolbar = h("div", { class: "toolbar" }, search.wrap);
  main.append(heading, toolbar, results);
  let members = [];
  if (ctx.isAdmin) {
    const create = h("button", { type: "button", class: "primary" }, "Create group");
    create.addEventListener("click", async () => {
      ({ members } = await call("GET", ws("members")));
      openCreateDialog(create, members, () => refresh());
    });
    toolbar.append(create);
  }
  let generation = 0;
  async function refresh() {
    generation += 1;
    const mine = generation;
    const q = search.input.value.trim();
    const path = q ? `${ws("groups")}?q=${encodeURIComponent(q)}` : ws("groups");
    const { groups } = await call("GET", path, undefined, { signal: ctx.signal });
    if (mine !== generation) return; // a newer keystroke's answer wins
    const rows = groups.map((g) => [
      h("a", { href: groupHref(g.id) }, g.name),
      String(g.memberCount),
      g.description || "",
    ]);
    results.replaceChildren(groups.length
      ? table(["Name", "Members", "Description"], rows, "Groups")
      : h("p", { class: "empty" }, q ? `No group name contains “${q}”.` : "No groups yet."));
  }
  let timer = null;
  search.input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch(() => {}), 120);
  });
  await follow(() => refresh().catch(() => {}), ctx.signal);
  await refresh();
}

function memberRows(ctx, group, onChange) {
  return group.members.map((m) => {
    const cells = [m.id, m.role];
    if (ctx.isAdmin) {
      const remove = h("button", { type: "button" }, `Remove ${m.id}`);
      remove.addEventListener("click", async () => {
        try {
          await call("DELETE", ws("groups", group.id, "members", m.id));
          announce(`Removed ${m.id} from ${group.name}`);
          onChange();
        } catch (error) {
          announce(error.message);
          remove.after(h("p", { class: "error", role: "alert" }, error.message));
        }
      });
      cells.push(remove);
    }
    return cells;
  });
}

function openAddMembers(opener, group, members, onDone) {
  dialog("Add members", (close) => {
    const picker = memberPicker("Add members", members, group.members.map((m) => m.id));
    const alert = h("p", { class: "error", role: "alert" });
    const form = h("form", {}, picker.wrap, alert,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, "Add"),
        h("button", { type: "button", onclick: close }, "Cancel")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      alert.textContent = "";
      const ids = picker.picked();
      try {
        for (const id of ids) await call("PUT", ws("groups", group.id, "members", id));
        close();
        announce(`Added ${ids.join(", ")} to ${group.name}`);
        onDone();
      } catch (error) {
        alert.textContent = error.message;
        onDone();
      }
    });
    return form;
  }, opener);
}

function openDelete(opener, group) {
  dialog("Delete group", (close) => {
    const alert = h("p", { class: "error", role: "alert" });
    const confirm = h("button", { type: "button", class: "danger" }, "Delete group");
    confirm.addEventListener("click", async () => {
      try {
        await call("DELETE", ws("groups", group.id));
        close();
        announce(`Deleted group ${group.name}`);
        location.hash = "#/groups";
      } catch (error) {
        alert.textContent = error.message;
      }
    });
    return h("div", {},
      h("p", {}, "The group ", h("strong", {}, group.name),
        " will be permanently removed from all resources, revoking access for all its members. This cannot be undone."),
      alert,
      h("div", { class: "actions" }, confirm,
        // Focus starts on the way out, so Enter on opening does not destroy anything.
        h("button", { type: "button", onclick: close, autofocus: true }, "Cancel")));
  }, opener);
}

function editForm(group, onSaved, onCancel) {
  const name = field("Group name", h("input", { type: "text", value: group.name, autocomplete: "off" }));
  const description = field("Description", h("textarea", { value: group.description || "" }));
  const alert = h("p", { class: "error", role: "alert" });
  const form = h("form", { novalidate: true }, name.wrap, description.wrap, alert,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", onclick: onCancel }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(name, null);
    alert.textContent = "";
    try {
      await call("PATCH", ws("groups", group.id), { name: name.input.value, description: description.input.value });
      announce("Saved");
      onSaved();
    } catch (error) {
      if (isAboutName(error)) setError(name, error.message);
      else alert.textContent = error.message;
    }
  });
  setTimeout(() => name.input.focus(), 0);
  return form;
}

/** A group's page. */
export async function renderGroup(main, ctx, id) {
  let editing = false;
  // Draws overlap when changes come fast; only the newest may paint, or an answer read
  // before a change could land after the one read after it.
  let generation = 0;
  async function draw() {
    generation += 1;
    const mine = generation;
    let group;
    try {
      group = await call("GET", ws("groups", id), undefined, { signal: ctx.signal });
    } catch (error) {
      if (mine !== generation) return;
      if (error instanceof ApiError && error.status === 404) {
        main.replaceChildren(h("h1", {}, "Group not found"),
          h("p", {}, "This group does not exist (it may just have been deleted). "),
          h("a", { href: "#/groups" }, "Back to Groups"));
        return;
      }
      throw error;
    }
    const children = [h("p", {}, h("a", { href: "#/groups" }, "← Groups")), h("h1", {}, group.name)];
    if (editing) {
      children.push(h("section", { "aria-label": "Edit group" },
        editForm(group, () => { editing = false; draw(); }, () => { editing = false; draw(); })));
    } else {
      children.push(h("p", {}, group.description || h("span", { class: "empty" }, "No description.")));
    }
    const actions = h("div", { class: "toolbar" });
    if (ctx.isAdmin) {
      const add = h("button", { type: "button", class: "primary" }, "Add members");
      add.addEventListener("click", async () => {
        const { members } = await call("GET", ws("members"));
        openAddMembers(add, group, members, draw);
      });
      actions.append(add);
      if (!editing) {
        const edit = h("button", { type: "button" }, "Edit");
        edit.addEventListener("click", () => { editing = true; draw(); });
        actions.append(edit);
      }
      const del = h("button", { type: "button", class: "danger" }, "Delete group");
      del.addEventListener("click", () => openDelete(del, group));
      actions.append(del);
    }
    children.push(actions);
    const membersSection = h("section", { "aria-labelledby": "members-heading" },
      h("h2", { id: "members-heading" }, `Members (${group.memberCount})`));
    membersSection.append(group.members.length
      ? table(ctx.isAdmin ? ["Member", "Role", "Action"] : ["Member", "Role"], memberRows(ctx, group, draw), "Members")
      : h("p", { class: "empty" }, "This group has no members."));
    children.push(membersSection);
    if (ctx.isAdmin) {
      const resources = h("section", { "aria-labelledby": "resources-heading" },
        h("h2", { id: "resources-heading" }, "Resources"));
      try {
        const answer = await call("GET", ws("groups", id, "resources"), undefined, { signal: ctx.signal });
        resources.append(answer.resources.length
          ? table(["Resource", "Type", "Access"], answer.resources.map((r) => [
            h("a", { href: `#/${r.type}s/${encodeURIComponent(r.id)}` }, r.id), r.type, r.relation]), "Resources")
          : h("p", { class: "empty" }, "This group is not shared with any connection or workbook."));
      } catch (error) {
        resources.append(h("p", { class: "error" }, error.message));
      }
      children.push(resources);
    }
    if (ctx.signal.aborted || mine !== generation) return;
    main.replaceChildren(...children);
  }
  await follow(() => { if (!editing) draw().catch(() => {}); }, ctx.signal);
  await draw();
}

/** How a group shows in a picker: "Engineering (3 members)". */
export function groupLabel(g) {
  return `${g.name} (${plural(g.memberCount, "member")})`;
}
