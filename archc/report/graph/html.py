"""A self-contained HTML report: one file, no network access, no CDN.

The page embeds, as JSON, the JSON report of the network (archc/report/json_report.py,
unchanged), the formatted numbers of each layer and block (archc/report/numbers.py, as
in the table and the markdown) and the report's totals. Its script lays the graph out
top to bottom with dagre (https://github.com/dagrejs/dagre), the layout library behind
dagre-d3 and Mermaid's flowcharts, and draws it as SVG; clicking a block opens or closes
it and the layout runs again.

dagre is not copied into this repository: it is read at generation time from the
``dagre-py`` package (a dependency; its wheel ships ``js/dagre-d3.min.js``, which bundles
dagre 0.8 and graphlib) and inlined into the page. See docs/graph.md.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from archc.ir.graph import Graph
from archc.report import numbers as N
from archc.report.graph import view
from archc.report.json_report import graph_dict
from archc.report.table import totals

ASSETS = Path(__file__).with_name("assets")
LAYOUT_PACKAGE = "dagre-py"


class LayoutLibraryMissing(RuntimeError):
    """The package that ships dagre's JavaScript is not installed."""


def dagre_source() -> str:
    """dagre's JavaScript, from the installed ``dagre_py`` package (found without importing it)."""
    spec = importlib.util.find_spec("dagre_py")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / "js" / "dagre-d3.min.js"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise LayoutLibraryMissing(
        f"the HTML report needs the layout library dagre from the Python package "
        f"`{LAYOUT_PACKAGE}` — pip install {LAYOUT_PACKAGE}")


def page_data(g: Graph, depth: int) -> dict:
    """Everything the page shows, as JSON-ready data."""
    insts = view.instances(g)
    return {
        "report": graph_dict(g),  # the JSON report, verbatim: the one source of truth
        "totals": [list(kv) for kv in totals(g)],
        "depth": depth,
        "nodes": [{"id": n.name, "local": n.local_name, "op": n.op, "inputs": n.inputs,
                   "scope": view.instance_ids(n), "path": n.path,
                   "source": str(n.pos) if n.pos else None, **view.node_cells(n)}
                  for n in g.nodes],
        "instances": [{"id": i.id, "label": i.label, "block": i.block, "parent": i.parent,
                       "depth": i.depth, **view.instance_cells(g, i)} for i in insts.values()],
        "input_shape": N.shape(g.input_shape),
        "outputs": g.outputs,
    }


def _script_json(data: dict) -> str:
    """JSON that stays the text of the <script> element it sits in, for any string in the
    spec: every ``<``, ``>`` and ``&`` is written as a JSON escape (``\\u003c``...), so no
    ``</script>`` ends the element early and no ``<!--`` puts the parser in its
    script-comment state (where the element's real end tag is not seen). The escapes are
    plain JSON: the page's JSON.parse reads the same strings back. ``json.dumps`` escapes
    every non-ASCII character (U+2028 too) by default."""
    text = json.dumps(data)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(g: Graph, depth: int = 1) -> str:
    """The HTML page of ``g``; instances deeper than ``depth`` start collapsed."""
    template = (ASSETS / "template.html").read_text(encoding="utf-8")
    parts = {
        "@TITLE@": _escape(f"{g.name} — archc"),
        "@CSS@": (ASSETS / "graph.css").read_text(encoding="utf-8"),
        "@DATA@": _script_json(page_data(g, depth)),
        "@DAGRE@": dagre_source(),
        "@APP@": (ASSETS / "graph.js").read_text(encoding="utf-8"),
    }
    # one pass: text put in (dagre's source, the data) is never searched for markers again
    return re.sub(r"@(TITLE|CSS|DATA|DAGRE|APP)@", lambda m: parts[m.group(0)], template)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
