"""Issue 11.9: the command line never ends in a traceback or an "internal error", however
hostile the spec, the --set values, the weights, the arrays or the ONNX file (cli_fuzz.py
draws them). In-process through click's CliRunner for speed (ARCHC_DEBUG=1 turns an
internal error into the exception itself, so a failure shows its traceback), and a
sample through a real process under time and memory limits (hostile_run.py)."""

from __future__ import annotations

import io
import os
import time
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import cli_fuzz as F
from hostile_run import assert_clean_failure, listing, run_archc

import archc
from archc.cli import main

# CI: a bounded number of examples (about a minute in all on the CI machine);
# ARCHC_FUZZ_EXAMPLES=N fuzzes longer
EXAMPLES = int(os.environ.get("ARCHC_FUZZ_EXAMPLES", "30"))
SECONDS_PER_EXAMPLE = 60  # the slowest command (export with its checks) takes a few seconds


@pytest.fixture(scope="module")
def made_files(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """Per seed: its arrays, its weights (a real state_dict, another network's, junk), and
    ONNX files (the vector seed's, exported once here, and broken copies)."""
    import torch

    folder = tmp_path_factory.mktemp("made")
    # one export (the slow part) serves every seed: another seed's arrays are a misfit to try
    (folder / "vector.yaml").write_text(F.SEEDS["vector"])
    r = CliRunner().invoke(main, ["export", str(folder / "vector.yaml"), "-o", str(folder / "m.onnx"), "--no-check"])
    assert r.exit_code == 0, r.output
    onnx_files = F.onnx_variants((folder / "m.onnx").read_bytes())
    out = {}
    for kind, text in F.SEEDS.items():
        buf, other = io.BytesIO(), io.BytesIO()
        torch.save(archc.build(archc.loads(text), seed=0).state_dict(), buf)
        torch.save(archc.build(archc.loads(F.SEEDS["vector" if kind != "vector" else "image"]),
                               seed=0).state_dict(), other)
        buf_list = io.BytesIO()
        torch.save([1, 2, 3], buf_list)
        weights = F.weight_files({"real.pt": buf.getvalue(), "other.pt": other.getvalue(),
                                  "list.pt": buf_list.getvalue()})
        out[kind] = {**F.array_files(kind), **weights, **onnx_files}
    return out


def draw_case(data, made_files) -> tuple[list[str], dict[str, bytes]]:
    kind = data.draw(st.sampled_from(sorted(F.SEEDS)), label="seed")
    files = made_files[kind]
    names = lambda suffixes: sorted(n for n in files if n.endswith(suffixes))  # noqa: E731
    args = F.command(data, kind, names((".npy", ".npz")), names((".pt", ".safetensors")), names(".onnx"))
    used = {a for a in args if a in files}
    return args, {"spec.yaml": F.spec_text(data, kind).encode("utf-8"), **{n: files[n] for n in used}}


def run_in_process(args, files, folder: Path):
    F.write_files(folder, files)
    old = os.getcwd()
    os.chdir(folder)
    try:
        start = time.perf_counter()
        result = CliRunner(env={"ARCHC_DEBUG": "1", "COLUMNS": "80"}).invoke(main, args)
        return result, time.perf_counter() - start
    finally:
        os.chdir(old)


def check(result, seconds, args, files) -> None:
    record = F.case_record(args, files, "found by test_fuzz_cli")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"archc {' '.join(args)} raised:\n{tb}\ncorpus case:\n{record}")
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code in (0, 1, 2), (result.exit_code, text[-2000:], record)
    assert "Traceback" not in text and "internal error" not in text, (text[-2000:], record)
    assert seconds < SECONDS_PER_EXAMPLE, (f"{seconds:.1f} s", record)


# no shrinking: an example is a few commands' worth of seconds, and the failure message
# already holds the whole case, ready for the corpus
@settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_cli_commands_fail_cleanly_on_hostile_input(data, made_files, tmp_path_factory):
    args, files = draw_case(data, made_files)
    folder = tmp_path_factory.mktemp("case")
    result, seconds = run_in_process(args, files, folder)
    check(result, seconds, args, files)


@settings(max_examples=3, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_sample_in_a_real_process_under_limits(data, made_files, tmp_path_factory):
    # what CliRunner cannot show: the process's own exit status, output encoding, limits
    args, files = draw_case(data, made_files)
    folder = tmp_path_factory.mktemp("proc")
    F.write_files(folder, files)
    before = listing(folder)
    r = run_archc(args, folder, timeout=120)
    if r.returncode != 0:
        assert_clean_failure(r)
    out = r.stdout.decode("utf-8", "replace")
    assert "Traceback" not in out and "internal error" not in out
    outputs = {a for a in args if a in ("out.py", "out.pt", "out.safetensors", "g.dot", "g.mmd", "g.html",
                                        "m2.onnx", "run", "o.npy")}
    new = {p.split(os.sep)[0] for p in listing(folder) - before}
    assert new <= outputs | {"m2.onnx.data"}, (new, args)
