"""``train.compile``: the module trains through ``torch.compile``.

The setting is ``false`` (eager), ``true`` (inductor, torch's default mode), one of
torch.compile's modes — ``reduce-overhead`` (CUDA graphs; small networks on a GPU),
``max-autotune``, ``max-autotune-no-cudagraphs`` — or a backend name: ``inductor``,
``cudagraphs``, ``aot_eager`` (traces forward and backward through AOTAutograd but runs
torch's own kernels: no C++/Triton compile, so it answers in seconds where inductor takes a
minute; the tests use it), ``eager`` (dynamo's capture only).

Every zoo network and the property tests' random specs trace as one graph
(tests/backends/test_torch_compile.py, test_compile_random.py), so the default
``fullgraph=False`` loses nothing on them; a user spec with an LSTM needs
``torch._dynamo.config.allow_rnn`` to be traced rather than run eagerly.

Composition: the module is converted to channels_last (CUDA) before it is compiled and the
inputs are converted per batch, so the traced graph sees NHWC tensors; the mixed-precision
policy's ``torch.autocast`` is entered around the compiled call, which dynamo traces into
the graph (autocast is part of the guards), and the fp16 GradScaler acts on the loss and
the optimizer outside it. Evaluation (eval mode, no grad) compiles a second graph.
"""

from __future__ import annotations

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
BACKENDS = ("inductor", "cudagraphs", "aot_eager", "eager")


def check(setting) -> str | None:
    """Why ``train.compile: setting`` is not valid, or None (torch-free: config.py calls it)."""
    if isinstance(setting, bool) or setting in MODES or setting in BACKENDS:
        return None
    return (f"train.compile {setting!r} is not true, false, a mode ({', '.join(MODES)}) "
            f"or a backend ({', '.join(BACKENDS)})")


def options(setting) -> dict | None:
    """torch.compile's keyword arguments for the setting; None: do not compile."""
    if setting is False or setting is None:
        return None
    if setting is True:
        return {}
    return {"mode": setting} if setting in MODES else {"backend": setting}


def compiled(module, setting):
    """``module`` compiled as the setting says (``module`` itself when it says false)."""
    kwargs = options(setting)
    if kwargs is None:
        return module
    import torch

    return torch.compile(module, **kwargs)
