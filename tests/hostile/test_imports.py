"""Issue 11.1: imports. A spec's `imports:` read only inside its own folder and the library
folders the user names (--import-root, ARCHC_IMPORT_PATH); each file is read once per
load however often it is imported; the files, bytes and values read are bounded; a file
that is no archc spec is said to be one without repeating it; special files (FIFOs,
devices) are refused without blocking, as an import and as the main spec.

The refusals run a real `archc` process under hostile_run.py's time and memory limits;
the read counts and timings run in this process (they need a counter on read_text)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hostile_run import assert_clean_failure, run_archc, text

import archc
import archc.spec.document as document
from archc.cli import main
from archc.spec import imports

LIB = "archc: 1\nblocks:\n  cr:\n    args: {out: required}\n    layers:\n      - conv2d: {out: $out, kernel: 3, padding: 1}\n      - relu\n"
SECRET = "password: hunter2\ntoken: s3cr3t\n"


def spec(*imported: str, layers: str = "  - relu\n") -> str:
    items = ", ".join(f'"{p}"' for p in imported)
    return f"archc: 1\ninput: [3, 8, 8]\nimports: [{items}]\nlayers:\n{layers}"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """proj/ (the spec's folder, the working directory) beside outside/ (a secret)."""
    (tmp_path / "proj").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.yaml").write_text(SECRET)
    (tmp_path / "outside" / "lib.yaml").write_text(LIB)
    monkeypatch.chdir(tmp_path / "proj")
    monkeypatch.delenv(imports.ENV_VAR, raising=False)
    return tmp_path / "proj"


@pytest.fixture
def reads(monkeypatch):
    """The files read_text opened, in order."""
    seen: list[str] = []
    original = document.read_text

    def counting(path):
        seen.append(os.path.realpath(path))
        return original(path)

    monkeypatch.setattr(document, "read_text", counting)
    return seen


# ------------------------------------------------------------------ each file read once


def test_a_diamond_reads_the_shared_file_once(project, reads):
    (project / "c.yaml").write_text(LIB)
    for name in ("a", "b"):
        (project / f"{name}.yaml").write_text(f"archc: 1\nimports: [c.yaml]\nblocks:\n  {name}:\n"
                                              "    layers: [{cr: {out: 4}}]\n")
    (project / "main.yaml").write_text(spec("a.yaml", "b.yaml", layers="  - a\n  - b\n"))
    g = archc.load("main.yaml")
    assert sorted(reads) == sorted(str(project / f) for f in ("main.yaml", "a.yaml", "b.yaml", "c.yaml"))
    # the blocks still work: 3→4 then 4→4 convolutions, 3×3 with bias
    assert g.summary.total_params == (3 * 4 * 9 + 4) + (4 * 4 * 9 + 4)


def test_one_library_imported_2000_times_costs_one_read(project, reads):
    (project / "lib.yaml").write_text(LIB)
    (project / "main.yaml").write_text(spec(*["lib.yaml"] * 2000, layers="  - cr: {out: 4}\n"))
    start = time.perf_counter()
    g = archc.load("main.yaml")
    seconds = time.perf_counter() - start
    assert reads.count(str(project / "lib.yaml")) == 1
    assert g.summary.total_params == 3 * 4 * 9 + 4
    assert seconds < 2.0, f"{seconds:.2f} s"  # 0.2 s measured on the 2-core test machine


def test_a_chain_that_imports_each_file_twice_is_linear(project, reads):
    """f0 imports f1 twice, f1 imports f2 twice, ... 15 levels: 2**15 imports, 16 reads."""
    levels = 15
    for i in range(levels):
        nxt = f"f{i + 1}.yaml"
        (project / f"f{i}.yaml").write_text(f"archc: 1\nimports: [{nxt}, {nxt}]\nblocks:\n  b{i}:\n    layers: [relu]\n")
    (project / f"f{levels}.yaml").write_text(f"archc: 1\nblocks:\n  b{levels}:\n    layers: [relu]\n")
    (project / "main.yaml").write_text(spec("f0.yaml", layers=f"  - b{levels}\n  - b0\n"))
    start = time.perf_counter()
    archc.load("main.yaml")
    assert time.perf_counter() - start < 2.0
    assert len(reads) == levels + 2  # main and f0..f15, each once


def test_a_broken_library_imported_at_every_level_is_reported_once(project):
    """Errors of a file met again are not repeated (2**15 copies, else)."""
    for i in range(15):
        nxt = f"f{i + 1}.yaml"
        (project / f"f{i}.yaml").write_text(f"archc: 1\nimports: [{nxt}, {nxt}]\n")
    (project / "f15.yaml").write_text("archc: 1\nblocks: {b: {layers: [relu]}, c: 3}\n")
    (project / "main.yaml").write_text(spec("f0.yaml"))
    with pytest.raises(archc.SpecErrors) as info:
        archc.load("main.yaml")
    assert len(info.value.errors) == 1
    assert info.value.errors[0].pos.file.endswith("f15.yaml")


def test_a_file_first_met_shallow_still_counts_its_depth_when_met_deep(project):
    """The depth bound holds whatever the order the cache met the files in."""
    for i in range(16):
        (project / f"d{i}.yaml").write_text(f"archc: 1\nimports: [d{i + 1}.yaml]\n")
    (project / "d16.yaml").write_text("archc: 1\nimports: [deep.yaml]\n")
    (project / "deep.yaml").write_text("archc: 1\nimports: [leaf.yaml]\n")
    (project / "leaf.yaml").write_text("archc: 1\nblocks: {b: {layers: [relu]}}\n")
    (project / "main.yaml").write_text(spec("deep.yaml", "d0.yaml"))  # deep.yaml cached at depth 1
    with pytest.raises(archc.SpecErrors) as info:
        archc.load("main.yaml")
    assert "imports nested more than 16 deep" in str(info.value)


# ------------------------------------------------------------------ confinement (CLI)


@pytest.mark.parametrize("imported, why", [
    ("{outside}/secret.yaml", "is an absolute path outside the allowed folders"),
    ("/etc/passwd", "is an absolute path outside the allowed folders"),
    ("../outside/secret.yaml", "leaves the allowed folders (`..`)"),
    ("sub/../../outside/secret.yaml", "leaves the allowed folders (`..`)"),
    ("link.yaml", "is a symbolic link to a file outside the allowed folders"),
    ("../outside/no_such_file.yaml", "leaves the allowed folders (`..`)"),  # existence not told
])
def test_imports_outside_the_spec_folder_are_refused(project, imported, why):
    outside = project.parent / "outside"
    (project / "link.yaml").symlink_to(outside / "secret.yaml")
    imported = imported.format(outside=outside)
    (project / "main.yaml").write_text(spec(imported))
    result = run_archc(["validate", "main.yaml"], project, timeout=60)
    err = assert_clean_failure(result, (1,))
    assert err.splitlines() == [
        f"main.yaml:3:11: error: imports[0]: import {imported!r} {why} — imports stay inside the spec's "
        "folder; name another library folder with --import-root DIR or ARCHC_IMPORT_PATH", "1 error"]


def test_a_library_folder_is_opted_in_by_flag_or_environment(project, monkeypatch):
    outside = project.parent / "outside"
    (project / "main.yaml").write_text(spec("../outside/lib.yaml", layers="  - cr: {out: 4}\n"))
    (project / "by_name.yaml").write_text(spec("lib.yaml", layers="  - cr: {out: 4}\n"))  # found in the root
    flag = run_archc(["validate", "main.yaml", "by_name.yaml", "--import-root", outside], project, timeout=60)
    assert flag.returncode == 0, text(flag.stderr)
    monkeypatch.setenv(imports.ENV_VAR, os.pathsep.join(["", str(outside)]))  # the child inherits it
    env = run_archc(["validate", "main.yaml"], project, timeout=60)
    assert env.returncode == 0, text(env.stderr)
    assert "params" in text(env.stdout)


def test_the_opt_in_ends_with_the_command(project):
    """--import-root changes ARCHC_IMPORT_PATH for the command only (an in-process caller
    such as a test or a notebook sees it as before)."""
    (project / "main.yaml").write_text(spec("../outside/lib.yaml", layers="  - cr: {out: 4}\n"))
    result = CliRunner().invoke(main, ["validate", "main.yaml", "--import-root", str(project.parent / "outside")])
    assert result.exit_code == 0, result.output
    assert imports.ENV_VAR not in os.environ
    with pytest.raises(archc.SpecErrors, match="leaves the allowed folders"):
        archc.load("main.yaml")


def test_a_file_that_is_not_an_archc_spec_is_not_echoed(project):
    outside = project.parent / "outside"
    (project / "main.yaml").write_text(spec("secret.yaml"))
    imported = run_archc(["validate", "main.yaml", "--import-root", outside], project, timeout=60)
    direct = run_archc(["validate", outside / "secret.yaml"], project, timeout=60)
    for result in (imported, direct):
        err = assert_clean_failure(result, (1,))
        assert "not an archc spec: missing the format key `archc`" in err
        for leaked in ("password", "hunter2", "token", "s3cr3t"):
            assert leaked not in err + text(result.stdout)
    assert text(imported.stderr).splitlines()[0] == (
        f"{outside}/secret.yaml:1:1: error: not an archc spec: missing the format key `archc` — "
        "add `archc: 1` at the top of the file")


# ------------------------------------------------------------------ special files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(project):
    os.mkfifo(project / "pipe.yaml")  # nobody ever writes to it: an open() would wait forever
    (project / "main.yaml").write_text(spec("pipe.yaml"))
    as_import = run_archc(["validate", "main.yaml"], project, timeout=30)
    assert assert_clean_failure(as_import, (1,)).splitlines()[0] == (
        "main.yaml:3:11: error: imports[0]: imported file 'pipe.yaml' is a FIFO, not a regular file "
        "— import a spec file (.yaml)")
    for command in (["validate"], ["expand"], ["compile", "--print"]):
        as_main = run_archc([*command, "pipe.yaml"], project, timeout=30)
        assert assert_clean_failure(as_main, (1,)).splitlines()[0] == (
            "pipe.yaml: error: a FIFO, not a regular file — give a spec file (.yaml)")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_is_refused_as_the_main_spec(project):
    result = run_archc(["validate", "/dev/zero"], project, timeout=30)
    assert assert_clean_failure(result, (1,)).splitlines()[0] == (
        "/dev/zero: error: a character device, not a regular file — give a spec file (.yaml)")


def test_a_nul_byte_in_a_path(project):
    """No command line can hold a NUL (execve stops at it), so the spec argument is tried
    in-process; in a spec it is a located error."""
    for args in (["expand", "a\0b.yaml"], ["compile", "--print", "a\0b.yaml"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert result.stderr == "archc: error: the spec path contains a NUL character\n"
    (project / "main.yaml").write_text(spec("a\\0b.yaml"))  # YAML's escape: a real NUL in the value
    result = run_archc(["validate", "main.yaml"], project, timeout=60)
    assert assert_clean_failure(result, (1,)).splitlines()[0] == (
        "main.yaml:3:11: error: imports[0]: the import path contains a NUL character — write the "
        "file's name as plain text")


# ------------------------------------------------------------------ bounds on what is read


def test_more_than_100_files_are_refused(project):
    for i in range(imports.MAX_IMPORT_FILES + 1):
        (project / f"l{i}.yaml").write_text(f"archc: 1\nblocks: {{b{i}: {{layers: [relu]}}}}\n")
    (project / "main.yaml").write_text(spec(*[f"l{i}.yaml" for i in range(imports.MAX_IMPORT_FILES + 1)]))
    result = run_archc(["validate", "main.yaml"], project, timeout=60)
    assert assert_clean_failure(result, (1,)).splitlines() == [
        "main.yaml:3:1201: error: imports[100]: the imports read more than 100 files — gather the "
        "blocks into fewer library files", "1 error"]


def test_imported_bytes_are_bounded_in_total(project):
    filler = "# " + "x" * 1000 + "\n"
    for name in ("big1", "big2"):  # 3 MiB each: one may be imported, not both
        (project / f"{name}.yaml").write_text("archc: 1\nblocks: {}\n" + filler * 3000)
    (project / "main.yaml").write_text(spec("big1.yaml", "big2.yaml"))
    result = run_archc(["validate", "main.yaml"], project, timeout=60)
    assert assert_clean_failure(result, (1,)).splitlines() == [
        "main.yaml:3:24: error: imports[1]: the imported files hold more than 4 MiB together — a block "
        "library is a few kilobytes; import only the files you need", "1 error"]


def test_imported_values_are_bounded_in_total(project, monkeypatch):
    """The bound (100,000 values, as for one file) made small: reading that many takes
    seconds, and the sum is what is tested."""
    monkeypatch.setattr(imports, "MAX_IMPORT_VALUES", 50)
    for name in ("a", "b"):  # 45 values each: the mapping, 2 keys, 1, `vars` and its 20 + 20
        (project / f"{name}.yaml").write_text("archc: 1\nvars:\n" + "".join(f"  v{i}: {i}\n" for i in range(20)))
    (project / "main.yaml").write_text(spec("a.yaml", "b.yaml"))
    (project / "one.yaml").write_text(spec("a.yaml"))
    archc.load("one.yaml")  # one file fits
    with pytest.raises(archc.SpecErrors) as info:
        archc.load("main.yaml")
    assert [e.render() for e in info.value.errors] == [
        "main.yaml:3:21: error: imports[1]: the imported files hold more than 50 YAML values together — "
        "a block library holds a few hundred; import only the files you need"]
