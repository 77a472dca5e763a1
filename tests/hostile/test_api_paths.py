"""Issue 11.8: in the Python API a string is a path (or a zoo name) whatever it holds, and
YAML text is read as text only when the caller says so (archc.loads, text=).

The attack: a service that validates uploaded files calls ``archc.load(path)``; an upload
named ``archc: 1\\ninput: ...`` must be read from disk, not parsed from its own name."""

from __future__ import annotations

import warnings

import pytest

from hostile_run import listing, run_archc, text

import archc

# a file name that is also a valid spec (file names may hold anything but / and NUL)
NAME_AS_SPEC = "archc: 1\ninput: [8]\nlayers: [{linear: {out: 5}}]\n"
# what the file really holds: a different network (4 -> 2: 10 parameters)
CONTENT = "archc: 1\nname: on_disk\ninput: [4]\nlayers:\n  - linear: {out: 2}\n"


@pytest.fixture
def tricky(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in (NAME_AS_SPEC, "archc:inside", "  archc: 1"):
        (tmp_path / name).write_text(CONTENT, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("name", [NAME_AS_SPEC, "archc:inside", "  archc: 1"])
def test_a_file_is_read_as_a_file_whatever_its_name(tricky, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "text given as a path" guess on a real file
        for source in (name, str(tricky / name), tricky / name):
            g = archc.load(source)
            assert (g.name, g.input_shape, g.summary.total_params) == ("on_disk", (4,), 10)
        assert [g.name for g in archc.load_all(name)] == ["on_disk"]


def test_the_cli_reads_such_a_file_too(tricky):
    before = listing(tricky)
    r = run_archc(["validate", NAME_AS_SPEC, "archc:inside"], tricky)
    assert r.returncode == 0, text(r.stderr)
    assert text(r.stdout).count("on_disk: 10 params") == 2
    assert listing(tricky) == before


def test_text_is_read_when_the_caller_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / NAME_AS_SPEC).write_text(CONTENT, encoding="utf-8")  # must not be read
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for g in (archc.loads(NAME_AS_SPEC), archc.load(text=NAME_AS_SPEC), archc.load_all(text=NAME_AS_SPEC)[0]):
            assert (g.input_shape, g.summary.total_params) == ((8,), 45)  # 8*5 + 5
            assert g.file == "<string>"
    # text= never reads a file, even one named like a path
    (tmp_path / "spec.yaml").write_text(CONTENT, encoding="utf-8")
    with pytest.raises(archc.SpecErrors, match="the top level is text, not a mapping"):
        archc.loads("spec.yaml")


def test_source_and_text_are_one_or_the_other():
    with pytest.raises(TypeError, match="one of them"):
        archc.load()
    with pytest.raises(TypeError, match="one of them"):
        archc.load("lenet5", text=CONTENT)
    with pytest.raises(TypeError, match="text= is the YAML text of a spec"):
        archc.loads(b"archc: 1")


MISSING = "cannot read file: No such file or directory — check the path"
TEXT_HINT = "; to read YAML text, use archc.loads(text) (or text=)"


def shown(name: str) -> str:
    """The name as an error shows it: newlines and control characters escaped, cut at 60."""
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in name.replace("\n", "\\n"))
    return escaped if len(escaped) <= 60 else escaped[:57] + "..."


@pytest.mark.parametrize("name", [CONTENT, NAME_AS_SPEC, "archc:inside", "archc: 1",
                                  "{archc: 1, input: [4], layers: [relu]}", "archc: 1\n\x1b]0;owned\x07\n"])
def test_text_given_as_a_path_is_a_missing_file(tmp_path, monkeypatch, name):
    # code written before loads() passed the text itself: it is never parsed any more, not
    # even with a warning — it is a file name, and no file has that name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "archc").mkdir()  # "archc: 1" as FILE:NAME names this folder: not a spec either
    with pytest.raises(archc.SpecErrors) as plain:
        archc.load("nope.yaml")
    assert str(plain.value) == f"nope.yaml: error: {MISSING}"  # the error of any missing spec
    generate_source = pytest.importorskip("archc.backends.torch.codegen").generate_source
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DeprecationWarning: text is never guessed
        for call in (archc.load, archc.load_all, generate_source):
            with pytest.raises(archc.SpecErrors) as info:
                call(name)
            assert str(info.value) == f"{shown(name)}: error: {MISSING}{TEXT_HINT}"
            assert "\x1b" not in str(info.value) and "\n" not in str(info.value)
    assert listing(tmp_path) == {"archc"}  # nothing written


def test_a_long_name_is_cut_in_the_error():
    with pytest.raises(archc.SpecErrors) as info:
        archc.load(CONTENT * 100)  # kilobytes of text: too long to be a file name at all
    cut = r"archc: 1\nname: on_disk\ninput: [4]\nlayers:\n  - linear:..."  # 57 characters and ...
    assert str(info.value) == f"{cut}: error: {MISSING}{TEXT_HINT}"
