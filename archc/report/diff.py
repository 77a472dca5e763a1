"""``archc diff A B``: the comparison of archc/analysis/diff.py as a table, markdown or JSON
(``archc.diff/1``, schema archc/report/diff.schema.json), and whether A's checkpoint
loads into B by name."""

from __future__ import annotations

import json

from archc.analysis.diff import Diff, blocks, diff, totals, values
from archc.report import numbers as N

FORMAT = "archc.diff/1"


def load_side(target: str, overrides: dict, preset):
    """One side: an .onnx file (imported on the fly) or a spec, FILE:NETWORK or zoo name."""
    if str(target).lower().endswith(".onnx"):
        from archc.importers.onnx_view import onnx_graphs  # --set/--preset on it: an error

        return onnx_graphs(target, overrides, preset)[0]
    from archc.api import load

    return load(target, None, overrides, preset)


def checkpoint_fit(a, b) -> dict:
    """Whether A's state_dict loads into B by name: keys missing (in B, not in A), unexpected
    (in A, not in B), and of another shape. Both state_dicts come from the graphs alone
    (archc/backends/torch/state.py: each op's tensors, the generated module's names): no
    torch, no module built."""
    from archc.backends.torch.state import state_dict_shapes

    sa = {k: list(v) for k, v in state_dict_shapes(a).items()}
    sb = {k: list(v) for k, v in state_dict_shapes(b).items()}
    missing = [k for k in sb if k not in sa]
    unexpected = [k for k in sa if k not in sb]
    shapes = [{"key": k, "a": sa[k], "b": sb[k]} for k in sa if k in sb and sa[k] != sb[k]]
    return {"loads": not (missing or unexpected or shapes), "missing": missing, "unexpected": unexpected,
            "other_shape": shapes}


def compare(a, b, with_checkpoint: bool = True) -> Diff:
    d = diff(a, b)
    d.checkpoint = checkpoint_fit(a, b) if with_checkpoint else None
    return d


# --------------------------------------------------------------------------- grouping


def _groups(nodes, graph) -> list[tuple[str, list]]:
    """Nodes grouped by the outermost block instance they fill entirely (17 added
    bottlenecks are 17 lines, not 170); a node in no such instance stands alone."""
    chosen = {id(n) for n in nodes}
    members: dict[str, list] = {}
    for n in graph.nodes:
        parts = n.name.split(".")
        for k in range(1, len(parts)):
            members.setdefault(".".join(parts[:k]), []).append(n)
    out, seen = [], set()
    for n in nodes:
        if id(n) in seen:
            continue
        parts = n.name.split(".")
        for k in range(1, len(parts)):
            prefix = ".".join(parts[:k])
            group = members[prefix]
            if all(id(m) in chosen for m in group):
                out.append((prefix, group))
                seen.update(id(m) for m in group)
                break
        else:
            out.append((n.name, [n]))
            seen.add(id(n))
    return out


def _sum(nodes, key):
    return sum(n.meta.get(key) or 0 for n in nodes)


def _signed(n, fmt=N.count) -> str:
    return ("+" if n > 0 else "−" if n < 0 else "±") + fmt(abs(n))


def _what(name, group) -> str:
    if len(group) == 1:
        n = group[0]
        return f"{n.op} {N.shape(n.meta.get('shape'))}"
    kinds = dict(zip(group[0].scope, group[0].blocks))  # instance name -> its block's name
    return f"{kinds.get(name, 'block')}, {len(group)} nodes"


def _change_text(c) -> str:
    va, vb = values(c.a), values(c.b)
    parts = []
    for f in c.fields:
        if f == "attrs":
            keys = sorted(set(va["attrs"]) | set(vb["attrs"]))
            parts += [f"{k} {va['attrs'].get(k)} -> {vb['attrs'].get(k)}" for k in keys
                      if va["attrs"].get(k) != vb["attrs"].get(k)]
        elif f == "shape":
            parts.append(f"shape {N.shape(va['shape'])} -> {N.shape(vb['shape'])}")
        elif f in ("params", "macs"):
            parts.append(f"{f} {N.count(va[f])} -> {N.count(vb[f])}")
        elif f == "inputs":  # each side's own ids: the pairing is in the other lines
            parts.append(f"inputs {_names(va['inputs'])} -> {_names(vb['inputs'])}")
        else:
            parts.append(f"op {va['op']} -> {vb['op']}")
    return "; ".join(parts)


def _names(ids) -> str:
    return "[" + ", ".join(ids) + "]"


def _outputs_line(d: Diff) -> str | None:
    return f"outputs: {_names(d.outputs[0])} -> {_names(d.outputs[1])}" if d.outputs else None


def rows(d: Diff) -> list[tuple[str, str, str, str]]:
    """(status, id, what, detail) lines in the order of the graphs."""
    out = []
    for name, group in _groups(d.removed, d.a):
        out.append(("removed", name, _what(name, group), f"{_signed(-_sum(group, 'params'))} params"))
    for c in d.changed:
        label = c.a.name if c.a.name == c.b.name else f"{c.a.name} -> {c.b.name}"
        out.append(("changed", label, c.b.op, _change_text(c)))
    for x, y in d.renamed:
        out.append(("renamed", f"{x.name} -> {y.name}", x.op, ""))
    for name, group in _groups(d.added, d.b):
        out.append(("added", name, _what(name, group), f"{_signed(_sum(group, 'params'))} params"))
    return out


# --------------------------------------------------------------------------- rendering


def _label(g) -> str:
    """The side's network with its --set overrides (a side of `--set-b classes=10` must read
    otherwise than the same file without), then its file."""
    from archc.report.variant import value_text, variant_name

    name = " ".join([variant_name(g), *(f"--set {k}={value_text(v)}" for k, v in g.overrides.items())])
    return f"{name} ({g.file})" if g.file else name


def _checkpoint_lines(d: Diff) -> list[str]:
    c = d.checkpoint
    if c is None:
        return []
    if c["loads"]:
        return ["checkpoint: A's state_dict loads into B as is (every key and shape agrees)"]
    parts = [f"{len(c[k])} {w}" for k, w in (("missing", "missing"), ("unexpected", "unexpected"),
                                             ("other_shape", "of another shape")) if c[k]]
    lines = [f"checkpoint: A's state_dict does not load into B as is: keys {', '.join(parts)}"]
    for k, w in (("missing", "missing"), ("unexpected", "unexpected")):
        if c[k]:
            lines.append(f"  {w}: " + ", ".join(c[k][:5]) + (" …" if len(c[k]) > 5 else ""))
    for s in c["other_shape"][:5]:
        lines.append(f"  other shape: {s['key']} {s['a']} -> {s['b']}")
    return lines


def render_table(d: Diff) -> str:
    lines = [f"A: {_label(d.a)}", f"B: {_label(d.b)}"]
    r = rows(d)
    if d.identical:
        lines.append("no difference in structure or counts")
    else:
        width = max((len(x[1]) for x in r), default=0)
        lines += [f"  {s:<8} {i:<{width}}  {w}" + (f"  {t}" if t else "") for s, i, w, t in r]
        lines += [x for x in [_outputs_line(d)] if x]
    lines.append(f"  {'':<8} {'A':>15} {'B':>15} {'delta':>15}")
    for name, x, y in totals(d):
        delta = _signed(y - x) if x is not None and y is not None else N.UNKNOWN
        lines.append(f"  {name:<8} {N.count(x):>15} {N.count(y):>15} {delta:>15}")
    for b in blocks(d):
        lines.append(f"block {b['block']}: {b['added']} added, {b['removed']} removed, {b['changed']} changed, "
                     f"{_signed(b['params'])} params, {_signed(b['macs'], N.si)} MACs")
    lines += _checkpoint_lines(d)
    return "\n".join(lines) + "\n"


def render_markdown(d: Diff) -> str:
    lines = [f"## {_label(d.a)} → {_label(d.b)}", ""]
    if d.identical:
        lines += ["No difference in structure or counts.", ""]
    else:
        r = rows(d)
        if r:
            lines += ["| change | id | what | detail |", "|---|---|---|---|"]
            lines += [f"| {s} | `{i}` | {w} | {t} |" for s, i, w, t in r]
            lines.append("")
        if d.outputs:
            lines += [_outputs_line(d), ""]
    lines += ["| | A | B | delta |", "|---|---:|---:|---:|"]
    for name, x, y in totals(d):
        delta = _signed(y - x) if x is not None and y is not None else N.UNKNOWN
        lines.append(f"| {name} | {N.count(x)} | {N.count(y)} | {delta} |")
    check = _checkpoint_lines(d)
    if check:
        lines += ["", check[0].replace("checkpoint: ", "Checkpoint: ")]
    return "\n".join(lines) + "\n"


def _side(g) -> dict:
    s = g.summary
    from archc.report.variant import overrides_json

    return {"name": g.name, "file": g.file, "preset": g.preset, "overrides": overrides_json(g),
            "total_params": s.total_params, "buffers": s.buffers, "macs": s.macs,
            "nodes": len(g.nodes), "output_shapes": [list(x) if x is not None else None for x in s.output_shapes]}


def to_json(d: Diff) -> dict:
    nodes = [{"status": "removed", "a": n.name, "b": None, "fields": [], "a_values": values(n), "b_values": None}
             for n in d.removed]
    nodes += [{"status": "changed", "a": c.a.name, "b": c.b.name, "fields": c.fields, "a_values": values(c.a),
               "b_values": values(c.b)} for c in d.changed]
    nodes += [{"status": "renamed", "a": x.name, "b": y.name, "fields": [], "a_values": values(x),
               "b_values": values(y)} for x, y in d.renamed]
    nodes += [{"status": "added", "a": None, "b": m.name, "fields": [], "a_values": None, "b_values": values(m)}
              for m in d.added]
    outputs = {"a": list(d.a.outputs), "b": list(d.b.outputs), "changed": d.outputs is not None}
    return {"format": FORMAT, "a": _side(d.a), "b": _side(d.b), "identical": d.identical, "outputs": outputs,
            "totals": [{"name": n, "a": x, "b": y, "delta": None if x is None or y is None else y - x}
                       for n, x, y in totals(d)],
            "blocks": blocks(d), "nodes": nodes, "checkpoint": d.checkpoint}


def render(d: Diff, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_json(d), indent=2) + "\n"
    return render_markdown(d) if fmt == "markdown" else render_table(d)
