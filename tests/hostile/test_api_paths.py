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


def test_old_callers_passing_text_still_work_with_a_deprecation_warning(tmp_path, monkeypatch):
    # kept for code written before loads(): only when no file has that name (see above)
    monkeypatch.chdir(tmp_path)
    with pytest.warns(DeprecationWarning, match=r"archc\.loads\(text\)") as caught:
        g = archc.load(CONTENT)
    assert g.name == "on_disk"
    assert caught[0].filename == __file__  # the warning points at the caller's line
