"""Every optimizer, schedule and regulariser changes the weights / lr as its formula says,
checked against hand-written updates and torch's own schedulers on a tiny model."""

import math

import pytest

torch = pytest.importorskip("torch")

from archc.train.config import GradNoise, OptimizerConfig, Penalties, ScheduleConfig  # noqa: E402
from archc.train.errors import TrainError  # noqa: E402
from archc.train.optim import Schedule, add_grad_noise, make_optimizer, penalty  # noqa: E402


def tiny():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def grads_of(model, steps=1):
    """(weights before, gradient) of a fixed quadratic loss."""
    x = torch.arange(12.0).view(4, 3) / 10
    loss = (model(x) ** 2).mean()
    loss.backward()
    return [p.detach().clone() for p in model.parameters()], [p.grad.clone() for p in model.parameters()]


def two_steps(cfg):
    """Weights after two optimizer steps, and the gradients seen at each step."""
    model = tiny()
    opt = make_optimizer(model.parameters(), cfg)
    x = torch.arange(12.0).view(4, 3) / 10
    history = [[p.detach().clone() for p in model.parameters()]]
    grads = []
    for _ in range(2):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        opt.step()
        history.append([p.detach().clone() for p in model.parameters()])
    return history, grads


def close(a, b):
    return all(torch.allclose(x, y, atol=1e-6, rtol=1e-5) for x, y in zip(a, b))


def test_sgd_plain_and_weight_decay():
    (w0, w1, w2), (g0, g1) = two_steps(OptimizerConfig("sgd", lr=0.1, weight_decay=0.01))
    assert close(w1, [w - 0.1 * (g + 0.01 * w) for w, g in zip(w0, g0)])
    assert close(w2, [w - 0.1 * (g + 0.01 * w) for w, g in zip(w1, g1)])


def test_sgd_momentum():
    (w0, w1, w2), (g0, g1) = two_steps(OptimizerConfig("sgd", lr=0.1, momentum=0.9))
    v1 = g0
    v2 = [0.9 * v + g for v, g in zip(v1, g1)]  # V <- rho V + grad ; W <- W - lr V
    assert close(w1, [w - 0.1 * v for w, v in zip(w0, v1)])
    assert close(w2, [w - 0.1 * v for w, v in zip(w1, v2)])


def test_sgd_nesterov():
    (w0, w1, w2), (g0, g1) = two_steps(OptimizerConfig("sgd", lr=0.1, momentum=0.9, nesterov=True))
    v1 = g0
    v2 = [0.9 * v + g for v, g in zip(v1, g1)]
    assert close(w1, [w - 0.1 * (g + 0.9 * v) for w, g, v in zip(w0, g0, v1)])
    assert close(w2, [w - 0.1 * (g + 0.9 * v) for w, g, v in zip(w1, g1, v2)])


def test_nesterov_needs_momentum():
    with pytest.raises(TrainError, match="nesterov needs momentum"):
        make_optimizer(tiny().parameters(), OptimizerConfig("sgd", nesterov=True))


def adam_reference(ws, gs, lr, b1, b2, eps, wd=0.0, decoupled=False):
    m = [torch.zeros_like(w) for w in ws[0]]
    v = [torch.zeros_like(w) for w in ws[0]]
    w = [x.clone() for x in ws[0]]
    for t, g in enumerate(gs, 1):
        new = []
        for i, (wi, gi) in enumerate(zip(w, g)):
            if decoupled:
                wi = wi * (1 - lr * wd)
            elif wd:
                gi = gi + wd * wi
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            mh, vh = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
            new.append(wi - lr * mh / (vh.sqrt() + eps))
        w = new
    return w


def test_adam():
    ws, gs = two_steps(OptimizerConfig("adam", lr=0.01, betas=[0.8, 0.99], eps=1e-6))
    assert close(ws[2], adam_reference(ws, gs, 0.01, 0.8, 0.99, 1e-6))


def test_adam_l2_weight_decay_is_added_to_the_gradient():
    ws, gs = two_steps(OptimizerConfig("adam", lr=0.01, weight_decay=0.1))
    assert close(ws[2], adam_reference(ws, gs, 0.01, 0.9, 0.999, 1e-8, wd=0.1))


def test_adamw_decouples_weight_decay_and_defaults_to_0_01():
    ws, gs = two_steps(OptimizerConfig("adamw", lr=0.01))
    assert close(ws[2], adam_reference(ws, gs, 0.01, 0.9, 0.999, 1e-8, wd=0.01, decoupled=True))
    assert not close(ws[2], adam_reference(ws, gs, 0.01, 0.9, 0.999, 1e-8))


def test_rmsprop():
    ws, gs = two_steps(OptimizerConfig("rmsprop", lr=0.01, alpha=0.9, eps=1e-8))
    sq = [torch.zeros_like(w) for w in ws[0]]
    w = ws[0]
    for g in gs:
        sq = [0.9 * s + 0.1 * gi * gi for s, gi in zip(sq, g)]
        w = [wi - 0.01 * gi / (s.sqrt() + 1e-8) for wi, gi, s in zip(w, g, sq)]
    assert close(ws[2], w)


def test_frozen_parameters_are_left_out():
    model = tiny()
    model.bias.requires_grad_(False)
    opt = make_optimizer(model.parameters(), OptimizerConfig("sgd", lr=0.1))
    assert [p for g in opt.param_groups for p in g["params"]] == [model.weight]
    model.weight.requires_grad_(False)
    with pytest.raises(TrainError, match="every parameter is frozen"):
        make_optimizer(model.parameters(), OptimizerConfig("sgd"))


# --------------------------------------------------------------------------- schedules


def lrs(cfg, epochs=12, observe=None):
    opt = make_optimizer(tiny().parameters(), OptimizerConfig("sgd", lr=0.5))
    s = Schedule(opt, cfg, epochs)
    out = []
    for e in range(epochs):
        out.append(s.start_epoch(e))
        if observe:
            s.observe(observe[e])
    return out


def torch_lrs(make, epochs=12, observe=None):
    opt = torch.optim.SGD(tiny().parameters(), lr=0.5)
    sched = make(opt)
    out = []
    for e in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(observe[e]) if observe else sched.step()
    return out


def test_constant():
    assert lrs(ScheduleConfig("constant")) == [0.5] * 12


def test_step_matches_steplr():
    ours = lrs(ScheduleConfig("step", step_size=3, gamma=0.5))
    assert ours == pytest.approx(torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)))


def test_multistep_matches_multisteplr():
    ours = lrs(ScheduleConfig("multistep", milestones=[2, 7], gamma=0.1))
    assert ours == pytest.approx(torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 7], 0.1)))


def test_exponential_gamma_matches_exponentiallr_and_decay_is_exp():
    ours = lrs(ScheduleConfig("exponential", gamma=0.8))
    assert ours == pytest.approx(torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.8)))
    assert lrs(ScheduleConfig("exponential", decay=0.3)) == pytest.approx([0.5 * math.exp(-0.3 * t) for t in range(12)])


def test_time_based():
    assert lrs(ScheduleConfig("time", decay=0.5)) == pytest.approx([0.5 / (1 + 0.5 * t) for t in range(12)])


def test_cosine_matches_cosineannealinglr():
    ours = lrs(ScheduleConfig("cosine", min_lr=0.01))
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12, eta_min=0.01))
    assert ours == pytest.approx(ref)


def test_warmup_composes_with_step():
    ours = lrs(ScheduleConfig("step", step_size=3, gamma=0.5, warmup_epochs=4))
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.SequentialLR(o, [
        torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / 5, total_iters=4),
        torch.optim.lr_scheduler.StepLR(o, 3, 0.5)], milestones=[4]))
    assert ours == pytest.approx(ref)
    assert ours[:4] == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_warmup_then_cosine_over_the_remaining_epochs():
    ours = lrs(ScheduleConfig("cosine", warmup_epochs=2))
    assert ours[:2] == pytest.approx([0.5 / 3, 1.0 / 3])
    assert ours[2:] == pytest.approx([0.5 * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(10)])


def test_plateau_matches_reducelronplateau():
    values = [1.0, 0.9, 0.95, 0.93, 0.92, 0.8, 0.85, 0.86, 0.9, 0.9, 0.7, 0.71]
    ours = lrs(ScheduleConfig("plateau", patience=1, factor=0.5), observe=values)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1, threshold=0),
                    observe=values)
    assert ours == pytest.approx(ref)
    assert min(ours) < 0.5


def test_schedule_state_round_trips():
    opt = make_optimizer(tiny().parameters(), OptimizerConfig("sgd", lr=0.5))
    s = Schedule(opt, ScheduleConfig("plateau", patience=0, factor=0.5), 10)
    for v in (1.0, 2.0, 3.0):
        s.observe(v)
    t = Schedule(opt, ScheduleConfig("plateau", patience=0, factor=0.5), 10)
    t.load_state_dict(s.state_dict())
    assert t.start_epoch(3) == s.start_epoch(3) == 0.125


def test_unknown_schedule_and_multistep_without_milestones():
    opt = make_optimizer(tiny().parameters(), OptimizerConfig("sgd"))
    with pytest.raises(TrainError, match="not available"):
        Schedule(opt, ScheduleConfig("linear"), 3)
    with pytest.raises(TrainError, match="milestones"):
        Schedule(opt, ScheduleConfig("multistep"), 3)


# --------------------------------------------------------------------------- regularisers


def test_penalties_reach_weights_not_biases_or_norms():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    torch.manual_seed(1)
    for p in model.parameters():
        p.data.normal_()
    penalty(model, Penalties(l1=0.1, l2=0.2)).backward()
    w = model[0].weight
    assert torch.allclose(w.grad, 0.1 * w.sign() + 2 * 0.2 * w)
    assert model[0].bias.grad is None and model[1].weight.grad is None
    assert penalty(model, Penalties()) is None


def test_gradient_noise_follows_its_decay():
    model = tiny()
    _, grads = grads_of(model)
    g = torch.Generator().manual_seed(5)
    add_grad_noise(list(model.parameters()), GradNoise(std=0.3, decay=0.55), 3, g)
    g = torch.Generator().manual_seed(5)
    sigma = 0.3 / 4 ** 0.55
    expected = [gr + sigma * torch.randn(gr.shape, generator=g) for gr in grads]
    assert close([p.grad for p in model.parameters()], expected)


def test_clip_grad_norm_is_torchs():
    from archc.train.config import TrainConfig
    from archc.train.loop import AmpPolicy, SupervisedTrainer

    model = tiny()
    trainer = SupervisedTrainer.__new__(SupervisedTrainer)
    trainer.cfg = TrainConfig(clip_grad_norm=0.01)
    trainer.model = trainer.forward = model
    trainer.optimizer = make_optimizer(model.parameters(), OptimizerConfig("sgd", lr=1.0))
    trainer.amp, trainer.step = AmpPolicy(False, torch.device("cpu")), 0
    trainer.loss_fn = lambda out, y: (out ** 2).mean()
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.arange(12.0).view(4, 3) / 10
    trainer.train_step(x, None, list(model.parameters()), None)
    moved = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, model.parameters())])
    assert moved.norm().item() == pytest.approx(0.01, rel=1e-4)  # lr 1: the step is the clipped gradient
