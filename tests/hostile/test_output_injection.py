"""Issue 11.7: text that came from a spec or a model (a name, a file name, a value in an
error, class names in an ONNX file) never reaches a terminal as control characters, never
reaches Markdown as HTML, and never breaks the HTML page's embedded JSON.

Each case is a real `archc` process under the time and memory limits of hostile_run.py;
the expected text is written out here, not produced by archc's own escaping helper."""

from __future__ import annotations

import json
import unicodedata
from html.parser import HTMLParser

import numpy as np
import pytest

from hostile_run import assert_clean_failure, listing, run_archc, text

from archc.printable import markdown_text, printable

# what an attacker would put in a name: a colour, a window title (OSC ... BEL), a
# hyperlink (OSC 8), a fake new line, a right-to-left override, HTML and a script comment
EVIL = ("x\x1b[31mred\x1b]0;pwned\x07\x1b]8;;http://e.example\x1b\\link\x1b]8;;\x1b\\"
        "\nvalid\r\u202egnp.exe\u2028<script>alert(1)</script><!--\x9b2J")


def hidden(out: str) -> list[str]:
    """The characters of ``out`` a terminal would obey or hide (newlines between lines
    are archc's own)."""
    return sorted({repr(c) for c in out if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")})


def spec_text(name: str, body: str = "  - linear: {out: 2}\n") -> str:
    return f"archc: 1\nname: {json.dumps(name)}\ninput: [4]\nlayers:\n{body}"


def test_printable_escapes_what_a_terminal_would_obey_and_keeps_text():
    assert printable("résumé → ok…  tab-free ✓") == "résumé → ok…  tab-free ✓"
    assert printable("a\x1b[2Jb\x07\x7f\x9b") == r"a\x1b[2Jb\x07\x7f\x9b"
    assert printable("l1\nl2\r\t") == r"l1\nl2\r\t"
    assert printable("l1\nl2", keep="\n") == "l1\nl2"
    assert printable("\u202e\u200b\u2028\u2029\ud800") == r"\u202e\u200b\u2028\u2029\ud800"
    assert printable("\U000e0041") == r"\U000e0041"  # a tag character (category Cf)
    assert markdown_text("<b>a|b</b> & c") == r"&lt;b&gt;a\|b&lt;/b&gt; &amp; c"


@pytest.fixture
def evil_spec(tmp_path):
    (tmp_path / "evil.yaml").write_text(spec_text(EVIL), encoding="utf-8")
    return tmp_path


def test_table_shows_a_hostile_name_escaped(evil_spec):
    r = run_archc(["validate", "evil.yaml"], evil_spec)
    out = text(r.stdout)
    assert r.returncode == 0, text(r.stderr)
    assert hidden(out) == []
    first = out.splitlines()[0]
    assert first.startswith(r"x\x1b[31mred\x1b]0;pwned\x07")
    assert r"\nvalid\r\u202egnp.exe\u2028<script>" in first and first.endswith(r"\x9b2J  (1 nodes)")


def test_markdown_escapes_html_and_control_characters(evil_spec):
    r = run_archc(["validate", "--format", "markdown", "evil.yaml"], evil_spec)
    out = text(r.stdout)
    assert r.returncode == 0 and hidden(out) == []
    assert "<script>" not in out and "<!--" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;!--" in out.splitlines()[0]


def test_errors_show_hostile_values_and_file_names_escaped(tmp_path):
    # a spec found in a folder: its file name is as much the attacker's as its text
    bad = tmp_path / "specs" / "a\x1b]0;owned\x07.yaml"
    bad.parent.mkdir()
    bad.write_text(spec_text("n", "  - linear: {out: \"\\e[2J\\nvalid\"}\n"
                                  "  - gelu: {approximate: \"\\u202e\\e[31m\"}\n"), encoding="utf-8")
    (tmp_path / "specs" / "ok\x1b[1m.yaml").write_text(spec_text("fine"), encoding="utf-8")
    r = run_archc(["validate", "specs"], tmp_path)
    err, out = assert_clean_failure(r, (1,)), text(r.stdout)
    assert hidden(err) == [] and hidden(out) == []
    assert r"specs/a\x1b]0;owned\x07.yaml:6:" in err  # the file, line and column stay readable
    assert r"got '\x1b[2J\nvalid'" in err
    assert r"specs/ok\x1b[1m.yaml: valid" in out
    # the same with --set: a value is echoed in the variant's name and in errors
    r = run_archc(["validate", "specs/ok\x1b[1m.yaml", "--set", "input=\"\\e[5m\""], tmp_path)
    assert hidden(assert_clean_failure(r)) == []


def test_usage_errors_show_file_names_escaped(tmp_path):
    r = run_archc(["validate", "missing\x1b]0;t\x07.yaml"], tmp_path)
    err = assert_clean_failure(r, (2,))
    assert err.startswith(r"archc: error: no such file: missing\x1b]0;t\x07.yaml")
    assert hidden(err) == []


class _ScriptText(HTMLParser):
    """The text of each <script> element as an HTML parser (a browser's rules) reads it:
    a script element ends at the first ``</script``."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts, self._open = {}, None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._open = dict(attrs).get("id") or f"script{len(self.scripts)}"
            self.scripts[self._open] = ""

    def handle_data(self, data):
        if self._open:
            self.scripts[self._open] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._open = None


@pytest.mark.parametrize("name", [EVIL, "<!--", "</script>", "a\u2028b\u2029c", "<!--<script>", "\\</script>&amp;"])
def test_html_page_embeds_any_name_as_json_that_parses_back(tmp_path, name):
    (tmp_path / "n.yaml").write_text(spec_text(name), encoding="utf-8")
    before = listing(tmp_path)
    r = run_archc(["graph", "n.yaml", "-o", "page.html"], tmp_path)
    assert r.returncode == 0, text(r.stderr)
    assert listing(tmp_path) - before == {"page.html"}
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    parser = _ScriptText()
    parser.feed(page)
    parser.close()
    assert list(parser.scripts) == ["archc-data", "script1", "script2"]  # the data, dagre, the app
    data = json.loads(parser.scripts["archc-data"])
    assert data["report"]["name"] == name
    assert "function" in parser.scripts["script2"]  # the app's script is whole, not cut off


def _onnx_with_metadata(path, classes, weights_path):
    """A 3-class 'classifier' (an Identity) whose archc metadata came from elsewhere."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    helper.set_model_props(model, {"archc.classes": json.dumps(classes),
                                   "archc.weights": json.dumps({"source": "checkpoint", "path": weights_path}),
                                   "archc.bogus\x1b[2J": "\x1b]0;t\x07"})
    onnx.save(model, path)


def test_infer_shows_class_names_and_metadata_escaped(tmp_path):
    pytest.importorskip("onnxruntime")
    classes = ["cat\x1b[8m", "\u202edog", "<b>bird\x07</b>"]
    _onnx_with_metadata(tmp_path / "m.onnx", classes, "/runs/x\x1b]0;pwned\x07/best.pt")
    np.save(tmp_path / "x.npy", np.array([[0.1, 0.7, 0.2]], dtype=np.float32))
    r = run_archc(["infer", "m.onnx", "--input", "x.npy", "--topk", "3"], tmp_path, timeout=120)
    out, err = text(r.stdout), text(r.stderr)
    assert r.returncode == 0, err
    assert hidden(out) == [] and hidden(err) == []
    assert r"\u202edog" in out and r"cat\x1b[8m" in out and r"<b>bird\x07</b>" in out


def test_train_keeps_a_hostile_name_inside_runs(tmp_path):
    # the default run directory is runs/NAME: a name that is a path must not leave runs/
    work = tmp_path / "work"
    work.mkdir()
    (work / "s.yaml").write_text(spec_text("../../out\x1b[31m", "  - linear: {out: 3}\n")
                                 .replace("input: [4]", "input: [4]\ntrain: {data: d.npz, epochs: 1, batch_size: 8}"),
                                 encoding="utf-8")
    rng = np.random.default_rng(0)
    np.savez(work / "d.npz", x=rng.normal(size=(24, 4)).astype(np.float32), y=rng.integers(0, 3, 24))
    before = listing(tmp_path)
    r = run_archc(["train", "s.yaml"], work, timeout=180)
    assert r.returncode == 0, text(r.stderr)[-2000:]
    assert hidden(text(r.stderr)) == [] and hidden(text(r.stdout)) == []
    assert r"training ../../out\x1b[31m (15 parameters)" in text(r.stderr)
    new = listing(tmp_path) - before
    assert new and all(p.startswith("work/runs/") or p == "work/runs" for p in new), sorted(new)
    assert (work / "runs" / "_.._out_31m" / "best.pt").is_file()
