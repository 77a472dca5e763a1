"""Issue 11.3: sizes. A literal size (channels, input, kernel, features) in a file or a
--set has the bound computed ones have (below 2**62); a network whose weights — or, for
training, one step — cannot fit in the memory available is refused before anything is
allocated, with the number and the fix, by archc.build, `compile -o X.pt`, `export` and
`train` (never an allocator error, never the out-of-memory killer).

The available memory is made small (ARCHC_MEMORY_LIMIT, or a patched available_bytes in
this process) so that the cases mean the same on any machine; the 200,000-wide linear
stack (149 GiB of weights) would not fit most machines anyway, and hostile_run.py's
address-space limit stops a run that allocated it."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from hostile_run import assert_clean_failure, listing, run_archc, text

import archc
from archc.analysis import budget
from archc.cli import main

WIDE = """\
archc: 1
input: [8]
layers:
  - linear: {out: 200000}
  - linear: {out: 200000}
  - linear: {out: 10}
train: {data: digits, epochs: 1}
"""
# float32 weights of WIDE: 8·200000 + 200000 + 200000·200000 + 200000 + 200000·10 + 10
WIDE_PARAMS = 8 * 200_000 + 200_000 + 200_000 ** 2 + 200_000 + 200_000 * 10 + 10
SMALL = "archc: 1\ninput: [64]\nlayers:\n  - linear: {out: 64}\n  - relu\n  - linear: {out: 10}\n" \
        "train: {data: digits, epochs: 1, batch_size: 4096}\n"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "wide.yaml").write_text(WIDE)
    (tmp_path / "small.yaml").write_text(SMALL)
    monkeypatch.chdir(tmp_path)
    # the runs below inherit it; below what hostile_run's address-space limit leaves torch (~900 MiB)
    monkeypatch.setenv(budget.ENV_LIMIT, "100MiB")
    monkeypatch.delenv(budget.ENV_SKIP, raising=False)
    return tmp_path


# ------------------------------------------------------------------ literal sizes


@pytest.mark.parametrize("layers, where", [
    ("input: [3, 8, 8]\nlayers:\n  - conv2d: {out: 100000000000000000000, kernel: 3}\n", "4:19"),
    ("input: [100000000000000000000]\nlayers:\n  - linear: {out: 4}\n", "2:9"),
    ("input: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 4611686018427387905}\n", "4:30"),  # 2**62 + 1
    ("input: [8]\nlayers:\n  - linear: {out: -100000000000000000000}\n", "4:19"),
])
def test_literal_sizes_have_the_computed_bound(folder, layers, where):
    (folder / "big.yaml").write_text("archc: 1\n" + layers)
    result = run_archc(["validate", "big.yaml"], folder, timeout=60)
    assert assert_clean_failure(result, (1,)).splitlines() == [
        f"big.yaml:{where}: error: number too large — keep values below 2**62, as computed values are",
        "1 error"]


def test_the_bound_itself_is_a_size_like_any_other(folder):
    """2**62 is accepted as a literal, as an expression may compute it (the shape rule then
    says what is wrong)."""
    (folder / "edge.yaml").write_text("archc: 1\ninput: [8]\nlayers:\n  - linear: {out: 4611686018427387904}\n")
    g = archc.load("edge.yaml")
    assert g.summary.total_params == 8 * 2**62 + 2**62


@pytest.mark.parametrize("setting", ["width=100000000000000000000", "input=[3, 100000000000000000000]"])
def test_set_values_have_the_same_bound(folder, setting):
    (folder / "w.yaml").write_text("archc: 1\nvars: {width: 4}\ninput: [3, 8]\nlayers:\n  - linear: {out: $width}\n")
    result = run_archc(["validate", "w.yaml", "--set", setting], folder, timeout=60)
    err = assert_clean_failure(result, (2,))
    assert f"--set {setting!r}: number too large — keep values below 2**62, as computed values are" in err


# ------------------------------------------------------------------ networks larger than memory


def expected_weights_line(file: str, have: str, where: str) -> str:
    return (f"{file}: error: the network's weights need 149.03 GiB ({WIDE_PARAMS:,} parameters and buffers "
            f"× 4 bytes), more than the {have} available ({where}) — make the network smaller (fewer or "
            "narrower layers: a smaller --set), or try anyway with --no-memory-check (ARCHC_NO_MEMORY_CHECK=1)")


def test_build_refuses_before_allocating(folder, monkeypatch):
    from archc.backends.torch import build as build_module

    def never(*args):
        raise AssertionError("the module was compiled: the check came too late")

    monkeypatch.setattr(build_module, "compile_source", never)
    monkeypatch.setattr(budget, "available_bytes", lambda device="cpu": (2**30, "test"))
    with pytest.raises(budget.MemoryBudgetError) as info:
        archc.build("wide.yaml")
    assert [e.render() for e in info.value.errors] == [expected_weights_line("wide.yaml", "1.00 GiB", "test")]
    assert WIDE_PARAMS * 4 / 2**30 == pytest.approx(149.03, abs=0.005)  # the figure the message shows


EXPORT_LINE = ("wide.yaml: error: the network's weights and the activations of a batch of 2 need 149.03 GiB, "
               "more than the 100.00 MiB available (ARCHC_MEMORY_LIMIT) — make the network or its input smaller "
               "(a smaller --set), or try anyway with --no-memory-check (ARCHC_NO_MEMORY_CHECK=1)")


@pytest.mark.parametrize("command, written, line", [
    (["compile", "wide.yaml", "-o", "wide.pt"], "wide.pt",
     expected_weights_line("wide.yaml", "100.00 MiB", "ARCHC_MEMORY_LIMIT")),
    (["export", "wide.yaml", "-o", "wide.onnx", "--external-data"], "wide.onnx", EXPORT_LINE),
])
def test_compile_and_export_refuse_with_the_number(folder, command, written, line):
    before = listing(folder)
    result = run_archc(command, folder, timeout=120)
    err = assert_clean_failure(result, (1,))
    assert err.splitlines() == [line, "1 error"]
    assert listing(folder) == before and written not in before  # nothing written


def test_train_refuses_a_step_that_cannot_fit(folder):
    before = listing(folder)
    result = run_archc(["train", "wide.yaml", "--out", "run", "--device", "cpu"], folder, timeout=120)
    err = assert_clean_failure(result, (1,))
    # weights 149.03 GiB, their gradients as much (SGD without momentum keeps no state)
    assert err.splitlines()[0].startswith("wide.yaml: error: training needs about 298.")
    assert "(weights 149.03 GiB, gradients 149.03 GiB, optimizer state 0 B, activations " in err
    assert "more than the 100.00 MiB available (ARCHC_MEMORY_LIMIT) — use a smaller --batch-size" in err
    assert listing(folder) == before  # no run directory


def test_train_counts_the_batch_and_the_override_lets_it_run(folder, monkeypatch):
    """SMALL's weights are 18 KiB, but a batch of 4096 keeps megabytes of activations."""
    monkeypatch.setenv(budget.ENV_LIMIT, "1MiB")
    refused = CliRunner().invoke(main, ["train", "small.yaml", "--out", "run", "--device", "cpu", "--quiet"])
    assert refused.exit_code == 1, refused.output
    assert "training needs about 4.04 MiB" in refused.stderr and "for a batch of 4096" in refused.stderr
    ran = CliRunner().invoke(main, ["compile", "small.yaml", "-o", "small.pt", "--no-memory-check"])
    assert ran.exit_code == 0, ran.output
    assert (folder / "small.pt").is_file()
    assert budget.ENV_SKIP not in os.environ  # the override ends with the command


def test_available_memory_is_the_least_limit(monkeypatch):
    monkeypatch.delenv(budget.ENV_LIMIT, raising=False)
    found = budget.available_bytes()
    if os.path.exists("/proc/meminfo"):
        with open("/proc/meminfo") as f:
            meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        assert found is not None and found[0] <= meminfo["MemAvailable"] * 1.5  # it moves between reads
    monkeypatch.setenv(budget.ENV_LIMIT, "512MiB")
    assert budget.available_bytes() == (512 * 2**20, "ARCHC_MEMORY_LIMIT")
    monkeypatch.setenv(budget.ENV_LIMIT, "lots")
    with pytest.raises(archc.SpecErrors) as info:
        budget.available_bytes()
    assert info.value.errors[0].render() == (
        "error: ARCHC_MEMORY_LIMIT: 'lots' is not an amount of memory (e.g. 24GiB, 512MiB, 16GB) — "
        "e.g. ARCHC_MEMORY_LIMIT=8GiB, or unset it")


def test_validate_reports_a_large_network_without_refusing_it(folder):
    """The check guards allocation only: validate (torch-free) still reports the sizes."""
    result = run_archc(["validate", "wide.yaml"], folder, timeout=60)
    assert result.returncode == 0, text(result.stderr)
    assert "149.03 GiB" in text(result.stdout)
