"""The GAN task (DCGAN): a generator and a discriminator from one spec file, trained in turn.

A spec file with ``networks: {generator: ..., discriminator: ...}`` and ``train: {task:
gan}`` trains with ``archc train FILE``; ``train.gan.generator``/``discriminator`` name the
two networks (defaults: ``generator``, ``discriminator``). The generator maps a latent
``z`` of its input shape (DCGAN: [100, 1, 1], drawn from N(0, 1)) to an image of the
discriminator's input shape; the discriminator ends in one value per image.

Each step (Goodfellow et al. 2014, Algorithm 1; seeds/003):

1. discriminator (``d_steps`` times, a fresh z each time, the same real batch):
   minimise BCE(D(x), 1) + BCE(D(G(z)), 0), i.e. maximise log D(x) + log(1 - D(G(z)));
   ``loss: {label_smoothing: ε}`` makes the real label 1 - ε (one-sided label smoothing,
   Salimans et al. 2016: it keeps the discriminator from growing over-confident);
2. generator, with the **non-saturating** loss: minimise BCE(D(G(z)), 1) = -log D(G(z))
   (the "works better in practice" form (2) of the seeds), on the last step's z.

The BCE is ``BCELoss`` when the discriminator ends with ``sigmoid`` (shape-only ops such as
``flatten`` after it are looked through) and ``BCEWithLogitsLoss`` on its raw score
otherwise; a ``train.loss`` of ``bce``/``bce_logits`` that contradicts the network is refused.

Defaults from the DCGAN paper (Radford et al. 2016, section 4): when the spec leaves the
optimizer at its default, Adam with lr 2e-4 and betas (0.5, 0.999), one per network; when
the spec has no ``train.init``, weights from N(0, 0.02) for conv, transposed conv and
linear layers, batch-norm scales from N(1, 0.02) and zero shifts (the PyTorch DCGAN
tutorial's ``weights_init``). Images are scaled to [-1, 1] when the generator ends with
``tanh`` (and the data are not normalised otherwise). Training uses the train split only.

Run directory: ``samples/epoch_NNN.png`` after every epoch (a grid of 64 images from a
fixed z, so the epochs compare), ``last.pt`` (``model``: the generator's state_dict, so
``archc compile FILE:generator --weights`` reads it; ``discriminator``; both optimizers;
RNG), metrics.jsonl with ``train_d_loss``, ``train_g_loss``, ``train_d_real`` (mean D(x))
and ``train_d_fake`` (mean D(G(z))) per epoch. One process (no DDP) for now.
"""

from __future__ import annotations

import io
import json
import math
import time

import torch
import torch.nn.functional as F

from archc.train import checkpoint as ckpt
from archc.train.errors import TrainError
from archc.train.tasks import Task, register_task

DCGAN_WEIGHT = {"name": "normal", "mean": 0.0, "std": 0.02}
DCGAN_INIT = {"conv2d": DCGAN_WEIGHT, "conv_transpose2d": DCGAN_WEIGHT, "linear": DCGAN_WEIGHT,
              "batchnorm2d": {"weight": {"name": "normal", "mean": 1.0, "std": 0.02}, "bias": "zeros"}}
DCGAN_OPTIMIZER = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
SHAPE_ONLY = ("flatten", "reshape", "identity")  # ops that keep the values (looked through)
SAMPLES = 64


# --------------------------------------------------------------------------- which network is which


def main_network(spec, overrides=None, preset=None) -> str | None:
    """The network a GAN file trains by default (its generator), or None.

    For ``archc train FILE`` on a file of several networks whose ``train.task`` is gan:
    the one its ``train.gan.generator`` names (``generator``)."""
    from archc.api import load_doc
    from archc.zoo import resolve

    if not isinstance(spec, str):  # a Graph is one network already
        return None
    doc, chosen = load_doc(resolve(spec), preset, overrides)
    if chosen or len(doc.networks) < 2:
        return None
    trains = [n.train for n in doc.networks.values() if isinstance(n.train, dict)]
    if not trains or trains[0].get("task") != "gan":
        return None
    gan = trains[0].get("gan") if isinstance(trains[0].get("gan"), dict) else {}
    return str(gan.get("generator", "generator"))


def partner_graph(graph, cfg, req=None):
    """The GAN file's other network: the discriminator of ``graph``'s generator, or the
    reverse (``train.gan`` names them), under the request's --set/--preset."""
    from archc.backends.torch.codegen import as_graph

    names = (cfg.gan.generator, cfg.gan.discriminator)
    other_name = names[1] if graph.name == names[0] else names[0]
    return as_graph(f"{graph.file}:{other_name}", None, getattr(req, "overrides", None) or None,
                    getattr(req, "preset", None))


def ends_with_sigmoid(graph) -> bool:
    """Whether the network's output is a sigmoid, looking through shape-only ops."""
    node = graph.node(graph.outputs[0])
    while node.op in SHAPE_ONLY and node.inputs and node.inputs[0] in {n.name for n in graph.nodes}:
        node = graph.node(node.inputs[0])
    return node.op == "sigmoid"


def gan_criterion(cfg, d_graph):
    """``fn(scores, label)``: BCE of D's outputs against a constant label (0, 1, or 1 - ε)."""
    probabilities = ends_with_sigmoid(d_graph)
    wanted = "bce" if probabilities else "bce_logits"
    name = cfg.loss.name
    if name not in (None, "gan", wanted):
        why = "ends with sigmoid (probabilities)" if probabilities else "gives raw scores (no sigmoid at the end)"
        raise TrainError(f"train.loss {name!r} does not fit: the discriminator {why}",
                         f"use loss: {wanted}, or leave it out")
    loss = F.binary_cross_entropy if probabilities else F.binary_cross_entropy_with_logits
    return lambda scores, label: loss(scores, torch.full_like(scores, float(label)))


# --------------------------------------------------------------------------- sample grids


def grid_png(images: torch.Tensor, columns: int = 8, gap: int = 2) -> bytes:
    """A PNG of ``images`` (N, C, H, W) in [0, 1], ``columns`` per row, ``gap`` pixels apart."""
    from PIL import Image

    n, c, h, w = images.shape
    rows = math.ceil(n / columns)
    canvas = torch.ones(c, rows * (h + gap) + gap, columns * (w + gap) + gap)
    for i, image in enumerate(images.clamp(0, 1)):
        top, left = gap + (i // columns) * (h + gap), gap + (i % columns) * (w + gap)
        canvas[:, top:top + h, left:left + w] = image
    pixels = (canvas * 255).round().byte().permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels[:, :, 0] if c == 1 else pixels[:, :, :3], "L" if c == 1 else "RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- the task


@register_task("gan")
class Gan(Task):
    """Images only (labels ignored); trained by :class:`GanTrainer`."""

    default_metrics = []
    monitor = ("train_g_loss", "min")

    def data_shape(self, graph, cfg) -> tuple:
        """The images are the discriminator's input: the generator's output."""
        if graph.name == cfg.gan.discriminator:
            return tuple(graph.input_shape)
        return tuple(graph.shape_of(graph.outputs[0]))

    def check(self, splits, out_shape) -> None:
        if splits.train.x.dim() != 4:
            raise TrainError(f"the gan task needs images, the data are {list(splits.train.x.shape[1:])}")


class GanTrainer:
    """The alternating loop; the interface of archc.train.loop.SupervisedTrainer."""

    def __init__(self, ctx):
        from archc.train.optim import Schedule

        if ctx.world > 1:
            raise TrainError("the gan task trains on one process", "leave out --nproc / torchrun")
        self.ctx, self.cfg, self.device = ctx, ctx.cfg, ctx.device
        self.gen, self.disc, g_graph, d_graph = self._networks(ctx)
        self.latent = tuple(g_graph.input_shape)
        self.criterion = gan_criterion(self.cfg, d_graph)
        self.probabilities = ends_with_sigmoid(d_graph)
        self.real_label = 1.0 - self.cfg.loss.label_smoothing  # one-sided smoothing (Salimans et al. 2016)
        self.to_range = _ends_with(g_graph, "tanh") and not self.cfg.data.normalize
        self.opt_g, self.opt_d = self._optimizer(self.gen), self._optimizer(self.disc)
        self.schedules = [Schedule(o, self.cfg.schedule, self.cfg.epochs) for o in (self.opt_g, self.opt_d)]
        z = torch.Generator().manual_seed(self.cfg.seed + 7)
        self.fixed_z = torch.randn((SAMPLES, *self.latent), generator=z).to(self.device)
        self.epoch, self.step, self.history = 0, 0, []

    def _networks(self, ctx):
        """(generator, discriminator, their graphs): ctx's network and the file's other one."""
        from archc.backends.torch.build import build

        cfg, graph = ctx.cfg, ctx.graph
        names = (cfg.gan.generator, cfg.gan.discriminator)
        if graph.name not in names:
            raise TrainError(f"network {graph.name!r} is neither train.gan.generator ({names[0]!r}) nor "
                             f"train.gan.discriminator ({names[1]!r})", "train FILE without :NETWORK")
        other = partner_graph(graph, cfg, ctx.extra.get("request"))
        init = None if cfg.init is not None else DCGAN_INIT
        other_model = build(other, seed=cfg.seed + 1, init=init).to(ctx.device)
        if init is not None and not cfg.init_from:  # the main network was built with torch's default
            ctx.model.load_state_dict(build(graph, seed=cfg.seed, init=init).state_dict())
        pair = (ctx.model, other_model, graph, other) if graph.name == names[0] else \
            (other_model, ctx.model, other, graph)
        _check_pair(pair[2], pair[3], cfg)
        return pair

    def _optimizer(self, model):
        from archc.train.config import OptimizerConfig, convert
        from archc.train.optim import make_optimizer

        c = self.cfg.optimizer
        if c == OptimizerConfig():  # left at its default: the paper's Adam
            c = convert(OptimizerConfig, dict(DCGAN_OPTIMIZER), "train.optimizer")
        return make_optimizer(model.parameters(), c)

    # ----------------------------------------------------------------- state

    def state_dict(self) -> dict:
        return {"model": self.gen.state_dict(), "discriminator": self.disc.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "schedules": [s.state_dict() for s in self.schedules], "epoch": self.epoch, "step": self.step,
                "history": self.history, "rng": ckpt.rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.load_state_dict(state["model"])
        self.disc.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for s, saved in zip(self.schedules, state["schedules"]):
            s.load_state_dict(saved)
        self.epoch, self.step, self.history = state["epoch"], state["step"], list(state["history"])
        ckpt.set_rng_state(state["rng"])

    # ----------------------------------------------------------------- steps

    def _real(self, x):
        return x * 2 - 1 if self.to_range else x

    def _z(self, n: int, g: torch.Generator):
        return torch.randn((n, *self.latent), generator=g).to(self.device)

    def _sum_d(self, scores) -> torch.Tensor:
        p = scores if self.probabilities else torch.sigmoid(scores)
        return p.detach().float().sum()

    def train_step(self, real, g: torch.Generator) -> dict:
        """One discriminator update (``d_steps`` of them) and one generator update."""
        cfg, b = self.cfg, len(real)
        for _ in range(cfg.gan.d_steps):
            fake = self.gen(self._z(b, g))
            d_real, d_fake = self.disc(real), self.disc(fake.detach())
            loss_d = self.criterion(d_real, self.real_label) + self.criterion(d_fake, 0)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self._clip(self.disc)
            self.opt_d.step()
        loss_g = self.criterion(self.disc(fake), 1)  # non-saturating: -log D(G(z))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self._clip(self.gen)
        self.opt_g.step()
        self.step += 1
        return {"d_loss": loss_d.detach() * b, "g_loss": loss_g.detach() * b,
                "d_real": self._sum_d(d_real), "d_fake": self._sum_d(d_fake)}

    def _clip(self, model) -> None:
        if self.cfg.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.cfg.clip_grad_norm)

    def train_epoch(self, epoch: int) -> dict:
        from archc.train.data import batches, epoch_order
        from archc.train.loop import seeded

        ctx, cfg, train = self.ctx, self.cfg, self.ctx.splits.train
        order = epoch_order(len(train), cfg.seed, epoch)
        g = seeded(cfg.seed, epoch, 3)
        steps = math.ceil(len(order) / cfg.batch_size)
        ctx.progress.start_epoch(epoch + 1, cfg.epochs, steps)
        self.gen.train()
        self.disc.train()
        sums, n = {}, 0
        for i, (x, _) in enumerate(batches(train, cfg.batch_size, order, self.device), 1):
            for k, v in self.train_step(self._real(x), g).items():
                sums[k] = sums.get(k, 0.0) + v
            n += len(x)
            ctx.progress.update(i, n, float(sums["g_loss"]) / n, ("d_loss", float(sums["d_loss"]) / n))
        record = {f"train_{k}": float(v) / max(n, 1) for k, v in sums.items()}
        for key in ("train_d_loss", "train_g_loss"):
            if not math.isfinite(record.get(key, 0.0)):
                raise TrainError(f"the {key[6:]} became {record[key]} in epoch {epoch + 1}; training stopped"
                                 + (f", the last good checkpoint is {ctx.run_dir / 'last.pt'}" if self.history else ""),
                                 "lower the learning rate")
        return record

    @torch.no_grad()
    def evaluate(self, a, prefix: str = "val_") -> dict:
        """The losses on ``a`` (real images) and fresh fakes, without updates."""
        from archc.train.data import batches

        self.gen.eval()
        self.disc.eval()
        g, sums, n = torch.Generator().manual_seed(self.cfg.seed), {"d_loss": 0.0, "g_loss": 0.0}, 0
        for x, _ in batches(a, self.cfg.batch_size, None, self.device):
            d_real, d_fake = self.disc(self._real(x)), self.disc(self.gen(self._z(len(x), g)))
            sums["d_loss"] += float(self.criterion(d_real, self.real_label) + self.criterion(d_fake, 0)) * len(x)
            sums["g_loss"] += float(self.criterion(d_fake, 1)) * len(x)
            n += len(x)
        return {f"{prefix}{k}": v / max(n, 1) for k, v in sums.items()}

    # ----------------------------------------------------------------- the run

    def fit(self) -> dict:
        ctx, cfg = self.ctx, self.cfg
        while self.epoch < cfg.epochs:
            t0 = time.perf_counter()
            lr = [s.start_epoch(self.epoch) for s in self.schedules][0]
            record = {"epoch": self.epoch + 1} | self.train_epoch(self.epoch)
            record |= {"lr": lr, "time": round(time.perf_counter() - t0, 4)}
            self.history.append(record)
            self.epoch += 1
            self._save()
            ctx.progress.end_epoch(record)
        out = {"epochs_run": self.epoch} | {k: v for k, v in (self.history[-1] if self.history else {}).items()
                                              if k.startswith("train_")}
        if ctx.writes and self.history:
            out["samples"] = str(self._sample_path(self.epoch))
        return out

    def _sample_path(self, epoch: int):
        return self.ctx.run_dir / "samples" / f"epoch_{epoch:03d}.png"

    @torch.no_grad()
    def samples(self) -> torch.Tensor:
        """The generator's images of the fixed z, in [0, 1] (eval mode: batch norm's running statistics)."""
        self.gen.eval()
        images = self.gen(self.fixed_z).float().cpu()
        self.gen.train()
        return (images + 1) / 2 if self.to_range else images

    def _save(self) -> None:
        """samples/epoch_NNN.png, last.pt, metrics.jsonl (rank 0, atomically)."""
        if not self.ctx.writes:
            return
        d = self.ctx.run_dir
        (d / "samples").mkdir(exist_ok=True)
        ckpt.write_atomic(self._sample_path(self.epoch), grid_png(self.samples()))
        ckpt.save(d / "last.pt", self.state_dict())
        ckpt.write_atomic(d / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self.history).encode())


Gan.trainer = GanTrainer


def _ends_with(graph, op: str) -> bool:
    return graph.node(graph.outputs[0]).op == op


def _check_pair(g_graph, d_graph, cfg) -> None:
    """The generator's images fit the discriminator, which gives one value per image."""
    made, wanted = tuple(g_graph.shape_of(g_graph.outputs[0])), tuple(d_graph.input_shape)
    if made != wanted:
        raise TrainError(f"the generator makes images of shape {list(made)} but the discriminator takes "
                         f"{list(wanted)}", "make the generator's output the discriminator's input")
    scores = tuple(d_graph.shape_of(d_graph.outputs[0]))
    if math.prod(scores) != 1:
        raise TrainError(f"the discriminator must give one value per image, it gives {list(scores)}",
                         "end it with a layer of one output (and flatten)")
    if cfg.gan.latent is not None and cfg.gan.latent != g_graph.input_shape[0]:
        raise TrainError(f"train.gan.latent is {cfg.gan.latent} but the generator's input is "
                         f"{list(g_graph.input_shape)}", f"set latent to {g_graph.input_shape[0]} or change the input")
