// The Check screen: may a subject do something to a resource, and why. The why is worked
// out from the expand API: the path of sets that contains the subject ("via
// group:eng#member → connection:sf#grantee"), or for a denial the sets that were empty or
// lacked it. A Lookup mode lists the resources a subject reaches or the subjects of a
// resource.

import { ApiError, general, stream } from "./api.js";
import { field, h } from "./dom.js";

/** `type:id` as the API's object reference; throws on a malformed one. */
function objectRef(text, what) {
  const m = text.trim().match(/^([^:#@\s]+):([^:#@\s]+)$/);
  if (!m) throw new ApiError(400, 3, `${what} must be type:id, like connection:sf`);
  return { objectType: m[1], objectId: m[2] };
}

/** `type:id` or `type:id#relation` as the API's subject reference. */
function subjectRef(text) {
  const [object, relation, extra] = text.trim().split("#");
  if (extra !== undefined) throw new ApiError(400, 3, "subject must be type:id or type:id#relation");
  const ref = { object: objectRef(object, "subject") };
  if (relation) ref.optionalRelation = relation;
  return ref;
}

function nodeName(node) {
  return `${node.expandedObject.objectType}:${node.expandedObject.objectId}#${node.expandedRelation}`;
}

function subjectName(ref) {
  return `${ref.object.objectType}:${ref.object.objectId}${ref.optionalRelation ? `#${ref.optionalRelation}` : ""}`;
}

function sameSubject(a, b) {
  const wildcard = a.object.objectId === "*" && !b.optionalRelation;
  return a.object.objectType === b.object.objectType &&
    (wildcard || a.object.objectId === b.object.objectId) &&
    (a.optionalRelation || "") === (b.optionalRelation || "");
}

/**
 * The steps by which `node`'s set contains `subject` (innermost first), or null; every
 * set found empty or lacking the subject is added to `misses`. Usersets in a leaf are
 * expanded in turn (flat schemas keep this shallow; `depth` bounds it anyway).
 */
async function explain(node, subject, token, misses, depth) {
  const name = nodeName(node);
  if (node.leaf) {
    const subjects = node.leaf.subjects || [];
    if (!subjects.length) {
      misses.push(`${name} is empty`);
      return null;
    }
    for (const s of subjects) {
      if (sameSubject(s, subject)) return [name];
    }
    if (depth < 6) {
      for (const s of subjects.filter((x) => x.optionalRelation)) {
        const inner = await expand(s.object, s.optionalRelation, token);
        const path = await explain(inner, subject, token, [], depth + 1);
        if (path) return [...path, name];
      }
    }
    misses.push(`${name} does not contain ${subjectName(subject)}`);
    return null;
  }
  const { operation, children = [] } = node.intermediate || {};
  if (operation === "OPERATION_UNION") {
    for (const child of children) {
      const path = await explain(child, subject, token, misses, depth);
      if (path) return path;
    }
    return null;
  }
  if (operation === "OPERATION_INTERSECTION") {
    const paths = [];
    for (const child of children) {
      const path = await explain(child, subject, token, misses, depth);
      if (!path) return null;
      paths.push(path);
    }
    return [paths.map((p) => p.join(" → ")).join(", and via ")];
  }
  if (operation === "OPERATION_EXCLUSION") {
    const [base, ...rest] = children;
    const path = base ? await explain(base, subject, token, misses, depth) : null;
    if (!path) return null;
    for (const child of rest) {
      if (await explain(child, subject, token, [], depth)) {
        misses.push(`${subjectName(subject)} is excluded by ${nodeName(child)}`);
        return null;
      }
    }
    return path;
  }
  return null;
}

async function expand(resource, permission, token) {
  const answer = await general("/v1/permissions/expand", {
    consistency: { atLeastAsFresh: token },
    resource,
    permission,
  });
  return answer.treeRoot;
}

/** Check, then the why: the path that grants, or the sets that came up empty. */
async function runCheck(resourceText, permission, subjectText) {
  const resource = objectRef(resourceText, "resource");
  const subject = subjectRef(subjectText);
  const answer = await general("/v1/permissions/check", {
    consistency: { fullyConsistent: true },
    resource,
    permission,
    subject,
  });
  const allowed = answer.permissionship === "PERMISSIONSHIP_HAS_PERMISSION";
  const tree = await expand(resource, permission, answer.checkedAt);
  const misses = [];
  const path = await explain(tree, subject, answer.checkedAt, misses, 0);
  const out = [h("p", { class: allowed ? "answer yes" : "answer no" },
    allowed ? "Allowed" : "Not allowed"),
  h("p", { class: "hint" }, `${subjectName(subject)} ${allowed ? "has" : "does not have"} ${permission} on ${resource.objectType}:${resource.objectId}, checked at ${answer.checkedAt.token}.`)];
  if (allowed && path) {
    out.push(h("p", {}, "Why: ", h("span", { class: "mono" }, `via ${path.join(" → ")}`)));
  } else if (!allowed) {
    out.push(h("p", {}, "Why not: the subject is in none of the sets that would grant it:"),
      h("ul", {}, misses.map((m) => h("li", { class: "mono" }, m))));
  }
  return out;
}

async function runLookup(mode, a, permission, b) {
  if (mode === "resources") {
    const subject = subjectRef(b);
    const results = await stream("/v1/permissions/resources", {
      consistency: { fullyConsistent: true }, resourceObjectType: a.trim(), permission, subject, optionalLimit: 100,
    });
    return [h("p", {}, `${results.length} ${a.trim()} resource${results.length === 1 ? "" : "s"} where ${subjectName(subject)} has ${permission}${results.length === 100 ? " (first 100)" : ""}:`),
      h("ul", {}, results.map((r) => h("li", { class: "mono" }, `${a.trim()}:${r.resourceObjectId}`)))];
  }
  const resource = objectRef(a, "resource");
  const [type, relation] = b.trim().split("#");
  const body = {
    consistency: { fullyConsistent: true }, resource, permission, subjectObjectType: type, optionalConcreteLimit: 100,
  };
  if (relation) body.optionalSubjectRelation = relation;
  const results = await stream("/v1/permissions/subjects", body);
  return [h("p", {}, `${results.length} subject${results.length === 1 ? "" : "s"} with ${permission} on ${a.trim()}:`),
    h("ul", {}, results.map((r) => h("li", { class: "mono" },
      `${type}:${r.subject.subjectObjectId}${relation ? `#${relation}` : ""}${(r.excludedSubjects || []).length ? ` (except ${r.excludedSubjects.map((e) => e.subjectObjectId).join(", ")})` : ""}`)))];
}

/** The Check screen. */
export async function renderCheck(main) {
  const mode = field("Mode", h("select", {},
    h("option", { value: "check" }, "Check"),
    h("option", { value: "resources" }, "Lookup resources"),
    h("option", { value: "subjects" }, "Lookup subjects")), { inline: true });
  const first = field("Resource", h("input", { type: "text", autocomplete: "off", placeholder: "connection:sf" }), { inline: true });
  const permission = field("Permission", h("input", { type: "text", autocomplete: "off", placeholder: "use" }), { inline: true });
  const last = field("Subject", h("input", { type: "text", autocomplete: "off", placeholder: "user:alice" }), { inline: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Check");
  const result = h("div", { role: "status", "aria-live": "polite" });
  const labels = {
    check: ["Resource", "Subject", "Check", "connection:sf", "user:alice"],
    resources: ["Resource type", "Subject", "Look up", "connection", "user:alice"],
    subjects: ["Resource", "Subject type", "Look up", "connection:sf", "user or group#member"],
  };
  mode.input.addEventListener("change", () => {
    const [a, b, button, pa, pb] = labels[mode.input.value];
    first.wrap.querySelector("label").textContent = a;
    last.wrap.querySelector("label").textContent = b;
    first.input.placeholder = pa;
    last.input.placeholder = pb;
    submit.textContent = button;
    result.replaceChildren();
  });
  const form = h("form", { class: "toolbar", "aria-label": "Check a permission", novalidate: true },
    mode.wrap, first.wrap, permission.wrap, last.wrap, h("div", { class: "field inline" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.replaceChildren(h("p", {}, "Asking…"));
    try {
      const out = mode.input.value === "check"
        ? await runCheck(first.input.value, permission.input.value.trim(), last.input.value)
        : await runLookup(mode.input.value, first.input.value, permission.input.value.trim(), last.input.value);
      result.replaceChildren(...out);
    } catch (error) {
      result.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
    }
  });
  main.append(h("h1", {}, "Check"),
    h("p", { class: "hint" }, "Type any object (type:id) and subject (type:id or type:id#relation), as the engine names them."),
    form, result);
}
