// The Schema screen: the canonical schema text the server prints, and an SVG diagram of
// its definitions with an arrow for each allowed subject type (dashed for usersets) and
// for each `->` arrow of a permission.

import { general } from "./api.js";
import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Definitions, relations (with subject types) and permissions (with arrows) of `text`. */
export function parseSchema(text) {
  const definitions = [];
  let current = null;
  const clean = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/[^\n]*/g, "");
  for (const raw of clean.split("\n")) {
    const line = raw.trim().replace(/;$/, "");
    let m;
    if ((m = line.match(/^definition\s+([a-z0-9_/]+)\s*\{/))) {
      current = { name: m[1], members: [] };
      definitions.push(current);
      if (line.endsWith("}")) current = null;
    } else if (current && (m = line.match(/^relation\s+(\w+)\s*:\s*(.+)$/))) {
      const types = m[2].split("|").map((t) => t.trim()).filter(Boolean).map((t) => {
        const [type, rel] = t.split("#");
        return { text: t, type: type.replace(/:\*$/, ""), userset: Boolean(rel), wildcard: t.endsWith(":*") };
      });
      current.members.push({ kind: "relation", name: m[1], types });
    } else if (current && (m = line.match(/^permission\s+(\w+)\s*=\s*(.+)$/))) {
      const arrows = [...m[2].matchAll(/(\w+)\s*->\s*(\w+)/g)].map((a) => ({ via: a[1], target: a[2] }));
      current.members.push({ kind: "permission", name: m[1], expr: m[2], arrows });
    } else if (line === "}") {
      current = null;
    }
  }
  return definitions;
}

const BOX_W = 310;
const LINE = 16;
const HEAD = 26;
const GAP_X = 90;
const GAP_Y = 40;

/** The diagram of `definitions` as an SVG element. */
export function diagram(definitions) {
  const columns = Math.max(1, Math.min(3, definitions.length));
  const boxes = new Map();
  const rowHeights = [];
  definitions.forEach((d, i) => {
    const row = Math.floor(i / columns);
    const height = HEAD + LINE * Math.max(1, d.members.length) + 8;
    rowHeights[row] = Math.max(rowHeights[row] || 0, height);
  });
  const rowTop = [];
  rowHeights.reduce((top, height, row) => { rowTop[row] = top; return top + height + GAP_Y; }, 30);
  definitions.forEach((d, i) => {
    const row = Math.floor(i / columns);
    boxes.set(d.name, { d, x: 20 + (i % columns) * (BOX_W + GAP_X), y: rowTop[row], h: HEAD + LINE * Math.max(1, d.members.length) + 8 });
  });
  const width = 120 + columns * BOX_W + (columns - 1) * GAP_X;
  const height = rowTop.length ? rowTop[rowTop.length - 1] + rowHeights[rowHeights.length - 1] + 50 : 80;
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "diagram-title" });
  svg.append(s("title", { id: "diagram-title" },
    `Diagram of ${definitions.length} definitions: arrows from each relation to the types it allows, dashed for usersets, and from each permission along its -> arrows`));
  const defs = s("defs");
  for (const [id, color] of [["head", "#57606a"], ["head-userset", "#0969da"], ["head-arrow", "#9a6700"]]) {
    const marker = s("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.append(s("path", { d: "M0,0 L10,5 L0,10 z", fill: color }));
    defs.append(marker);
  }
  svg.append(defs);
  const edges = s("g");
  const nodes = s("g");
  svg.append(edges, nodes);
  svg.append(s("text", { class: "legend", x: 20, y: 18 },
    "solid: relation → allowed type · dashed: userset (T#rel) · brown: permission arrow (rel->perm)"));
  const memberY = (box, index) => box.y + HEAD + LINE * index + 4;
  function edge(fromBox, index, toName, cls, marker, label) {
    const to = boxes.get(toName);
    if (!to) return;
    const y1 = memberY(fromBox, index);
    const x1 = fromBox.x + BOX_W;
    const x2 = to === fromBox ? to.x + BOX_W : (to.x >= fromBox.x + BOX_W ? to.x : to.x + BOX_W);
    const y2 = to.y + HEAD / 2;
    const bend = to === fromBox ? 50 : Math.max(40, Math.abs(x2 - x1) / 2);
    const c2 = x2 === to.x ? x2 - bend : x2 + bend;
    const path = s("path", { class: `edge ${cls}`, d: `M${x1},${y1} C${x1 + bend},${y1} ${c2},${y2} ${x2},${y2}`, "marker-end": `url(#${marker})` });
    path.append(s("title", {}, label));
    edges.append(path);
  }
  for (const box of boxes.values()) {
    const g = s("g");
    g.append(s("rect", { class: "box", x: box.x, y: box.y, width: BOX_W, height: box.h, rx: 6 }));
    g.append(s("text", { class: "title", x: box.x + 10, y: box.y + 17 }, `definition ${box.d.name}`));
    box.d.members.forEach((m, i) => {
      const summary = m.kind === "relation" ? `${m.name}: ${m.types.map((t) => t.text).join(" | ")}` : `${m.name} = ${m.expr}`;
      const shown = summary.length > 38 ? `${summary.slice(0, 37)}…` : summary;
      const text = s("text", { class: "member", x: box.x + 10, y: memberY(box, i) + 4 }, `${m.kind === "relation" ? "rel" : "perm"} ${shown}`);
      text.append(s("title", {}, `${m.kind} ${summary}`));
      g.append(text);
      if (m.kind === "relation") {
        for (const t of m.types) {
          edge(box, i, t.type, t.userset ? "userset" : "", t.userset ? "head-userset" : "head", `${box.d.name}#${m.name} allows ${t.text}`);
        }
      } else {
        for (const a of m.arrows) {
          const via = box.d.members.find((r) => r.kind === "relation" && r.name === a.via);
          for (const t of via ? via.types : []) {
            edge(box, i, t.type, "arrow", "head-arrow", `${box.d.name}#${m.name}: ${a.via}->${a.target} on ${t.type}`);
          }
        }
      }
    });
    nodes.append(g);
  }
  return svg;
}

/** The Schema screen. */
export async function renderSchema(main, ctx) {
  const answer = await general("/v1/schema/read", {}, { signal: ctx.signal });
  const definitions = parseSchema(answer.schemaText);
  main.append(
    h("h1", {}, "Schema"),
    h("p", { class: "hint" }, `Read at revision ${answer.readAt.token}; ${definitions.length} definitions.`),
    h("h2", {}, "Diagram"),
    h("div", { class: "diagram" }, diagram(definitions)),
    h("h2", {}, "Canonical text"),
    h("pre", { class: "schema", tabindex: "0", "aria-label": "Canonical schema text" }, answer.schemaText));
}
