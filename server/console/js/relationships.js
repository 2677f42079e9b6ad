// The Relationships screen: a filter (resource type, id, relation, subject) over the
// general read API, shown a page at a time with its cursors, so a store of any size
// answers quickly and the browser never holds more than one page.

import { stream } from "./api.js";
import { field, h, table } from "./dom.js";

const PAGE = 50;

/** `type:id#relation` (relation optional) as the API's subject filter; null if empty. */
function subjectFilter(text) {
  if (!text) return null;
  const [object, relation] = text.split("#");
  const [type, id] = object.split(":");
  const filter = { subjectType: type };
  if (id) filter.optionalSubjectId = id;
  if (relation !== undefined) filter.optionalRelation = { relation };
  return filter;
}

/** A relationship as one line of the text format. */
export function tupleText(r) {
  const subject = r.subject;
  const rel = subject.optionalRelation ? `#${subject.optionalRelation}` : "";
  return `${r.resource.objectType}:${r.resource.objectId}#${r.relation}@${subject.object.objectType}:${subject.object.objectId}${rel}`;
}

/** The Relationships screen. */
export async function renderRelationships(main, ctx) {
  const type = field("Resource type", h("input", { type: "text", autocomplete: "off" }), { inline: true });
  const id = field("Resource id", h("input", { type: "text", autocomplete: "off" }), { inline: true });
  const relation = field("Relation", h("input", { type: "text", autocomplete: "off" }), { inline: true });
  const subject = field("Subject", h("input", { type: "text", autocomplete: "off", placeholder: "user:alice or group:eng#member" }), { inline: true });
  const results = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "toolbar", "aria-label": "Filter relationships", novalidate: true },
    type.wrap, id.wrap, relation.wrap, subject.wrap,
    h("div", { class: "field inline" }, h("button", { type: "submit", class: "primary" }, "Show relationships")));
  main.append(h("h1", {}, "Relationships"),
    h("p", { class: "hint" }, `Pages of ${PAGE}, in the store's stable order; every field is optional (a resource id needs its type).`),
    form, results);
  // The cursors of the pages before the one shown, to go back without re-reading them all.
  let cursors = [];
  let filter = {};
  // Only the newest request may paint: a slow page asked for before a quick one must not
  // land over it.
  let generation = 0;
  async function load(cursor) {
    generation += 1;
    const mine = generation;
    const body = { consistency: { minimizeLatency: true }, relationshipFilter: filter, optionalLimit: PAGE };
    if (cursor) body.optionalCursor = cursor;
    let lines;
    try {
      lines = await stream("/v1/relationships/read", body, { signal: ctx.signal });
    } catch (error) {
      if (mine === generation && !ctx.signal.aborted) {
        results.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
      }
      return;
    }
    if (mine !== generation) return;
    const rows = lines.map((l) => [
      h("span", { class: "mono" }, `${l.relationship.resource.objectType}:${l.relationship.resource.objectId}`),
      h("span", { class: "mono" }, l.relationship.relation),
      h("span", { class: "mono" }, tupleText(l.relationship).split("@")[1]),
    ]);
    const next = lines.length === PAGE ? lines[lines.length - 1].afterResultCursor : null;
    const pageNumber = cursors.length + 1;
    const prevButton = h("button", { type: "button", disabled: cursors.length === 0 }, "Previous page");
    prevButton.addEventListener("click", () => {
      cursors.pop();
      load(cursors.length ? cursors[cursors.length - 1].cursor : null);
    });
    const nextButton = h("button", { type: "button", disabled: !next }, "Next page");
    nextButton.addEventListener("click", () => {
      cursors.push({ cursor: next });
      load(next);
    });
    results.replaceChildren(
      h("p", {}, `Page ${pageNumber}: ${lines.length} relationship${lines.length === 1 ? "" : "s"}${lines.length ? ` (read at ${lines[0].readAt.token})` : ""}.`),
      rows.length ? table(["Resource", "Relation", "Subject"], rows, "Relationships") : h("p", { class: "empty" }, "No relationship matches."),
      h("div", { class: "actions" }, prevButton, nextButton));
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    filter = {};
    if (type.input.value.trim()) filter.resourceType = type.input.value.trim();
    if (id.input.value.trim()) filter.optionalResourceId = id.input.value.trim();
    if (relation.input.value.trim()) filter.optionalRelation = relation.input.value.trim();
    const s = subjectFilter(subject.input.value.trim());
    if (s) filter.optionalSubjectFilter = s;
    cursors = [];
    load(null);
  });
  await load(null);
}
