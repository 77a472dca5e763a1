"""The rendered form of an error: `FILE:LINE:COL: error: NODE-PATH: what — fix`, then
`note:` lines (archc/errors.py). tests/specs/invalid pins the text of each kind."""

from __future__ import annotations

from archc.errors import Pos, SpecError, SpecErrors


def test_render_full():
    e = SpecError("heights 64 and 65 differ", Pos("unet.yaml", 12, 5), "layers[9].concat",
                  "crop the skip connection or check padding",
                  [(Pos("unet.yaml", 30, 5), "in `up3`, an instance of block `up`")])
    assert e.render() == ("unet.yaml:12:5: error: layers[9].concat: heights 64 and 65 differ — crop the "
                          "skip connection or check padding\n"
                          "unet.yaml:30:5: note: in `up3`, an instance of block `up`")


def test_render_partial():
    assert SpecError("the file is empty", Pos("a.yaml")).render() == "a.yaml: error: the file is empty"
    assert SpecError("x", None, "", "").render() == "error: x"
    assert SpecError("x", Pos("a.yaml", 1, 2), "p").render() == "a.yaml:1:2: error: p: x"
    assert SpecError("x", notes=[(None, "n")]).render() == "error: x\nnote: n"


def test_spec_errors_carry_every_error():
    errors = SpecErrors([SpecError("a", Pos("f", 1, 1)), SpecError("b", Pos("f", 2, 1))])
    assert [e.message for e in errors.errors] == ["a", "b"]
    assert str(errors) == "f:1:1: error: a\nf:2:1: error: b"
    one = SpecErrors.one("m", Pos("f", 3, 4), "path", "fix")
    assert str(one) == "f:3:4: error: path: m — fix"
