"""`archc graph`: DOT (checked by Graphviz itself), Mermaid (checked structurally), the HTML
page's embedded numbers (equal to the JSON report's and the markdown's), and the CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.ir.graph import INPUT
from archc.report import json_report, markdown
from archc.report.graph import dot, html, mermaid, view
from archc.zoo import zoo_dir

SPECS = ["resnet18", "googlenet", "unet", "dcgan:generator"]
DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz `dot` is not installed "
                               "(Debian package graphviz; `make test` installs it as root)")


def load(name: str):
    spec, _, network = name.partition(":")
    return archc.load(str(zoo_dir() / f"{spec}.yaml"), network or None)


@pytest.fixture(scope="module", params=SPECS)
def graph(request):
    return load(request.param)


def ir_edges(g) -> set[tuple[str, str]]:
    return {(src, n.name) for n in g.nodes for src in n.inputs}


# ---- DOT -----------------------------------------------------------------------------------

@needs_dot
@pytest.mark.parametrize("depth", [view.UNLIMITED, 1, 0])
def test_dot_source_is_accepted_by_graphviz(graph, depth):
    done = subprocess.run([DOT, "-Tsvg"], input=dot.render(graph, depth).encode(),
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert b"<svg" in done.stdout and b"Error" not in done.stderr


def test_dot_draws_every_node_and_edge_when_expanded(graph):
    source = dot.render(graph)
    for n in graph.nodes:
        assert f'\n  {dot.quote(n.name)} [label=' in source or f' {dot.quote(n.name)} [label=' in source
    edges = set(re.findall(r'^\s*"([^"]+)" -> "([^"]+)"(?: \[[^]]*\])?;$', source, re.M))
    assert edges == ir_edges(graph)


def test_dot_collapsed_has_no_clusters_and_one_box_per_top_level_item():
    g = load("resnet18")
    source = dot.render(g, 0)
    assert "subgraph" not in source
    boxes = re.findall(r'^  "([^"]+)" \[label=', source, re.M)
    top = [INPUT] + list(dict.fromkeys(n.scope[0] if n.scope else n.name for n in g.nodes))
    assert boxes == top
    assert '"layer1.0" [label="layer1.0\\nbasic ×7 layers\\n[64, 56, 56]\\nparams 73,984"' in source


def test_dot_quotes_names():
    assert dot.quote('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c\\nd"'


# ---- Mermaid -------------------------------------------------------------------------------

NODE = re.compile(r'^\s*(\w+)(\[\[|\[)"([^"]*)"(\]\]|\])$')
SUB = re.compile(r'^\s*subgraph (\w+)\["([^"]*)"\]$')
EDGE = re.compile(r"^\s*(\w+) --> (\w+)$")
LINKSTYLE = re.compile(r"^\s*linkStyle ([0-9,]+) stroke:#d9730d,stroke-width:2px$")
IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def parse_mermaid(text: str):
    """Nodes {id: label}, edges, subgraph ids; asserts balance and that no line is unknown."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    nodes, edges, subs, depth, styled = {}, [], [], 0, []
    for line in lines[1:]:
        if m := NODE.match(line):
            assert m.group(1) not in nodes
            assert (m.group(2), m.group(4)) in (("[", "]"), ("[[", "]]"))
            nodes[m.group(1)] = m.group(3)
        elif m := SUB.match(line):
            subs.append(m.group(1))
            depth += 1
        elif line.strip() == "end":
            depth -= 1
            assert depth >= 0, "`end` without subgraph"
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        elif m := LINKSTYLE.match(line):
            styled += [int(i) for i in m.group(1).split(",")]
        else:
            raise AssertionError(f"not a Mermaid line archc writes: {line!r}")
    assert depth == 0, "unclosed subgraph"
    assert all(0 <= i < len(edges) for i in styled)
    parse_mermaid.styled = [edges[i] for i in styled]
    return nodes, edges, subs


def test_mermaid_has_every_node_and_edge(graph):
    nodes, edges, subs = parse_mermaid(mermaid.render(graph))
    assert all(IDENT.match(i) for i in list(nodes) + subs)
    assert len(set(subs)) == len(subs) == len(view.instances(graph))
    assert not set(subs) & set(nodes)
    # n0 is the input, then one box per layer in topological order
    order = [INPUT] + [n.name for n in graph.nodes]
    assert sorted(nodes, key=lambda k: int(k[1:])) == [f"n{i}" for i in range(len(order))]
    for i, n in enumerate(graph.nodes, 1):
        first, op, shape = nodes[f"n{i}"].split("<br/>")[:3]
        assert (first, op) == (n.local_name, n.op)
        assert shape == "[" + ", ".join(map(str, n.meta["shape"])) + "]"
    index = {name: f"n{i}" for i, name in enumerate(order)}
    assert set(edges) == {(index[a], index[b]) for a, b in ir_edges(graph)}
    assert len(edges) == len(set(edges))
    assert all(a in nodes and b in nodes for a, b in edges)


def test_shortcuts_are_drawn_as_skip_edges():
    """ResNet-18's identity shortcut (maxpool -> the first block's add) and projection
    shortcut (downsample.1 -> add) jump levels; a plain chain edge does not."""
    g = load("resnet18")
    skips = view.skip_edges(g, view.UNLIMITED)
    assert ("maxpool", "layer1.0.add_1") in skips
    assert ("layer2.0.downsample.1", "layer2.0.add_1") in skips
    assert ("conv1", "bn1") not in skips
    assert len(skips) == 8  # one shortcut per basic block
    assert '"maxpool" -> "layer1.0.add_1" [color="#d9730d"' in dot.render(g)
    nodes, edges, _ = parse_mermaid(mermaid.render(g))
    labels = {k: v.split("<br/>")[0] for k, v in nodes.items()}
    styled = [(labels[a], labels[b]) for a, b in parse_mermaid.styled]
    assert len(styled) == 8 and ("maxpool", "add_1") in styled
    assert view.skip_edges(g, 0) == set()  # closed blocks: the drawing is a chain


def test_mermaid_labels_cannot_break_out():
    assert mermaid.label('a "b" <c>\nd') == '"a #quot;b#quot; #lt;c#gt;<br/>d"'


def test_mermaid_collapsed_blocks_are_subroutine_boxes():
    nodes, edges, subs = parse_mermaid(mermaid.render(load("googlenet"), 0))
    assert subs == []
    labels = [v.split("<br/>")[0] for v in nodes.values()]
    assert "inception3a" in labels and "inception5b" in labels
    assert "[[" in mermaid.render(load("googlenet"), 0)


# ---- HTML: one source of truth ----------------------------------------------------------------

def embedded(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="archc-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def markdown_rows(g):
    """The layer rows of `validate --format markdown`: (shape, params, macs, rf) per layer."""
    rows = []
    for line in markdown.render(g).splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 6 and cells[0].lstrip("&nbsp;").startswith("`"):
            rows.append(tuple(cells[2:]))
    return rows


def test_html_embeds_the_json_report_and_the_markdown_numbers(graph):
    page = html.render(graph)
    data = embedded(page)
    report = json.loads(json_report.render([graph]))
    report.pop("format")
    assert data["report"] == report
    shown = [(n["shape"], n["params"], n["macs"], n["rf"]) for n in data["nodes"]]
    assert shown == markdown_rows(graph)
    md = markdown.render(graph)
    for key, value in data["totals"]:
        assert f"| {key} | {value} |" in md


def test_html_block_totals_are_sums_of_the_json_layers():
    g = load("resnet50")
    data = embedded(html.render(g))
    layers = data["report"]["layers"]
    for inst in data["instances"]:
        inside = [l for l in layers if (l["block"] or "") == inst["id"]
                  or (l["block"] or "").startswith(inst["id"] + ".")]
        assert inst["layers"] == len(inside)
        assert inst["params"] == f"{sum(l['params'] for l in inside):,}"
    assert data["depth"] == 1


def test_html_is_self_contained():
    page = html.render(load("unet"))
    assert not re.search(r"<(script|img|iframe)[^>]*\bsrc=", page, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert "default-src 'none'" in page  # the page may not fetch anything at all
    assert page.count("</script>") == 3  # data, dagre, the page's script: nothing escaped early


def test_html_names_the_package_when_dagre_is_missing(monkeypatch):
    monkeypatch.setattr(html.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(html.LayoutLibraryMissing, match="pip install dagre-py"):
        html.render(load("lenet5"))


# ---- CLI -----------------------------------------------------------------------------------

def run(*args):
    return CliRunner().invoke(main, ["graph", *args])


@pytest.mark.parametrize("suffix", [".dot", ".mmd", ".html"])
def test_cli_writes_each_format(tmp_path, suffix):
    out = tmp_path / f"net{suffix}"
    res = run("resnet18", "-o", str(out), "--set", "classes=10")
    assert res.exit_code == 0, res.output
    assert res.output == f"wrote {out}\n"
    text = out.read_text()
    assert "[10]" in text  # --set reached the picture


@needs_dot
@pytest.mark.parametrize("suffix,magic", [(".svg", b"<svg"), (".png", b"\x89PNG")])
def test_cli_renders_with_graphviz(tmp_path, suffix, magic):
    out = tmp_path / f"net{suffix}"
    res = run("lenet5", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert magic in out.read_bytes()[:400]


def test_cli_without_graphviz_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(dot.shutil, "which", lambda name: None)
    res = run("lenet5", "-o", str(tmp_path / "x.svg"))
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "`graphviz`" in lines[0] and lines[0].startswith("archc: error:")
    assert not (tmp_path / "x.svg").exists()


def test_cli_depth_flags(tmp_path):
    out = tmp_path / "g.dot"
    assert run("googlenet", "-o", str(out), "--collapse-blocks").exit_code == 0
    assert "subgraph" not in out.read_text()
    assert run("googlenet", "-o", str(out), "--depth", "1").exit_code == 0
    text = out.read_text()
    assert '"cluster_inception3a"' in text and '"cluster_inception3a.branch1"' not in text
    assert run("googlenet", "-o", str(out), "--expand-blocks").exit_code == 0
    assert '"cluster_inception3a.branch1"' in out.read_text()


@pytest.mark.parametrize("args,message", [
    (["resnet18", "-o", "x.txt"], "the suffix picks the format"),
    (["dcgan", "-o", "x.dot"], "NAME one of generator, discriminator"),
    (["resnet18", "-o", "x.dot", "--expand-blocks", "--depth", "1"], "--expand-blocks opens every block"),
    (["resnet18", "-o", "x.dot", "--depth", "-1"], "--depth"),
])
def test_cli_usage_errors(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run(*args)
    assert res.exit_code == 2
    assert message in res.output


def test_cli_library_without_network(tmp_path):
    lib = tmp_path / "lib.yaml"
    lib.write_text("archc: 1\nblocks:\n  b:\n    layers:\n      - relu\n")
    res = run(str(lib), "-o", str(tmp_path / "x.dot"))
    assert res.exit_code == 1
    assert "library of blocks: no network to draw" in res.output


def test_cli_invalid_spec_reports_errors_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("archc: 1\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 9}\n")
    res = run(str(bad), "-o", str(tmp_path / "bad.html"))
    assert res.exit_code == 1
    assert f"{bad}:4:" in res.output and "error:" in res.output
    assert not (tmp_path / "bad.html").exists()
