/* archc graph page: draws the network embedded as JSON in #archc-data.
 *
 * Layout is dagre's (window.dagreD3.dagre, inlined by archc at generation time); this
 * script only decides what is visible (which block instances are open), measures the
 * boxes, and draws dagre's positions as SVG. Every number shown comes from the data:
 * archc formatted it (archc/report/numbers.py), nothing is computed here. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("archc-data").textContent);
  const dagre = window.dagreD3.dagre;
  const NS = "http://www.w3.org/2000/svg";
  const CHAR_W = 7.3, LINE_H = 15, PAD_X = 10, PAD_Y = 7, TITLE_CHAR_W = 6.9;
  const nodes = new Map(data.nodes.map((n) => [n.id, n]));
  const insts = new Map(data.instances.map((i) => [i.id, i]));
  const layers = new Map(data.report.layers.map((l) => [l.id, l]));
  const outputs = new Set(data.outputs);
  const collapsed = new Set(data.instances.filter((i) => i.depth > data.depth).map((i) => i.id));
  let selected = null;

  // ---- what is visible ---------------------------------------------------------------
  function ownerOf(node) { // the outermost collapsed instance around the node, else itself
    for (const iid of node.scope) if (collapsed.has(iid)) return iid;
    return node.id;
  }

  function clusterTitle(inst) {
    return (collapsed.has(inst.id) ? "\u25b8 " : "\u25be ") + inst.label + " \u00b7 " + inst.block;
  }

  // a box's text: lines of [text, css class] pieces — "conv1 conv2d" / "[64, 112, 112] · 9,408 params"
  function boxLines(id) {
    if (id === "input") return [[["input", "title"]], [[data.input_shape, ""]]];
    const inst = insts.get(id);
    if (inst) return [[[inst.label, "title"], [" " + inst.block, "op"]],
                      [[inst.shape, ""], [" \u00b7 " + inst.params + " params", "dim"]],
                      [[inst.layers + " layers \u00b7 click to open", "dim"]]];
    const n = nodes.get(id);
    return [[[n.local, "title"], [" " + n.op, "op"]], [[n.shape, ""], [" \u00b7 " + n.params + " params", "dim"]]];
  }

  function visible() {
    const owners = new Map([["input", "input"]]);
    const boxes = [{id: "input", cluster: null}];
    const seen = new Set(["input"]);
    for (const n of data.nodes) {
      const id = ownerOf(n);
      owners.set(n.id, id);
      if (seen.has(id)) continue;
      seen.add(id);
      const inst = insts.get(id);
      boxes.push({id: id, cluster: inst ? inst.parent : (n.scope[n.scope.length - 1] || null)});
    }
    const edges = new Map();
    for (const n of data.nodes) {
      for (const src of n.inputs) {
        const a = owners.get(src), b = owners.get(n.id);
        if (a !== b) edges.set(a + "\u0000" + b, [a, b]);
      }
    }
    return {boxes: boxes, edges: [...edges.values()]};
  }

  function ancestors(iid) { // the instance and its parents, innermost first
    const out = [];
    for (let i = insts.get(iid); i; i = insts.get(i.parent)) out.push(i);
    return out;
  }

  // ---- layout --------------------------------------------------------------------------
  // Text is measured in the page's own fonts (a hidden SVG), so boxes fit their text
  // whatever monospace font the reader's system has; the estimate is the fallback.
  const measure = (function () {
    const svg = el("svg", {"aria-hidden": "true",
                           style: "position:absolute;left:-9999px;top:0;visibility:hidden"});
    document.body.appendChild(svg);
    const parents = {box: el("g", {"class": "box"}, svg), title: el("g", {"class": "cluster-title"}, svg)};
    const cache = new Map();
    return function (pieces, kind) {
      const key = kind + "\u0000" + pieces.map((p) => p[1] + "\u0001" + p[0]).join("\u0000");
      if (!cache.has(key)) {
        const t = el("text", {}, parents[kind]);
        for (const [text, cls] of pieces) el("tspan", {"class": cls}, t).textContent = text;
        const chars = pieces.reduce((sum, p) => sum + p[0].length, 0);
        cache.set(key, t.getComputedTextLength() || chars * (kind === "box" ? CHAR_W : TITLE_CHAR_W));
        t.remove();
      }
      return cache.get(key);
    };
  })();

  function boxSize(box) {
    const lines = boxLines(box.id);
    let width = Math.max(...lines.map((line) => measure(line, "box"))) + 2 * PAD_X;
    // a cluster is at least as wide as its widest box: keep titles inside their cluster
    for (const inst of box.cluster ? ancestors(box.cluster) : []) {
      width = Math.max(width, measure([[clusterTitle(inst), ""]], "title") + 2 * PAD_X);
    }
    return {width: Math.ceil(width), height: lines.length * LINE_H + 2 * PAD_Y};
  }

  function layout(view) {
    const g = new dagre.graphlib.Graph({compound: true});
    g.setGraph({rankdir: "TB", nodesep: 26, ranksep: 40, edgesep: 14, marginx: 16, marginy: 16});
    g.setDefaultEdgeLabel(() => ({}));
    const clusters = new Set();
    for (const box of view.boxes) {
      g.setNode(box.id, Object.assign({kind: "box"}, boxSize(box)));
      if (!box.cluster) continue;
      g.setParent(box.id, "cluster:" + box.cluster);
      for (const inst of ancestors(box.cluster)) clusters.add(inst);
    }
    for (const inst of clusters) {
      g.setNode("cluster:" + inst.id, {kind: "cluster", inst: inst});
      if (inst.parent) g.setParent("cluster:" + inst.id, "cluster:" + inst.parent);
    }
    for (const [a, b] of view.edges) g.setEdge(a, b);
    dagre.layout(g);
    return g;
  }

  // levels by longest path: an edge that jumps over a level is a skip connection
  function levels(view) {
    const incoming = new Map();
    for (const [from, to] of view.edges) {
      if (!incoming.has(to)) incoming.set(to, []);
      incoming.get(to).push(from);
    }
    const level = new Map();
    for (const b of view.boxes) { // topological order
      let l = 0;
      for (const from of incoming.get(b.id) || []) l = Math.max(l, (level.get(from) || 0) + 1);
      level.set(b.id, l);
    }
    return level;
  }

  // ---- drawing -------------------------------------------------------------------------
  function el(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function drawCluster(svg, inst, c) {
    const grp = el("g", {"class": "cluster", "data-id": inst.id, "data-depth": inst.depth}, svg);
    el("rect", {x: c.x - c.width / 2, y: c.y - c.height / 2, width: c.width, height: c.height}, grp);
  }

  // titles are drawn after the edges, on a halo, so an edge entering a cluster never hides one
  function drawClusterTitle(svg, inst, c) {
    const grp = el("g", {"class": "cluster-title", "data-id": inst.id}, svg);
    const t = el("text", {x: c.x - c.width / 2 + 6, y: c.y - c.height / 2 + 13}, grp);
    t.textContent = clusterTitle(inst);
    el("title", {}, grp).textContent = inst.id + " (" + inst.block + "): " + inst.layers +
      " layers, params " + inst.params + ", MACs " + (inst.macs || "0") + " \u2014 click to close";
    grp.addEventListener("click", () => toggle(inst.id));
  }

  function drawBox(svg, id, n) {
    const inst = insts.get(id);
    const kind = id === "input" ? "io" : inst ? "block" : "layer";
    const out = [...outputs].some((o) => o === id || (inst && o.startsWith(id + ".")));
    const grp = el("g", {"class": "box " + kind + (id === selected ? " selected" : "") + (out ? " output" : ""),
                         "data-id": id}, svg);
    el("rect", {x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height,
                rx: inst ? 8 : 3}, grp);
    boxLines(id).forEach((line, i) => {
      const t = el("text", {x: n.x - n.width / 2 + PAD_X, y: n.y - n.height / 2 + PAD_Y + 11 + i * LINE_H}, grp);
      for (const [text, cls] of line) el("tspan", {"class": cls}, t).textContent = text;
    });
    el("title", {}, grp).textContent = tooltip(id);
    grp.addEventListener("click", () => (inst ? toggle(id) : id !== "input" && show(id)));
  }

  function tooltip(id) {
    if (id === "input") return "network input " + data.input_shape;
    const inst = insts.get(id);
    if (inst) return inst.id + " (" + inst.block + "): " + inst.layers + " layers\nparams " +
      inst.params + "\nMACs " + (inst.macs || "0") + "\nclick to open";
    const n = nodes.get(id);
    const attrs = Object.entries(layers.get(id).attrs).map(([k, v]) => k + ": " + attrText(v));
    return [n.id + " (" + n.op + ")" + (outputs.has(id) ? " \u2014 network output" : ""),
            "shape " + n.shape, "params " + n.params, "MACs " + (n.macs || "0"),
            "receptive field " + n.rf].concat(attrs, [n.source || "", "click for details"]).join("\n");
  }

  function drawEdge(svg, from, to, e, level) {
    const p = e.points;
    let d = "M" + p[0].x + "," + p[0].y;
    for (let i = 1; i < p.length; i++) d += " L" + p[i].x + "," + p[i].y;
    const skip = level.get(to) - level.get(from) > 1;
    el("path", {d: d, "class": "edge" + (skip ? " skip" : ""), "data-from": from, "data-to": to,
                "marker-end": skip ? "url(#arrow-skip)" : "url(#arrow)"}, svg);
  }

  function markers(svg) {
    const defs = el("defs", {}, svg);
    for (const [id, color] of [["arrow", "#6b7a90"], ["arrow-skip", "#d9730d"]]) {
      const m = el("marker", {id: id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
                              markerHeight: 7, orient: "auto-start-reverse"}, defs);
      el("path", {d: "M0,0 L10,5 L0,10 z", fill: color}, m);
    }
  }

  function render() {
    const view = visible();
    const g = layout(view);
    const svg = document.getElementById("graph");
    svg.replaceChildren();
    svg.setAttribute("width", Math.ceil(g.graph().width));
    svg.setAttribute("height", Math.ceil(g.graph().height));
    markers(svg);
    const cl = g.nodes().filter((v) => g.node(v).kind === "cluster");
    cl.sort((a, b) => g.node(a).inst.depth - g.node(b).inst.depth); // outer first, inner on top
    for (const v of cl) drawCluster(svg, g.node(v).inst, g.node(v));
    const level = levels(view);
    for (const e of g.edges()) drawEdge(svg, e.v, e.w, g.edge(e), level);
    for (const v of cl) drawClusterTitle(svg, g.node(v).inst, g.node(v));
    for (const box of view.boxes) drawBox(svg, box.id, g.node(box.id));
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  }

  // ---- interaction ---------------------------------------------------------------------
  function toggle(iid) {
    if (collapsed.has(iid)) collapsed.delete(iid); else collapsed.add(iid);
    render();
  }

  // A key/value pair as <wrap><keyTag>key</keyTag><valueTag>value</valueTag></wrap>.
  function pair(parent, wrap, keyTag, valueTag, key, value) {
    const el = document.createElement(wrap);
    const k = document.createElement(keyTag), v = document.createElement(valueTag);
    k.textContent = key;
    v.textContent = value;
    el.append(k, v);
    parent.appendChild(el);
  }

  function row(table, key, value) {
    pair(table, "tr", "th", "td", key, value);
  }

  function attrText(v) { // [3, 3] as the YAML would say it; strings and numbers as JSON
    return Array.isArray(v) ? "[" + v.map(attrText).join(", ") + "]" : JSON.stringify(v);
  }

  function show(id) {
    const n = nodes.get(id), l = layers.get(id);
    selected = id;
    const panel = document.getElementById("details");
    panel.replaceChildren();
    const close = document.createElement("button");
    close.textContent = "\u00d7";
    close.title = "close";
    close.addEventListener("click", () => { panel.hidden = true; selected = null; render(); });
    const h = document.createElement("h2");
    h.textContent = n.id;
    const table = document.createElement("table");
    row(table, "op", n.op);
    row(table, "inputs", n.inputs.join(", "));
    row(table, "output shape", n.shape);
    row(table, "params", n.params + (l.trainable ? "" : " (frozen)"));
    row(table, "buffers", l.buffers === null ? "?" : String(l.buffers));
    row(table, "MACs", (n.macs || "0") + (l.macs ? " (" + l.macs.toLocaleString("en-US") + ")" : ""));
    row(table, "receptive field", n.rf);
    for (const [k, v] of Object.entries(l.attrs)) row(table, k, attrText(v));
    row(table, "block", l.block || "\u2014");
    row(table, "source", n.source || "?");
    row(table, "spec path", n.path);
    panel.append(close, h, table);
    panel.hidden = false;
    render();
  }

  function header() {
    const r = data.report;
    const h = document.getElementById("title");
    h.textContent = r.name;
    const small = document.createElement("small");
    small.textContent = r.file + " \u00b7 " + data.nodes.length + " layers";
    h.appendChild(small);
    const dl = document.getElementById("totals");
    for (const [k, v] of data.totals) pair(dl, "div", "dt", "dd", k, v);
    document.getElementById("expand-all").addEventListener("click", () => {
      collapsed.clear();
      render();
    });
    document.getElementById("collapse-all").addEventListener("click", () => {
      for (const i of data.instances) collapsed.add(i.id);
      render();
    });
  }

  header();
  render();
})();
