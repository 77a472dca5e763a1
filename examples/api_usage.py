"""Using archc from Python: load a spec, read its numbers, walk its nodes, catch errors.

Run it from anywhere:  python examples/api_usage.py
Nothing here imports torch; ``archc.load`` is the static side (shapes, counts, MACs).
"""

from pathlib import Path

import archc

HERE = Path(__file__).resolve().parent

# 1. One's own spec, which imports its blocks from blocks.yaml.
g = archc.load(HERE / "my_classifier.yaml")
s = g.summary
print(f"{g.name}: input {list(s.input_shape)} -> output {list(s.output_shapes[0])}")
print(f"params {s.total_params:,} (trainable {s.trainable_params:,}, buffers {s.buffers:,})")
print(f"MACs {s.macs:,}")

# 2. A zoo spec with a preset and an override, as `--preset resnet101 --set classes=10`.
g = archc.load(HERE.parent / "specs" / "resnet50.yaml", preset="resnet101", overrides={"classes": 10})
print(f"resnet101 with 10 classes: params {g.summary.total_params:,}, MACs {g.summary.macs:,}")
for node in g.nodes[:4]:
    print(f"  {node.name:<10} {node.op:<12} {str(list(node.meta['shape'])):<16} {node.meta['params']:>8,}")

# 3. A broken spec: every problem comes back as data, with file, line and a fix.
try:
    archc.loads("archc: 1\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 9}\n")
except archc.SpecErrors as exc:
    print(exc.errors[0].render())
