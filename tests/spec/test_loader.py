"""The YAML loader (archc/spec/loader.py): positions of every value, duplicate keys, safe
loading only, and bounded time and memory on hostile input."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from archc.errors import Pos, SpecErrors
from archc.spec.document import read_text
from archc.spec.loader import MAX_BYTES, MAX_DEPTH, MAX_NODES, LDict, LList, load_yaml

SPEC = """\
archc: 1
input: [3, 32, 32]
vars:
  width: 64
layers:
  - conv2d: {out: $width, kernel: 3}
  - relu
  - linear:
      out: 10
"""


def errors_of(text: str, file: str = "f.yaml") -> list[str]:
    with pytest.raises(SpecErrors) as info:
        load_yaml(text, file)
    return [e.render() for e in info.value.errors]


# -- positions -------------------------------------------------------------------------------

def test_same_values_as_pyyaml():
    assert load_yaml(SPEC, "f.yaml") == yaml.safe_load(SPEC)


def test_positions_of_keys_and_values():
    tree = load_yaml(SPEC, "net.yaml")
    assert isinstance(tree, LDict) and isinstance(tree["layers"], LList)
    assert tree.pos == Pos("net.yaml", 1, 1)
    assert tree.key_pos_of("vars") == Pos("net.yaml", 3, 1)
    assert tree.pos_of("input") == Pos("net.yaml", 2, 8)            # the value `[`
    assert tree["input"].pos_of(2) == Pos("net.yaml", 2, 16)        # the second 32
    assert tree["vars"].pos_of("width") == Pos("net.yaml", 4, 10)
    layers = tree["layers"]
    assert [layers.pos_of(i).line for i in range(3)] == [6, 7, 8]
    assert layers.pos_of(1) == Pos("net.yaml", 7, 5)                # `relu`
    conv = layers[0]["conv2d"]
    assert conv.key_pos_of("kernel") == Pos("net.yaml", 6, 27)
    assert conv.pos_of("out") == Pos("net.yaml", 6, 19)             # `$width`
    assert layers[2]["linear"].pos_of("out") == Pos("net.yaml", 9, 12)


def test_missing_keys_fall_back_to_the_container():
    tree = load_yaml(SPEC, "f.yaml")
    assert tree.pos_of("nothing") == tree.pos
    assert tree["layers"].pos_of(99) == tree["layers"].pos


# -- duplicate and odd keys --------------------------------------------------------------------

def test_duplicate_keys_all_reported_with_paths():
    text = "a: 1\nb: {x: 1, y: 2, x: 3}\nc: [{k: 1, k: 2}]\na: 4\n"
    assert errors_of(text) == [
        "f.yaml:2:17: error: b.x: duplicate key 'x' — the first 'x' is at line 2, column 5; keep one",
        "f.yaml:3:12: error: c[0].k: duplicate key 'k' — the first 'k' is at line 3, column 6; keep one",
        "f.yaml:4:1: error: a: duplicate key 'a' — the first 'a' is at line 1, column 1; keep one",
    ]


def test_keys_must_be_text():
    assert errors_of("1: a\nnull: b\n") == [
        "f.yaml:1:1: error: mapping key 1 is not text — quote it, or use a name: keys are names or attributes",
        "f.yaml:2:1: error: mapping key None is not text — quote it, or use a name: keys are names or attributes",
    ]


def test_merge_keys_own_keys_win():
    tree = load_yaml("base: &b {k: 3, s: 1}\nconv: {<<: *b, s: 2}\n", "f.yaml")
    assert tree["conv"] == {"k": 3, "s": 2}
    assert errors_of("base: &b {k: 3}\nconv: {<<: *b, s: 2, s: 3}\n") == [
        "f.yaml:2:22: error: conv.s: duplicate key 's' — the first 's' is at line 2, column 16; keep one"]


def test_plain_data_only():
    tree = load_yaml("d: 2024-01-01\nt: 2001-12-14t21:59:43.10-05:00\nb: yes\nn: ~\n", "f.yaml")
    assert tree == {"d": "2024-01-01", "t": "2001-12-14t21:59:43.10-05:00", "b": True, "n": None}


# -- safe loading ------------------------------------------------------------------------------

@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system", "!!python/object/new:os.system", "!!python/name:os.system",
    "!!python/module:os", "!!python/object:builtins.object"])
def test_python_tags_refused_never_run(tag, tmp_path):
    marker = tmp_path / "PWNED"
    text = f'archc: 1\nlayers:\n  - {tag} ["touch {marker}"]\n'
    assert errors_of(text) == [
        f"f.yaml:3:5: error: YAML tag {tag} is not allowed — archc reads plain data only "
        "(mappings, lists, text, numbers); tags are never executed"]
    assert not marker.exists()


@pytest.mark.parametrize("text, message", [
    ("a: !!set {x}", "YAML tag !!set is not allowed"),
    ("a: !!binary aGk=", "YAML tag !!binary is not allowed"),
    ("a: !shape [1]", "YAML tag !shape is not allowed"),
    ("a: !!int x", "YAML error: cannot read this value: invalid literal for int() with base 10: 'x'"),
    ("a: !!map [1]", "YAML error: the tag '!!map' needs a mapping here"),
    ("a: " + "9" * 5000, "YAML error: cannot read this value: Exceeds the limit (4300 digits) for "
                         "integer string conversion: value has 5000 digits"),
])
def test_other_tags_and_unreadable_values(text, message):
    (line,) = errors_of(text)
    assert line.startswith(f"f.yaml:1:4: error: {message} — ")


@pytest.mark.parametrize("text, expected", [
    ("", "f.yaml:1:1: error: the file is empty — start from a zoo spec: `archc zoo` lists them"),
    ("  \n\n", "f.yaml:1:1: error: the file is empty — start from a zoo spec: `archc zoo` lists them"),
    ("# nothing\n", "f.yaml:1:1: error: the file holds no YAML document, only comments — "
                    "write a mapping with `archc: 1`, `input:` and `layers:`"),
    ("a: 1\n---\nb: 2\n", "f.yaml:2:1: error: the file holds more than one YAML document (`---`) — "
                          "keep one document; several networks go under `networks:`"),
    ("a: [1,\n", "f.yaml:2:1: error: YAML syntax error: did not find expected node content (parsing a "
                 "flow node started at line 2, column 1) — check indentation, colons, quotes and brackets "
                 "here and on the lines above"),
    ("a: b: c\n", "f.yaml:1:5: error: YAML syntax error: a `: ` where no key can start — quote a "
                  "value that contains `: `, or check the indentation of this line"),
    ("a: @x\n", "f.yaml:1:4: error: YAML syntax error: '@' cannot start a value — quote the value: \"@x\""),
    ("a: 1\n\tb: 2\n", "f.yaml:2:1: error: a tab character: YAML indents with spaces only — replace "
                      "the tabs with spaces"),
    ("a: *nowhere\n", "f.yaml:1:4: error: YAML error: found undefined alias — define the anchor "
                      "(&name) before using *name"),
    ("a: 1\nb: x\x07y\n", "f.yaml:2:5: error: character U+0007 is not allowed in YAML — remove "
                          "control characters; save the file as UTF-8 text"),
])
def test_unreadable_files(text, expected):
    assert errors_of(text) == [expected]


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("archc: 1\nname: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecErrors) as info:
        read_text(str(path))
    assert info.value.errors[0].render() == f"{path}: error: not UTF-8 text (byte 18) — save the spec as UTF-8"


# -- bounded time and memory ---------------------------------------------------------------------

def _fails_fast(text: str, seconds: float = 2.0) -> str:
    start = time.perf_counter()
    with pytest.raises(SpecErrors) as info:
        load_yaml(text, "f.yaml")
    assert time.perf_counter() - start < seconds
    (error,) = info.value.errors
    return error.render()


def test_billion_laughs_fails_fast():
    bomb = Path(__file__).parents[1] / "specs" / "invalid" / "alias_bomb.yaml"
    line = _fails_fast(bomb.read_text())
    assert f"the document expands to more than {MAX_NODES:,} values through aliases" in line


def test_recursive_merge_bomb_fails_fast():
    lines = ["a0: &a0 {x: 1}"] + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    assert "values through aliases" in _fails_fast("\n".join(lines) + "\n")


@pytest.mark.parametrize("text", [
    "a: " + "[" * 100_000 + "]" * 100_000,
    "a: " + "{b: " * 100_000 + "1" + "}" * 100_000,
    "a:\n  " + "- " * 100_000 + "x\n",
])
def test_deep_nesting_does_not_crash(text):
    line = _fails_fast(text)
    assert f"nesting deeper than {MAX_DEPTH} levels — flatten the structure" in line


def test_depth_limit_is_exact():
    assert load_yaml("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1), "f.yaml")
    assert "nesting deeper" in _fails_fast("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH)


def test_huge_file_rejected_before_parsing():
    text = "archc: 1\nlayers:\n" + "  - relu\n" * (MAX_BYTES // 9 + 1)
    assert _fails_fast(text, 1.0) == ("f.yaml: error: file is larger than 4 MiB — a network spec is "
                                      "a few kilobytes; is this the right file?")


def test_too_many_values_rejected_while_parsing():
    text = "a: [" + ",".join(["1"] * (MAX_BYTES // 2 - 10)) + "]\n"
    assert len(text.encode()) < MAX_BYTES
    assert f"the file holds more than {MAX_NODES:,} values" in _fails_fast(text)


@pytest.mark.parametrize("text, line", [
    ("a: &a [*a]\n", "f.yaml:1:4"),
    ("a: &a {b: [1, *a]}\n", "f.yaml:1:11"),
    ("x: 1\npresets: &p\n  - *p\n", "f.yaml:2:10"),
])
def test_recursive_alias_fails_fast(text, line):
    """Found by fuzzing: a value that contains itself made the size check loop forever."""
    assert _fails_fast(text) == (f"{line}: error: an alias refers to a value that contains it (a loop)"
                                 " — an alias (*name) may only repeat a value defined before it")


def test_shared_aliases_without_loops_load():
    tree = load_yaml("x: &x {k: 1}\ny: &y [*x, *x]\nz: [*y, *x]\n", "f.yaml")
    assert tree["z"] == [[{"k": 1}, {"k": 1}], {"k": 1}]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_device_is_not_read():
    start = time.perf_counter()
    with pytest.raises(SpecErrors) as info:
        read_text("/dev/zero")
    assert time.perf_counter() - start < 2
    assert info.value.errors[0].render() == ("/dev/zero: error: a character device, not a regular "
                                             "file — give a spec file (.yaml)")


def test_huge_file_is_not_read_into_memory(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as f:
        f.truncate(2**30)  # 1 GiB, sparse: nothing is written to disk
    start = time.perf_counter()
    with pytest.raises(SpecErrors) as info:
        read_text(str(path))
    assert time.perf_counter() - start < 2
    assert info.value.errors[0].render() == (f"{path}: error: file is larger than 4 MiB — a network "
                                             "spec is a few kilobytes; is this the right file?")


@pytest.mark.parametrize("path, why", [
    ("a\x00b.yaml", "embedded null byte"),          # found by fuzzing the API with text
    ("/nonexistent/x.yaml", "No such file or directory"),
])
def test_unreadable_paths(path, why):
    with pytest.raises(SpecErrors) as info:
        read_text(path)
    assert info.value.errors[0].render() == (f"{path!r}"[1:-1] + f": error: cannot read file: {why}"
                                             " — check the path")


# --------------------------------------------------------------------------- numbers
# YAML 1.2 reads 5e-4 as a number; PyYAML's YAML 1.1 resolver would give the text '5e-4'.
@pytest.mark.parametrize("text, value", [
    ("5e-4", 5e-4), ("1e-05", 1e-5), ("1E5", 1e5), ("-2e+3", -2e3), (".5e1", 5.0), ("1.0e-4", 1e-4),
    ("3.", 3.0), ("12", 12), ("1_000", 1000),
])
def test_exponent_numbers_are_numbers_as_in_yaml_1_2(text, value):
    got = load_yaml(f"lr: {text}\n")["lr"]
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text", ["'5e-4'", "e5", "5e", "1e-4x", "0x1p3", "2026-01-01"])
def test_text_that_only_looks_like_a_number_stays_text(text):
    assert isinstance(load_yaml(f"lr: {text}\n")["lr"], str)


def test_set_values_are_read_like_file_values():
    from archc.spec.document import parse_override

    assert parse_override("train.optimizer.lr=5e-4") == ("train.optimizer.lr", 5e-4)
    assert parse_override("input=[1, 2e1]") == ("input", [1, 20.0])
    assert parse_override("when=2026-01-01") == ("when", "2026-01-01")  # dates stay text, as in files
    bomb = "[&a [1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b], " \
           "&d [*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d], &f [*e,*e,*e,*e,*e,*e,*e,*e]]"
    with pytest.raises(SpecErrors) as info:
        parse_override("x=" + bomb)
    message = str(info.value)
    assert "not valid YAML" in message and len(message) < 400  # bounded, and the value is not echoed whole


def test_a_quoted_number_says_how_to_write_it(tmp_path):
    import archc

    spec = tmp_path / "net.yaml"
    spec.write_text('archc: 1\ninput: [4]\nlayers:\n  - linear: {out: 2}\n'
                    'train:\n  optimizer: {name: adam, lr: "5e-4"}\n')
    with pytest.raises(SpecErrors) as info:
        archc.load(str(spec))
    assert str(info.value.errors[0]) == (
        f"{spec}:6:31: error: train.optimizer.lr: expected a number, got text '5e-4' — "
        "write it without quotes: 5e-4")
