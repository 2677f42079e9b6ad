// Building the page from data without ever parsing it as HTML: every string becomes a
// text node or an attribute value, so a group named `<img src=x onerror=alert(1)>` is
// shown as those characters.

let nextId = 0;

/** A fresh id for pairing labels, hints and errors with their inputs. */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * An element: `attrs` are attributes (`on*` functions become listeners, `false`/`null`
 * values are left out), children are nodes or strings (as text) or arrays of them.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "value") {
      el.value = value;
    } else if (name === "checked") {
      el.checked = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends strings (as text) and nodes, flattening arrays. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A labelled input: `{ wrap, input, error }`; the error node is described by the input. */
export function field(labelText, input, { hint, inline } = {}) {
  const id = input.id || uid("f");
  input.id = id;
  const error = h("p", { class: "error", id: `${id}-error`, hidden: true });
  const described = [error.id];
  let hintNode = null;
  if (hint) {
    hintNode = h("p", { class: "hint", id: `${id}-hint` }, hint);
    described.unshift(hintNode.id);
  }
  input.setAttribute("aria-describedby", described.join(" "));
  const wrap = h("div", { class: inline ? "field inline" : "field" },
    h("label", { for: id }, labelText), input, hintNode, error);
  return { wrap, input, error };
}

/** Shows `message` beside a field (or clears it with `null`). */
export function setError(f, message) {
  f.error.textContent = message || "";
  f.error.hidden = !message;
  if (message) f.input.setAttribute("aria-invalid", "true");
  else f.input.removeAttribute("aria-invalid");
}

/** A table with the given column headers and rows (arrays of cells). */
export function table(headers, rows, caption) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))));
}

/**
 * A modal dialog named by its heading. `build(close)` returns the body; the dialog is
 * removed from the page when it closes (Escape included) and focus returns to `opener`.
 */
export function dialog(title, build, opener) {
  const headingId = uid("dlg");
  const dlg = h("dialog", { "aria-labelledby": headingId });
  const close = () => dlg.close();
  dlg.append(h("h2", { id: headingId }, title), build(close));
  dlg.addEventListener("close", () => {
    dlg.remove();
    if (opener && opener.isConnected) opener.focus();
  });
  document.body.append(dlg);
  dlg.showModal();
  return dlg;
}

/** Says `message` to screen readers (the page's polite live region). */
export function announce(message) {
  const region = document.getElementById("announce");
  if (region) {
    region.textContent = "";
    region.textContent = message;
  }
}

/** A plain-language count: "1 member", "3 members". */
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
