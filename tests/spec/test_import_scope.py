"""Imported blocks are lexically scoped: a block calls the blocks of the file that defines
it, even when the importing file asked for that one block only (or defines another block
of the same name)."""

import textwrap

import archc

LIB = """\
archc: 1
blocks:
  conv_relu:
    args: {out: required}
    layers:
      - conv2d: {out: $out, kernel: 3, padding: 1}
      - relu
  stage:
    args: {out: required}
    layers:
      - conv_relu: {out: $out, repeat: 2}
      - maxpool2d: {kernel: 2}
"""


def write(tmp_path, main: str):
    (tmp_path / "lib.yaml").write_text(LIB)
    spec = tmp_path / "main.yaml"
    spec.write_text(textwrap.dedent(main))
    return spec


def test_imported_block_calls_a_block_of_its_own_file(tmp_path):
    spec = write(tmp_path, """\
        archc: 1
        input: [3, 8, 8]
        imports: [{file: lib.yaml, blocks: [stage]}]
        layers:
          - stage: {out: 4, id: s1}
        """)
    g = archc.load(str(spec))
    assert g.nodes[-1].meta["shape"] == (4, 4, 4)
    # 3→4 then 4→4 convolutions, 3×3 with bias
    assert g.summary.total_params == (3 * 4 * 9 + 4) + (4 * 4 * 9 + 4)
    assert g.nodes[0].name == "s1.conv_relu_1.0.conv2d_1"


def test_importing_file_cannot_shadow_the_library_blocks(tmp_path):
    spec = write(tmp_path, """\
        archc: 1
        input: [3, 8, 8]
        imports: [{file: lib.yaml, blocks: [stage]}]
        blocks:
          conv_relu:              # a different block of the same name in the user's file
            args: {out: required}
            layers:
              - linear: {out: $out}
        layers:
          - stage: {out: 4}
        """)
    g = archc.load(str(spec))
    assert [n.op for n in g.nodes].count("conv2d") == 2
    assert "linear" not in [n.op for n in g.nodes]
