"""`archc export` and `archc infer` from the command line (click's CliRunner): what they
print, what they write, and a one-line error with exit 1 — never a traceback — for a
missing or corrupt model, a wrong input shape or dtype, and a spec that cannot be exported."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.ops.registry import get_op

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
torch = pytest.importorskip("torch")

TINY = "archc: 1\nname: tiny\ninput: [1, 8, 8]\nlayers:\n  - conv2d: {out: 2, kernel: 3}\n  - gelu\n" \
       "  - flatten\n  - linear: {out: 4}\n"


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def one_error(result) -> str:
    """The single error line of a failed command (exit 1)."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 or lines[-1].endswith("error"), result.output
    return lines[0]


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """lenet5.onnx exported once through the CLI, and the file's folder."""
    folder = tmp_path_factory.mktemp("lenet")
    result = run("export", "lenet5", "-o", folder / "lenet5.onnx")
    assert result.exit_code == 0, result.output
    return folder / "lenet5.onnx", result.output


def test_export_prints_the_file_and_a_passing_verdict(lenet):
    path, output = lenet
    lines = output.splitlines()
    assert lines[0].startswith(f"wrote {path}: opset 20, dynamic batch,")
    assert "12 nodes (Tanh 4, Conv 3, AveragePool 2, Gemm 2, Reshape 1)" in lines[0]
    assert lines[1] == "check: onnx.checker (full): ok"
    assert lines[2] == "check: ONNX shape inference: 12 named values agree with archc's shapes"
    assert lines[3].startswith("check: onnxruntime vs torch: batch 1 max |diff| ")
    assert lines[-1].startswith("verdict: PASS — max abs difference ")


def test_infer_prints_topk_with_softmax_applied(lenet, tmp_path):
    path, _ = lenet
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = run("infer", path, "--input", tmp_path / "x.npy", "--topk", 3, "--provider", "cpu")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "top-3 classes (probabilities: softmax applied to the model's logits)"
    logits = archc.OnnxModel(path, provider="cpu").run(x)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    best = np.argsort(-p[1])[:3]
    assert lines[2] == "[1] " + ", ".join(f"class {j}: {p[1, j]:.4f}" for j in best)


def test_infer_saves_the_output_and_reads_one_example_and_images(lenet, tmp_path):
    path, _ = lenet
    x = np.random.default_rng(1).random((1, 32, 32)).astype(np.float64)  # one example, float64
    np.save(tmp_path / "x.npy", x)
    result = run("infer", path, "--input", tmp_path / "x.npy", "-o", tmp_path / "out.npy")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "[1, 10]" in result.output
    want = archc.OnnxModel(path, provider="cpu").run(x[None].astype(np.float32))
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), want)
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray((x[0] * 255).astype(np.uint8)).resize((40, 50)).save(tmp_path / "digit.png")
    result = run("infer", path, "--input", tmp_path / "digit.png", "--topk", 2)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("[0] class ")


def test_infer_a_spec_with_weights_equals_the_exported_file(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    model = archc.build(text=TINY, seed=3).eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    result = run("export", tmp_path / "tiny.yaml", "-o", tmp_path / "tiny.onnx", "--weights", tmp_path / "w.pt")
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(2).standard_normal((3, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()  # the trained weights, not a fresh init
    np.testing.assert_allclose(archc.OnnxModel(tmp_path / "tiny.onnx").run(x), want, rtol=1e-4, atol=1e-6)
    result = run("infer", tmp_path / "tiny.yaml", "--weights", tmp_path / "w.pt", "--input", tmp_path / "x.npy",
                 "-o", tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-5, atol=1e-6)


def test_untrained_weights_are_recorded_and_warned_about(lenet, tmp_path):
    path, _ = lenet
    assert archc.OnnxModel(path, provider="cpu").metadata["weights"] == {"source": "init", "seed": 0}
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 32, 32), np.float32))
    result = run("infer", path, "--input", tmp_path / "x.npy", "--provider", "cpu")
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"warning: {path} holds untrained weights (the spec's initialisation, seed 0): "
                             "its predictions mean nothing — export with --weights CKPT from archc train\n")
    assert result.stdout.startswith("top-5 classes")


def fake_run(folder, seed=3, epoch=7):
    """A run folder as `archc train` leaves it: best.pt ({"model", "epoch"}) beside
    config.json, whose data section holds the class names and the normalisation."""
    import json

    folder.mkdir()
    model = archc.build(text=TINY, seed=seed).eval()
    torch.save({"model": model.state_dict(), "epoch": epoch, "metrics": {}}, folder / "best.pt")
    data = {"classes": ["zero", "one", "two", "three"], "normalize": {"mean": [0.5], "std": [0.25]}}
    (folder / "config.json").write_text(json.dumps({"archc": archc.__version__, "data": data}))
    return model, folder / "best.pt"


def test_a_checkpoint_brings_its_origin_classes_and_preprocessing(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    (tmp_path / "tiny.yaml").write_text(TINY)
    model, ckpt = fake_run(tmp_path / "run")
    result = run("export", tmp_path / "tiny.yaml", "-o", tmp_path / "t.onnx", "--weights", ckpt, "--no-check")
    assert result.exit_code == 0, result.output
    meta = archc.OnnxModel(tmp_path / "t.onnx", provider="cpu").metadata
    assert meta["weights"] == {"source": "checkpoint", "path": str(ckpt), "epoch": 7}
    assert meta["classes"] == ["zero", "one", "two", "three"]
    assert meta["normalize"] == {"mean": [0.5], "std": [0.25]}

    pixels = np.random.default_rng(4).integers(0, 256, (12, 10), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "img.png")
    # the reference preprocessing, written out: grey, bilinear to 8x8, [0, 1], (x - 0.5) / 0.25
    small = np.asarray(Image.fromarray(pixels).resize((8, 8), Image.Resampling.BILINEAR), np.float32)
    x = ((small / 255 - 0.5) / 0.25)[None, None].astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    result = run("infer", tmp_path / "t.onnx", "--input", tmp_path / "img.png", "--provider", "cpu",
                 "-o", tmp_path / "y.npy")
    assert (result.exit_code, result.stderr) == (0, ""), result.output  # trained: no warning
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-4, atol=1e-5)
    result = run("infer", tmp_path / "t.onnx", "--input", tmp_path / "img.png", "--provider", "cpu", "--topk", 2)
    p = np.exp(want[0] - want[0].max())
    p /= p.sum()
    best = np.argsort(-p)[:2]
    names = ["zero", "one", "two", "three"]
    assert result.stdout.splitlines()[1] == "[0] " + ", ".join(f"{names[j]}: {p[j]:.4f}" for j in best)


def test_malformed_metadata_is_ignored_with_a_warning(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    _, ckpt = fake_run(tmp_path / "run")
    assert run("export", tmp_path / "tiny.yaml", "-o", tmp_path / "t.onnx", "--weights", ckpt,
               "--no-check").exit_code == 0
    proto = onnx.load(str(tmp_path / "t.onnx"))
    edits = {"archc.classes": "zero, one, two, three",                          # not JSON
             "archc.normalize": '{"mean": [0.5, 0.5, 0.5], "std": [1, 1, 1]}',  # for 3 channels, not 1
             "archc.weights": '{"source": 42}', "archc.outputs": "fc"}
    for prop in proto.metadata_props:
        prop.value = edits.get(prop.key, prop.value)
    onnx.save(proto, str(tmp_path / "edited.onnx"))
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    result = run("infer", tmp_path / "edited.onnx", "--input", tmp_path / "x.npy", "--provider", "cpu")
    assert result.exit_code == 0, result.output
    warnings = result.stderr.splitlines()
    assert len(warnings) == 4 and all(w.startswith(f"warning: {tmp_path / 'edited.onnx'}: ignored ") for w in warnings)
    assert any("archc.classes" in w for w in warnings) and any("archc.weights" in w for w in warnings)
    assert any(w.endswith("ignored metadata archc.normalize (3 means for an input of 1 channel)") for w in warnings)
    assert result.stdout.splitlines()[1].startswith("[0] class ")  # no names: indices


def test_static_batch_and_external_data(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    result = run("export", tmp_path / "tiny.yaml", "-o", tmp_path / "t.onnx", "--static-batch", "--external-data")
    assert result.exit_code == 0, result.output
    model = onnx.load(str(tmp_path / "t.onnx"), load_external_data=False)
    weight = next(t for t in model.graph.initializer if list(t.dims) == [4, 72])  # the linear's
    assert weight.data_location == onnx.TensorProto.EXTERNAL
    assert (tmp_path / "t.onnx.data").stat().st_size == 4 * 72 * 4
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    assert "check: onnxruntime vs torch: batch 1 max" in result.output  # one batch: it is fixed


@pytest.mark.parametrize("level", ["basic", "extended"])
def test_optimize_rewrites_the_file_and_keeps_the_metadata(tmp_path, level):
    (tmp_path / "tiny.yaml").write_text(TINY)
    result = run("export", tmp_path / "tiny.yaml", "-o", tmp_path / "t.onnx", "--optimize", level)
    assert result.exit_code == 0, result.output
    assert "check: optimised file vs torch: batch 1" in result.output
    assert archc.OnnxModel(tmp_path / "t.onnx").metadata["spec.name"] == "tiny"


# -- errors: one line, exit 1 --------------------------------------------------------------

def test_missing_and_corrupt_model(tmp_path):
    missing = run("infer", tmp_path / "nope.onnx", "--input", "x.npy")  # exit 2, as in every command
    assert (missing.exit_code, missing.output) == (2, f"archc: error: no such file: {tmp_path / 'nope.onnx'}\n")
    (tmp_path / "bad.onnx").write_bytes(b"\x08not a protobuf" * 20)
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 32, 32), np.float32))
    line = one_error(run("infer", tmp_path / "bad.onnx", "--input", tmp_path / "x.npy"))
    assert line.startswith(f"archc: error: {tmp_path / 'bad.onnx'}: not a model onnxruntime can load (")


def test_wrong_input_shape_and_dtype(lenet, tmp_path):
    path, _ = lenet
    np.save(tmp_path / "shape.npy", np.zeros((2, 1, 30, 32), np.float32))
    assert one_error(run("infer", path, "--input", tmp_path / "shape.npy")) == \
        "archc: error: input shape [2, 1, 30, 32] does not fit: the model takes [batch, 1, 32, 32]"
    np.save(tmp_path / "text.npy", np.array([["a"] * 32] * 32)[None, None])
    assert one_error(run("infer", path, "--input", tmp_path / "text.npy")) == \
        "archc: error: input dtype <U1 does not fit: the model takes float32"
    (tmp_path / "junk.npy").write_bytes(b"junk")
    assert one_error(run("infer", path, "--input", tmp_path / "junk.npy")).startswith(
        f"archc: error: {tmp_path / 'junk.npy'}: not a readable NumPy file")
    missing = run("infer", path, "--input", tmp_path / "none.npy")  # exit 2, as in every command
    assert (missing.exit_code, missing.output) == (2, f"archc: error: --input: no such file: {tmp_path / 'none.npy'}\n")


def test_spec_that_cannot_be_exported_is_refused_before_tracing(tmp_path, monkeypatch):
    (tmp_path / "tiny.yaml").write_text(TINY)
    monkeypatch.setattr(type(get_op("gelu")), "onnx_opset", None)
    result = run("export", tmp_path / "tiny.yaml", "-o", tmp_path / "t.onnx")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{tmp_path / 'tiny.yaml'}:6:5: error: layers[1].gelu: `gelu` cannot be exported to ONNX — "
        "replace it, or compile to torch only", "1 error"]
    assert not (tmp_path / "t.onnx").exists()
    assert run("validate", tmp_path / "tiny.yaml", "--target", "onnx").output == result.output
    monkeypatch.setattr(type(get_op("gelu")), "onnx_opset", 99)
    line = run("export", tmp_path / "tiny.yaml", "-o", tmp_path / "t.onnx").output.splitlines()[0]
    assert line.endswith("`gelu` needs ONNX opset 99 or later, not 20 — export with --opset 99")


def test_unavailable_opset_and_bad_weights(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    out = run("export", tmp_path / "tiny.yaml", "-o", tmp_path / "t.onnx", "--opset", 11)
    assert out.exit_code == 1
    assert "error: opset 11 is not available: torch.onnx writes opsets 18 to 25 — use --opset 20" in out.output
    (tmp_path / "w.pt").write_bytes(b"junk")
    line = one_error(run("export", tmp_path / "tiny.yaml", "-o", tmp_path / "t.onnx", "--weights", tmp_path / "w.pt"))
    assert line.startswith(f"archc: error: --weights {tmp_path / 'w.pt'}: ")


def test_a_spec_without_weights_is_not_run(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    assert one_error(run("infer", tmp_path / "tiny.yaml", "--input", tmp_path / "x.npy")) == \
        "archc: error: a spec needs --weights CKPT (fresh random weights predict nothing); " \
        "or give an exported .onnx file"


def test_a_failed_check_says_fail_and_exits_1(tmp_path, monkeypatch):
    from archc.backends.onnx import check

    (tmp_path / "tiny.yaml").write_text(TINY)
    monkeypatch.setattr(check, "ATOL", -1.0)  # no difference, not even 0, is now small enough
    result = run("export", tmp_path / "tiny.yaml", "-o", tmp_path / "t.onnx")
    assert result.exit_code == 1, result.output
    assert "(too large)" in result.output
    assert result.output.splitlines()[-1].startswith("verdict: FAIL — max abs difference ")


def test_validate_target_onnx_passes_an_exportable_spec():
    result = run("validate", "resnet18", "--target", "onnx", "--format", "json")
    assert result.exit_code == 0, result.output


def test_export_names_each_stage_on_a_terminal_and_nothing_when_piped(tmp_path, monkeypatch):
    (tmp_path / "tiny.yaml").write_text(TINY)
    stages = []
    archc.export_onnx(str(tmp_path / "tiny.yaml"), tmp_path / "api.onnx", progress=stages.append)
    assert stages == ["building the module", "tracing with torch.onnx (dynamo)", f"writing {tmp_path / 'api.onnx'}",
                      "checking: onnx.checker, shape inference, onnxruntime against torch"]
    piped = CliRunner().invoke(main, ["export", str(tmp_path / "tiny.yaml"), "-o", str(tmp_path / "p.onnx")])
    assert piped.exit_code == 0 and "export: " not in piped.output  # CliRunner's stderr is no terminal
    monkeypatch.setattr("archc.cli.export._stderr_is_terminal", lambda: True)
    shown = CliRunner().invoke(main, ["export", str(tmp_path / "tiny.yaml"), "-o", str(tmp_path / "t.onnx")])
    assert shown.exit_code == 0
    assert shown.output.index("export: tracing with torch.onnx (dynamo) …") < shown.output.index("wrote ")
