"""The gan task: `archc train specs/dcgan.yaml` trains the zoo DCGAN (shrunk with --set)
for epochs and writes a sample grid per epoch; one step equals a hand-written DCGAN step
(discriminator on real = 1 and fake = 0, then the generator with the non-saturating
loss); the loss follows the discriminator's last op; the DCGAN defaults (Adam 2e-4,
β = (0.5, 0.999), N(0, 0.02) weights) apply when the spec gives none."""

import copy
import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
PIL = pytest.importorskip("PIL.Image")

import torch.nn.functional as F  # noqa: E402
from click.testing import CliRunner  # noqa: E402

import archc  # noqa: E402
from archc.cli import main  # noqa: E402
from archc.train.errors import TrainError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = str(Path(__file__).parent / "specs" / "tiny_gan.yaml")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_dcgan_zoo_spec_trains_and_writes_sample_grids(tmp_path):
    out = tmp_path / "dcgan"
    r = run("train", ROOT / "specs" / "dcgan.yaml", "--set", "ngf=8", "--set", "ndf=8",
            "--set", "train.data.limit=96", "--epochs", 2, "--batch-size", 32, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout[r.stdout.index("{"):])
    assert metrics["epochs_run"] == 2 and metrics["samples"] == str(out / "samples" / "epoch_002.png")
    for epoch in (1, 2):
        with PIL.open(out / "samples" / f"epoch_{epoch:03d}.png") as grid:
            assert (grid.mode, grid.size) == ("RGB", (8 * 66 + 2, 8 * 66 + 2))  # 64 images of 64×64, 2 px apart
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [rec["epoch"] for rec in lines] == [1, 2]
    for rec in lines:
        for key in ("train_d_loss", "train_g_loss", "train_d_real", "train_d_fake"):
            assert math.isfinite(rec[key]), (key, rec)
        assert 0 < rec["train_d_real"] < 1 and 0 < rec["train_d_fake"] < 1
    state = torch.load(out / "last.pt", weights_only=True)
    assert "to_rgb.weight" in state["model"] and "from_rgb.weight" in state["discriminator"]
    assert state["epoch"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["task"] == "gan" and config["overrides"]["ngf"] == 8
    assert "training generator (146,032 parameters) on digits" in r.stderr and "data: digits: 96 train" in r.stderr


def test_dcgan_discriminator_ends_with_sigmoid_through_flatten():
    from archc.train.gan import ends_with_sigmoid

    assert ends_with_sigmoid(archc.load(ROOT / "specs" / "dcgan.yaml", "discriminator"))
    assert not ends_with_sigmoid(archc.load(TINY, "discriminator"))


def test_criterion_follows_the_last_op_and_refuses_a_contradiction():
    from archc.train.config import make_config
    from archc.train.gan import gan_criterion

    p = torch.tensor([[0.9], [0.2]])
    probs = gan_criterion(make_config({}), archc.load(ROOT / "specs" / "dcgan.yaml", "discriminator"))
    assert float(probs(p, 1)) == pytest.approx(-(math.log(0.9) + math.log(0.2)) / 2, rel=1e-6)
    assert float(probs(p, 0)) == pytest.approx(-(math.log(0.1) + math.log(0.8)) / 2, rel=1e-6)
    logits = gan_criterion(make_config({}), archc.load(TINY, "discriminator"))
    s = torch.tensor([[2.0], [-1.0]])
    assert float(logits(s, 1)) == pytest.approx(-(math.log(1 / (1 + math.exp(-2))) + math.log(1 / (1 + math.e))) / 2,
                                                rel=1e-6)
    with pytest.raises(TrainError) as err:
        gan_criterion(make_config({"loss": "bce"}), archc.load(TINY, "discriminator"))
    assert str(err.value) == ("train.loss 'bce' does not fit: the discriminator gives raw scores (no sigmoid at "
                              "the end) — use loss: bce_logits, or leave it out")


def _trainer(tmp_path, overrides=None):
    """A GanTrainer for tiny_gan.yaml built the way archc.train.run builds it."""
    from archc.backends.torch.build import build
    from archc.train.data import prepare
    from archc.train.loop import Context, make_trainer
    from archc.train.run import Request, _settings
    from archc.train.tasks import get_task

    req = Request(TINY, overrides=overrides, out=str(tmp_path / "run"), progress="quiet")
    graph, cfg, run_dir, _ = _settings(req)
    task = get_task(cfg.task)
    splits = prepare(cfg, task.data_shape(graph, cfg))
    model = build(graph, seed=cfg.seed)
    from archc.train.progress import Progress

    ctx = Context(cfg, graph, model, splits, task, torch.device("cpu"), None, Progress("quiet"), extra={"request": req})
    return make_trainer(ctx), splits


def test_dcgan_defaults_apply_when_the_spec_gives_none(tmp_path):
    trainer, splits = _trainer(tmp_path)
    assert type(trainer).__name__ == "GanTrainer" and splits.train.x.shape[1:] == (1, 8, 8)
    for opt in (trainer.opt_g, trainer.opt_d):
        group = opt.param_groups[0]
        assert type(opt) is torch.optim.Adam and group["lr"] == 2e-4 and group["betas"] == (0.5, 0.999)
    weights = torch.cat([p.detach().flatten() for n, p in list(trainer.gen.named_parameters())
                         + list(trainer.disc.named_parameters()) if p.dim() == 4])
    assert float(weights.mean()) == pytest.approx(0, abs=0.002)
    assert float(weights.std()) == pytest.approx(0.02, rel=0.05)
    bn = trainer.gen.batchnorm2d_1.requires_grad_(False)
    assert float(bn.weight.mean()) == pytest.approx(1, abs=0.02) and float(bn.bias.abs().max()) == 0
    assert trainer.to_range  # the generator ends with tanh: images are scaled to [-1, 1]


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_one_step_is_the_hand_written_dcgan_step(tmp_path, smoothing):
    trainer, splits = _trainer(tmp_path, {"train.loss.label_smoothing": smoothing} if smoothing else None)
    G, D = copy.deepcopy(trainer.gen), copy.deepcopy(trainer.disc)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = splits.train.x[:32] * 2 - 1
    trainer.train_step(real, torch.Generator().manual_seed(11))

    z = torch.randn((32, 16, 1, 1), generator=torch.Generator().manual_seed(11))
    fake = G(z)
    d_real, d_fake = D(real), D(fake.detach())
    loss_d = F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, 1 - smoothing)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    d_on_fake = D(fake)  # the updated discriminator
    loss_g = F.binary_cross_entropy_with_logits(d_on_fake, torch.ones_like(d_on_fake))  # -log D(G(z))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    for mine, theirs in ((trainer.gen, G), (trainer.disc, D)):
        for (name, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
            assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    assert not torch.equal(trainer.gen.state_dict()["conv_transpose2d_2.weight"],
                           _trainer(tmp_path)[0].gen.state_dict()["conv_transpose2d_2.weight"])  # it moved


def test_gan_resume_continues_where_it_stopped(tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert run("train", TINY, "--out", whole, "--quiet").exit_code == 0
    assert run("train", TINY, "--out", part, "--epochs", 1, "--quiet").exit_code == 0
    r = run("train", "--resume", part, "--epochs", 2, "--quiet")
    assert r.exit_code == 0, r.output
    a, b = (torch.load(d / "last.pt", weights_only=True) for d in (whole, part))
    for key in ("model", "discriminator"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert sorted(p.name for p in (part / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]


def test_gan_pair_that_does_not_fit_is_refused():
    from archc.train.config import make_config
    from archc.train.gan import _check_pair

    dcgan_g = archc.load(ROOT / "specs" / "dcgan.yaml", "generator")
    with pytest.raises(TrainError) as err:
        _check_pair(dcgan_g, archc.load(TINY, "discriminator"), make_config({}))
    assert str(err.value) == ("the generator makes images of shape [3, 64, 64] but the discriminator takes "
                              "[1, 8, 8] — make the generator's output the discriminator's input")
    with pytest.raises(TrainError) as err:
        _check_pair(archc.load(TINY, "generator"), archc.load(TINY, "discriminator"),
                    make_config({"gan": {"latent": 100}}))
    assert str(err.value).startswith("train.gan.latent is 100 but the generator's input is [16, 1, 1]")


def test_naming_the_discriminator_trains_the_same_pair(tmp_path):
    r = run("train", f"{TINY}:discriminator", "--epochs", 1, "--out", tmp_path / "d", "--quiet")
    assert r.exit_code == 0, r.output
    state = torch.load(tmp_path / "d" / "last.pt", weights_only=True)
    assert set(state["model"]) == {"conv_transpose2d_1.weight", "batchnorm2d_1.weight", "batchnorm2d_1.bias",
                                   "batchnorm2d_1.running_mean", "batchnorm2d_1.running_var",
                                   "batchnorm2d_1.num_batches_tracked", "conv_transpose2d_2.weight"}
    assert set(state["discriminator"]) == {"conv2d_1.weight", "conv2d_2.weight"}


def test_evaluate_measures_both_losses_without_updating(tmp_path):
    trainer, splits = _trainer(tmp_path)
    before = {k: v.clone() for k, v in trainer.disc.state_dict().items()}
    out = trainer.evaluate(splits.train, "val_")
    assert set(out) == {"val_d_loss", "val_g_loss"} and all(math.isfinite(v) for v in out.values())
    assert out["val_d_loss"] == pytest.approx(2 * math.log(2), abs=0.05)  # fresh D: about 0.5 for all
    assert all(torch.equal(before[k], v) for k, v in trainer.disc.state_dict().items())


def test_training_memory_counts_both_networks_of_the_pair(tmp_path, monkeypatch):
    """A GAN step holds both networks' weights, gradients and Adam state, the generator's
    activations and the discriminator's for two batches (real and generated): the check
    before training counts them together, so a limit that the generator alone would pass
    refuses the pair, before any data is read or anything is written."""
    from archc.analysis.budget import estimate_training_bytes
    from archc.analysis.memory import Settings, plan
    from archc.train.config import make_config

    g, d = archc.load(TINY, "generator"), archc.load(TINY, "discriminator")
    cfg = make_config(g.train)
    s = Settings(batch=cfg.batch_size, optimizer=cfg.optimizer.name, momentum=cfg.optimizer.momentum,
                 weight_decay=cfg.optimizer.weight_decay or 0.0, nesterov=cfg.optimizer.nesterov)
    pg, pd = plan(g, s), plan(d, s)
    alone, _ = estimate_training_bytes(g, cfg)
    both, parts = estimate_training_bytes(g, cfg, partner=d)
    assert both == (sum(p.params + p.buffers + p.gradients + p.optimizer_state for p in (pg, pd))
                    + pg.activations + 2 * pd.activations + max(pg.transient, pd.transient))
    assert (both, parts.endswith("; generator and discriminator together")) == \
        (estimate_training_bytes(d, cfg, partner=g)[0], True)  # named either way, the same pair
    monkeypatch.setenv("ARCHC_MEMORY_LIMIT", str((alone + both) // 2))
    out = tmp_path / "run"
    r = run("train", TINY, "--epochs", 1, "--out", out)
    assert r.exit_code == 1 and "generator and discriminator together" in r.output, r.output
    assert not out.exists()
