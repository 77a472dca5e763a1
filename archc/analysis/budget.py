"""Will the network fit? Its statically known size against the memory available, before
anything is allocated.

A spec can ask for any size — 200,000 channels is one short line — and torch would then
fail deep in its allocator, or, where the system overcommits, the kernel's out-of-memory
killer would end the process (and maybe others) while the weights are initialised. So
`archc.build` (and through it `archc compile -o X.pt` and `archc export`) first compares
the weights' bytes, `archc export` adds the activations of its example batch, and
`archc train` the peak of one training step (:func:`estimate_training_bytes`), with what
this process may allocate now (:func:`available_bytes`); a network that cannot fit is
refused with both numbers and the fix.

``--no-memory-check`` (``ARCHC_NO_MEMORY_CHECK=1``) skips the check; ``ARCHC_MEMORY_LIMIT``
(``8GiB``) caps the memory archc counts as available, for a CI job or a service that
should refuse large networks before the machine's limit. Torch-free unless a CUDA device
is asked about; `archc validate` never calls this.
"""

from __future__ import annotations

import os

from archc.errors import Pos, SpecError, SpecErrors

ENV_LIMIT = "ARCHC_MEMORY_LIMIT"
ENV_SKIP = "ARCHC_NO_MEMORY_CHECK"
FP32 = 4
TRY_ANYWAY = "or try anyway with --no-memory-check (ARCHC_NO_MEMORY_CHECK=1)"


class MemoryBudgetError(SpecErrors):
    """A network that cannot fit in the memory available (a SpecErrors: the CLI reports
    it as a spec error, exit 1)."""


def checks_enabled() -> bool:
    return os.environ.get(ENV_SKIP, "").strip().lower() in ("", "0", "false", "no")


def skip_checks() -> "callable":
    """Turn the checks off in this process and those it starts (torchrun's ranks); returns
    the function that restores the setting (the CLI calls it when the command ends)."""
    from archc.envvar import set_for_command

    return set_for_command(ENV_SKIP, "1")


# --------------------------------------------------------------------------- what is available


def available_bytes(device: str = "cpu") -> tuple[int, str] | None:
    """(bytes, what limits them): the least of ARCHC_MEMORY_LIMIT and, for the CPU, the
    kernel's MemAvailable, a container's (cgroup) limit less its usage, and the process's
    address-space limit (``ulimit -v``) less what it has mapped; for a CUDA device, its
    free memory (``torch.cuda.mem_get_info``). None when nothing is known."""
    found = [f for f in (_env_limit(),) if f]
    if str(device).startswith("cuda"):
        found += [f for f in (_cuda_free(device),) if f]
    else:
        found += [f for f in (_meminfo(), _cgroup(), _address_space()) if f]
    return min(found, key=lambda f: f[0]) if found else None


def _env_limit() -> tuple[int, str] | None:
    text = os.environ.get(ENV_LIMIT, "").strip()
    if not text:
        return None
    from archc.analysis.memory import parse_bytes

    try:
        return parse_bytes(text), ENV_LIMIT
    except ValueError as exc:
        raise SpecErrors.one(f"{ENV_LIMIT}: {exc}", fix="e.g. ARCHC_MEMORY_LIMIT=8GiB, or unset it") from None


def _meminfo() -> tuple[int, str] | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available RAM"
    except (OSError, ValueError, IndexError):
        pass
    try:  # other Unixes: free pages
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free RAM"
    except (ValueError, OSError, AttributeError):
        return None


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
        return int(text) if text.isdigit() else None  # "max": no limit
    except OSError:
        return None


def _cgroup() -> tuple[int, str] | None:
    """A container's memory limit less its usage (cgroup v2, else v1): the out-of-memory
    killer acts there, whatever MemAvailable says about the host."""
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        top, used = _read_int(limit), _read_int(usage)
        if top is not None and used is not None and top < 2**60:  # v1 writes 'no limit' as ~2**63
            return max(top - used, 0), "the container's memory limit"
    return None


def _address_space() -> tuple[int, str] | None:
    """RLIMIT_AS less the address space mapped now (torch maps much it never touches)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm", encoding="ascii") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        return max(soft - mapped, 0), "the process's address-space limit (ulimit -v)"
    except (ImportError, OSError, ValueError, IndexError):
        return None


def _cuda_free(device) -> tuple[int, str] | None:
    try:
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return free, f"free on {device}"
    except Exception:  # noqa: BLE001 (no CUDA, a device that is not there: the caller says so later)
        return None


# --------------------------------------------------------------------------- what is needed


def weight_bytes(graph) -> int | None:
    """float32 parameters and buffers, as `archc validate` reports them (None: not analysed,
    or a size unknown)."""
    s = getattr(graph, "summary", None)
    return s.weight_bytes if s is not None else None


def inference_bytes(graph, batch: int) -> int | None:
    """Weights, the input and every node's output for ``batch`` samples (nothing freed:
    an upper bound of a forward pass)."""
    s = graph.summary
    if weight_bytes(graph) is None or s.activation_bytes is None:
        return None
    from archc.ops.registry import numel

    return s.weight_bytes + batch * (s.activation_bytes + FP32 * numel(graph.input_shape))


def estimate_training_bytes(graph, cfg, device: str = "cpu", ranks: int = 1, partner=None) -> tuple[int, str] | None:
    """(bytes, what they are) of one training step's peak on each of ``ranks`` processes:
    archc/analysis/parallel.py's share of archc/analysis/memory.py's plan (weights,
    gradients, optimizer state, activations kept for backward, the step's temporaries; DDP's
    buckets, FSDP's shards and gathered units) for the train section ``cfg``, its frozen
    layers counted. ``partner``: a GAN's other network, trained in the same step
    (archc/train/gan.py): both networks' weights, gradients and optimizer state are held,
    and the generator's activations stay alive while the discriminator runs on the real and
    the generated batch (twice its activations). None where no estimate can be made (a
    batch that does not split over the processes: training says so itself)."""
    from archc.report import numbers as N

    if weight_bytes(graph) is None or (partner is not None and weight_bytes(partner) is None):
        return None
    ranks = max(ranks, 1)
    try:
        shares = [_share(g, cfg, device, ranks) for g in (graph, partner) if g is not None]
    except ValueError:
        return None
    # the discriminator (train.gan.discriminator names it) runs on two batches per step
    disc = getattr(getattr(cfg, "gan", None), "discriminator", None)
    held = sum(s.peak - s.activations - s.transient for s in shares)
    activations = sum((2 if g.name == disc and partner is not None else 1) * s.activations
                      for g, s in zip((graph, partner), shares))
    transient = max(s.transient for s in shares)
    weights = sum(s.params + s.buffers for s in shares)
    grads, state = sum(s.gradients for s in shares), sum(s.optimizer_state for s in shares)
    other = held - weights - grads - state  # DDP's buckets; FSDP's gathered parameters and gradients
    parts = (f"weights {N.nbytes(weights)}, gradients {N.nbytes(grads)}, optimizer state {N.nbytes(state)}, "
             + (f"{'buckets' if shares[0].strategy == 'ddp' else 'gathered units'} {N.nbytes(other)}, " if other else "")
             + f"activations {N.nbytes(activations + transient)} for a batch of {shares[0].batch}"
             + (f" on each of {ranks} processes ({shares[0].strategy})" if ranks > 1 else "")
             + (f"; {graph.name} and {partner.name} together" if partner is not None else ""))
    return held + activations + transient, parts


def _share(graph, cfg, device: str, ranks: int):
    """One process's parallel.share of ``graph`` under the train section ``cfg`` on ``device``."""
    from archc.analysis.memory import OPTIMIZERS, Settings, precision_of
    from archc.analysis.parallel import frozen_nodes, share

    opt, cuda = cfg.optimizer, str(device).startswith("cuda")
    precision = precision_of(cfg.amp, cuda)
    frozen = frozen_nodes(graph, cfg.freeze) if getattr(cfg, "freeze", None) else frozenset()
    settings = Settings(batch=cfg.batch_size, optimizer=opt.name if opt.name in OPTIMIZERS else "adam",
                        momentum=opt.momentum, weight_decay=opt.weight_decay or 0.0, nesterov=opt.nesterov,
                        precision=precision, device="cuda" if cuda else "cpu", frozen=frozen)
    strategy = getattr(cfg, "strategy", None) if ranks > 1 else None
    return share(graph, settings, ranks, strategy or "ddp")


# --------------------------------------------------------------------------- the checks


def check_build(graph) -> None:
    """Refuse to allocate ``graph``'s weights when they cannot fit (MemoryBudgetError)."""
    need = weight_bytes(graph)
    if need is None or not checks_enabled():
        return
    s = graph.summary
    what = f"{s.total_params + s.buffers:,} parameters and buffers × {FP32} bytes"
    _refuse_above(graph, need, "cpu", f"the network's weights need {{need}} ({what})",
                  "make the network smaller (fewer or narrower layers: a smaller --set)")


def check_inference(graph, batch: int) -> None:
    """Weights and one forward pass of ``batch`` samples (export's example batch)."""
    need = inference_bytes(graph, batch)
    if need is None or not checks_enabled():
        return
    _refuse_above(graph, need, "cpu", f"the network's weights and the activations of a batch of {batch} "
                  "need {need}", "make the network or its input smaller (a smaller --set)")


def check_training(graph, cfg, device: str = "cpu", ranks: int = 1, partner=None) -> None:
    """One training step's peak on ``device`` (MemoryBudgetError when it cannot fit);
    ``partner``: a GAN's other network."""
    if not checks_enabled():
        return
    found = estimate_training_bytes(graph, cfg, device, ranks, partner)
    if found is None:
        return
    need, parts = found
    _refuse_above(graph, need, device, f"training needs about {{need}} ({parts})",
                  "use a smaller --batch-size or a smaller network")


def _refuse_above(graph, need: int, device: str, what: str, fix: str) -> None:
    found = available_bytes(device)
    if found is None or need <= found[0]:
        return
    from archc.report import numbers as N

    have, where = found
    raise MemoryBudgetError([SpecError(
        what.format(need=N.nbytes(need)) + f", more than the {N.nbytes(have)} available ({where})",
        Pos(str(graph.file)) if getattr(graph, "file", None) else None, "", f"{fix}, {TRY_ANYWAY}")])
