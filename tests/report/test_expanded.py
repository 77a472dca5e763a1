"""`archc expand` output is a spec again: it validates, and it is the same network — the
same node names (so the same state_dict keys), parameters, MACs and output shapes — for
every zoo spec; built with one seed, both give the same tensors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.report.expanded import render_all
from archc.zoo import zoo_specs


def facts(graphs):
    return [(g.name, [n.name for n in g.nodes], g.summary.total_params, g.summary.buffers, g.summary.macs,
             g.summary.output_shapes) for g in graphs]


@pytest.mark.parametrize("spec", [p.stem for p in zoo_specs()])
def test_the_expansion_of_every_zoo_spec_is_the_same_network(spec):
    graphs = archc.load_all(spec)
    again = archc.load_all(text=render_all(graphs))
    assert facts(again) == facts(graphs)


SPEC = """archc: 1
input: {shape: [6], dtype: int64, vocab: 20}
blocks:
  mlp:
    args: {width: required}
    layers:
      - linear: {out: $width, id: fc, init: {name: normal, std: 0.5}}
      - relu
layers:
  - embedding: {num: 20, dim: 8, id: emb}
  - mlp: {width: 8, repeat: 2, id: stage}
  - layernorm: {trainable: false}
  - linear: {out: 20, bias: false, tie: emb, id: head}
"""


def test_the_expansion_builds_the_same_module():
    torch = pytest.importorskip("torch")
    expanded = render_all([archc.loads(SPEC)])
    assert "id: stage.1.fc" in expanded and "tie: emb" in expanded
    a, b = archc.build(text=SPEC, seed=3), archc.build(text=expanded, seed=3)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) == ["emb.weight", "stage.0.fc.weight", "stage.0.fc.bias", "stage.1.fc.weight",
                                    "stage.1.fc.bias", "layernorm_1.weight", "layernorm_1.bias", "head.weight"]
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert b.head.weight is b.emb.weight  # still tied
    assert [n for n, p in b.named_parameters() if not p.requires_grad] == ["layernorm_1.weight", "layernorm_1.bias"]
    assert float(b.stage[0].fc.weight.detach().std()) > 0.3  # the layer's own init (std 0.5), not torch's default


def test_archc_expand_output_validates(tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["expand", "dcgan"])  # two networks: one file with `networks:`
    assert out.exit_code == 0, out.output
    path = tmp_path / "expanded.yaml"
    path.write_text(out.output)
    again = runner.invoke(main, ["validate", str(path)])
    assert again.exit_code == 0, again.output
    assert "generator" in again.output and "discriminator" in again.output


def test_expanding_a_library_of_blocks_says_there_is_no_network(tmp_path):
    path = tmp_path / "library.yaml"
    path.write_text("archc: 1\nblocks:\n  unit:\n    layers:\n      - relu\n")
    out = CliRunner().invoke(main, ["expand", str(path)])
    assert (out.exit_code, out.output) == (1, f"archc: error: {path}: a library of blocks, no network to expand "
                                              "— expand a spec that imports and calls its blocks\n")
