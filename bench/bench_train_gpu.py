"""GPU training throughput (issue 13.5): a spec-built network against the same network
written by hand (torchvision's), in one training loop, eager and compiled.

For each model (resnet50, vit_b_16) and each variant (eager, compiled), the module
``archc.build`` makes and torchvision's module train on the same synthetic batch (random
images and labels, on the device) with the same loop: SGD with momentum, cross-entropy,
``torch.autocast`` bf16 (--amp), channels_last memory format. After the warm-up steps
(which include the compile), rounds of --steps steps are timed for each module in turn,
the order alternating per round so both see the same machine; the figures are medians.

Reported per model and variant: images/s of each module, their ratio archc / torchvision
(the issue's target: ≥ 0.98), and the model FLOP utilisation,
MFU = images/s × 3 × forward MACs × 2 / peak FLOP/s — forward and backward cost about
three forwards, a MAC is two FLOPs (the PaLM paper's accounting, appendix B); the forward
MACs are archc's static count at the benchmark's image size. The peak is the device's dense
bf16 tensor-core figure from PEAK_TFLOPS (NVIDIA's datasheets: the figures they print
"with sparsity", halved), or --peak-tflops.

Usage::

    python bench/bench_train_gpu.py                                  # a CUDA GPU: both models
    python bench/bench_train_gpu.py --models resnet50 --batch 256 --steps 50 --json r50.json
    python bench/bench_train_gpu.py --device cpu --models resnet18 --image-size 64 --batch 2 \\
        --steps 2 --warmup 1 --rounds 1 --compile-backend aot_eager  # a dry run of the logic

Without a CUDA device it stops with a message unless --device cpu is given: the CPU run
checks the benchmark's logic (tests/test_bench_train_gpu.py), its figures mean nothing.
This is a measurement, not a test: nothing fails when a figure is slow.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# dense bf16 tensor-core peak, TFLOP/s, by a part of torch.cuda.get_device_name(); first match wins
PEAK_TFLOPS = [
    ("H200 NVL", 835.5), ("H200", 989.5),
    ("H100 NVL", 835.5), ("H100 PCIe", 756.5), ("H100", 989.5),  # H100 SXM ("H100 80GB HBM3")
    ("A100", 312.0),
]
MODELS = {  # name -> (zoo spec, torchvision constructor, default batch on a GPU)
    "resnet50": ("resnet50", "resnet50", 256),
    "vit_b_16": ("vit_b_16", "vit_b_16", 128),
    "resnet18": ("resnet18", "resnet18", 256),  # small: the CPU dry run
}


def peak_tflops(device_name: str) -> float | None:
    for part, tflops in PEAK_TFLOPS:
        if part.lower() in device_name.lower():
            return tflops
    return None


def mfu(images_per_s: float, forward_macs: int, peak: float | None) -> float | None:
    """Model FLOP utilisation: 3 × forward MACs × 2 FLOPs per image, over the peak."""
    if peak is None:
        return None
    return images_per_s * 3 * forward_macs * 2 / (peak * 1e12)


def build_pair(name: str, size: int):
    """(archc's module, torchvision's module, archc's forward MACs per image) at size × size."""
    import torchvision

    import archc

    spec, tv_name, _ = MODELS[name]
    overrides = {"input": [3, size, size]}
    graph = archc.load(spec, None, overrides)
    ours = archc.build(graph, seed=0)
    kwargs = {"image_size": size} if name.startswith("vit") else {}
    theirs = getattr(torchvision.models, tv_name)(weights=None, **kwargs)
    return ours, theirs, graph.summary.macs


class Loop:
    """The one training loop both modules run: SGD + momentum, cross-entropy, autocast."""

    def __init__(self, model, args, device):
        import torch

        self.torch, self.device = torch, device
        model = model.to(device).train()
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.forward = torch.compile(model, backend=args.compile_backend) if args.compiled else model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)

    def steps(self, x, y, n: int) -> float:
        """Seconds for n steps (the device synchronised at both ends)."""
        torch = self.torch
        self._sync()
        start = time.perf_counter()
        for _ in range(n):
            self.opt.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                loss = torch.nn.functional.cross_entropy(self.forward(x), y)
            loss.backward()
            self.opt.step()
        self._sync()
        return time.perf_counter() - start

    def _sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)


def measure(name: str, compiled: bool, args, device, peak) -> dict:
    """One model and variant: both modules, alternating rounds; medians."""
    import torch

    args.compiled = compiled
    size = args.image_size
    batch = args.batch or (MODELS[name][2] if device.type == "cuda" else 2)
    ours, theirs, macs = build_pair(name, size)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=g).to(device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), generator=g).to(device)
    loops = {"archc": Loop(ours, args, device), "torchvision": Loop(theirs, args, device)}
    for loop in loops.values():
        loop.steps(x, y, args.warmup)  # compiles (compiled variant), autotunes cuDNN
    times = {k: [] for k in loops}
    for r in range(args.rounds):
        for k in (list(loops) if r % 2 == 0 else list(loops)[::-1]):
            times[k].append(loops[k].steps(x, y, args.steps))
    rate = {k: batch * args.steps / statistics.median(t) for k, t in times.items()}
    del loops
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"model": name, "variant": "compiled" if compiled else "eager", "batch": batch, "image_size": size,
            "forward_macs": macs, "images_per_s": {k: round(v, 2) for k, v in rate.items()},
            "ratio": round(rate["archc"] / rate["torchvision"], 4),
            "mfu": {k: (round(m, 4) if (m := mfu(v, macs, peak)) is not None else None) for k, v in rate.items()}}


def device_and_peak(args):
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        return None, None, None
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = args.peak_tflops if args.peak_tflops is not None else (
        peak_tflops(name) if device.type == "cuda" else None)
    return device, name, peak


def table(rows: list[dict], device_name: str, peak) -> str:
    head = f"device: {device_name}; peak {peak} TFLOP/s bf16 dense" if peak else \
        f"device: {device_name}; peak unknown (give --peak-tflops): no MFU"
    lines = [head, "model     variant   batch  archc img/s  torchvision img/s  ratio   MFU archc  MFU tv"]
    for r in rows:
        m = r["mfu"]
        pct = lambda v: f"{100 * v:.1f}%" if v is not None else "n/a"  # noqa: E731
        lines.append(f"{r['model']:<9} {r['variant']:<9} {r['batch']:>5}  {r['images_per_s']['archc']:>11.1f}  "
                     f"{r['images_per_s']['torchvision']:>17.1f}  {r['ratio']:.3f}  {pct(m['archc']):>9}  "
                     f"{pct(m['torchvision']):>6}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50,vit_b_16", help="any of " + ",".join(MODELS))
    p.add_argument("--variants", default="eager,compiled", help="eager, compiled or both")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run of the logic)")
    p.add_argument("--batch", type=int, default=None, help="default: 256 (ResNets), 128 (ViT) on a GPU; 2 on the CPU")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--steps", type=int, default=30, help="steps per timed round")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (the compile happens here)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--amp", choices=["bf16", "fp16", "off"], default="bf16")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile's backend (aot_eager: no codegen)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU (default: PEAK_TFLOPS)")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    unknown = [m for m in args.models.split(",") if m not in MODELS]
    if unknown:
        p.error(f"unknown model {unknown[0]!r}; models: {', '.join(MODELS)}")
    device, device_name, peak = device_and_peak(args)
    if device is None:
        print("bench_train_gpu: no CUDA device here — this benchmark measures GPU training; "
              "--device cpu runs its logic as a dry run (figures meaningless)", file=sys.stderr)
        return 2
    import torch

    torch.backends.cudnn.benchmark = True
    rows = [measure(m, v == "compiled", args, device, peak)
            for m in args.models.split(",") for v in args.variants.split(",")]
    print(table(rows, device_name, peak))
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device_name, "peak_tflops": peak, "torch": torch.__version__,
                                               "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
