"""``train.compile`` / ``archc train --compile`` (issue 13.4): the module trains through
torch.compile and computes what the eager module computes — also in channels_last under
the bf16 autocast policy.

The runs use the ``aot_eager`` backend: it traces forward and backward through
AOTAutograd as inductor does, then runs torch's own kernels, so a test answers in seconds
(inductor's C++ compile of the same LeNet-5 takes minutes on a busy 2-core machine)."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from click.testing import CliRunner  # noqa: E402

from archc.train.config import make_config  # noqa: E402
from archc.train.errors import TrainError  # noqa: E402

SMALL = {"train.data.limit": 96, "train.threads": 1}


def run_weights(tmp_path, name, **train):
    from archc.train import train as run

    overrides = SMALL | {f"train.{k}": v for k, v in train.items()}
    metrics, run_dir = run("lenet5", out=str(tmp_path / name), device="cpu", progress="quiet", epochs=1,
                           overrides=overrides)
    return metrics, torch.load(run_dir / "last.pt", weights_only=True)["model"]


def test_a_compiled_run_trains_the_eager_weights(tmp_path):
    # LeNet-5's translate augmentation and the example order come from seeded generators,
    # so both runs see the same batches (one of 64 and a short one: train and eval graphs)
    m_eager, eager = run_weights(tmp_path, "eager")
    m_compiled, compiled = run_weights(tmp_path, "compiled", compile="aot_eager")
    assert eager.keys() == compiled.keys()
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-4, atol=1e-5, msg=k)
    assert m_compiled["test_loss"] == pytest.approx(m_eager["test_loss"], abs=1e-4)


def test_the_compile_flag_compiles_the_trainers_module(tmp_path, monkeypatch):
    from archc.cli import main

    calls = []
    real = torch.compile

    def recording(module, **kwargs):  # what --compile asks for, run on aot_eager to stay fast
        calls.append((type(module).__name__, kwargs))
        return real(module, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", recording)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "lenet5", "--epochs", "1", "--device", "cpu", "--compile",
                                       "--set", "train.data.limit=64", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert calls == [("Lenet5", {})]  # inductor (torch's default), on the spec's own module
    assert json.loads((out / "config.json").read_text())["train"]["compile"] is True


def test_compile_channels_last_and_bf16_compose():
    """One training step of the compiled trainer in channels_last under bf16 autocast gives
    the eager step's loss and gradients (the step the trainer runs on a GPU)."""
    steps = [one_step(compile=setting) for setting in (False, "aot_eager")]
    (loss_e, grads_e, out_e), (loss_c, grads_c, out_c) = steps
    assert out_e is torch.bfloat16 and out_c is torch.bfloat16  # autocast reached the compiled graph
    assert loss_c == pytest.approx(loss_e, rel=1e-2)
    for k in grads_e:
        torch.testing.assert_close(grads_c[k], grads_e[k], rtol=2e-2, atol=2e-3, msg=k)


def one_step(compile):
    from archc.backends.torch.codegen import as_graph
    from archc.train.loop import Context, SupervisedTrainer
    from archc.train.progress import Progress
    from archc.train.run import _task_data_model

    graph = as_graph("lenet5", None, None, None)
    cfg = make_config(graph.train, {"data": "digits"} | {"amp": "bf16", "compile": compile})
    cfg.data.limit = 32
    device = torch.device("cpu")
    torch.manual_seed(0)
    task, splits, model = _task_data_model(graph, cfg, device, Progress("quiet"), fresh=True)
    model = model.to(memory_format=torch.channels_last)
    trainer = SupervisedTrainer(Context(cfg, graph, model, splits, task, device, None, Progress("quiet")))
    trainer.channels_last = True  # the trainer sets it on CUDA only; the composition is what is tested
    x, y = splits.train.x[:16], task.targets(splits.train.y[:16])
    seen = []
    model.output.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    trainer.optimizer.step = lambda: None  # keep the weights: compare the gradients of one step
    loss, _ = trainer.train_step(trainer._inputs(x), y, params, None)
    assert trainer._inputs(x).is_contiguous(memory_format=torch.channels_last)
    return float(loss.detach()), {k: p.grad.clone() for k, p in model.named_parameters()}, seen[-1]


def test_an_unknown_compile_setting_is_refused():
    with pytest.raises(TrainError) as err:
        make_config({"compile": "fast"})
    assert str(err.value) == (
        "train.compile 'fast' is not true, false, a mode (default, reduce-overhead, max-autotune, "
        "max-autotune-no-cudagraphs) or a backend (inductor, cudagraphs, aot_eager, eager) — "
        "e.g. train.compile: true (inductor), or aot_eager to try it without a C++ compiler")
    assert make_config({"compile": "reduce-overhead"}).compile == "reduce-overhead"
