"""A fuzzer over the command line: hostile specs, --set values, weights, arrays and ONNX
files given to validate, expand, compile, graph, export, infer and train.

One example is an ``archc`` command line and the files it reads, drawn through hypothesis
(so a failure shrinks to a small case). The property: archc exits 0, 1 or 2, prints no
traceback and no "internal error", and finishes in bounded time. test_fuzz_cli.py runs a
bounded number of examples in CI; run longer locally with

    ARCHC_FUZZ_EXAMPLES=2000 python -m pytest -p no:cacheprovider tests/hostile/test_fuzz_cli.py

A failure found becomes a case of tests/hostile/corpus/ (see corpus.py), replayed by
test_corpus.py in a subprocess under time and memory limits.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import yaml
from hypothesis import strategies as st

# Seeds: small networks, so that a command that builds them (compile -o .pt, export,
# train) costs milliseconds; their files (data, weights, ONNX) are made to fit them.
SEEDS = {
    "image": """archc: 1
name: tiny_cnn
input: [1, 8, 8]
vars: {classes: 3, width: 4}
blocks:
  unit:
    args: {out: required}
    layers:
      - conv2d: {out: $out, kernel: 3, padding: 1}
      - batchnorm2d
      - relu
layers:
  - unit: {out: $width, id: stem}
  - maxpool2d: {kernel: 2}
  - unit: {out: $width * 2, repeat: 2}
  - global_avgpool: {keepdims: false}
  - linear: {out: $classes, id: fc}
train: {data: d.npz, epochs: 1, batch_size: 8, optimizer: {name: sgd, lr: 0.1}}
""",
    "vector": """archc: 1
name: tiny_mlp
input: [4]
vars: {classes: 3}
layers:
  - linear: {out: 8}
  - gelu
  - dropout: {p: 0.1}
  - linear: {out: $classes}
train: {data: v.npz, epochs: 1, batch_size: 8}
""",
    "tokens": """archc: 1
name: tiny_lm
input: {shape: [6], dtype: int64, vocab: 11}
layers:
  - embedding: {num: 11, dim: 8, id: wte}
  - layernorm
  - attention: {heads: 2, causal: true}
  - linear: {out: 11, bias: false, tie: wte}
""",
}

JUNK = [None, -1, 0, 1, 3, 2.5, "x", "", [], {}, "$zz", True, "$(1/0)", [[]], {"a": 1}, "$input.channels",
        "$input.shape", [1, 2, 3, 4, 5], [2, 2], "same", "$index", "input", "a.b", {"relu": None}, "relu",
        10**6, 2**63, "${x}", 0.5, 1e308, float("nan"), "\x1b[31m", "<!--", "../../etc/passwd", "$classes * 2",
        "$width // 0", "-1e9", [None], {"id": "x"}, "fc"]
KEYS = ["id", "from", "when", "repeat", "out", "kernel", "stride", "padding", "dim", "scale", "trainable",
        "init", "tie", "groups", "heads", "num", "p", "data", "epochs", "classes"]
SET_KEYS = ["classes", "width", "input", "train.epochs", "train.lr", "train.batch_size", "train.data",
            "bogus", "", "a.b.c", "name", "train.optimizer", "train.init", "input.shape"]
SET_VALUES = ["10", "-1", "0", "[3, 8, 8]", "[1, 8, 8]", "{a: 1}", "&a [*a, *a]", "2024-01-01", "1e400",
              ".nan", "x" * 400, "!!python/object/apply:os.system ['true']", "'", "[", "0x10", "~", "",
              "yes", "{shape: [6], dtype: int64, vocab: 11}", "he_normal", "{name: normal, std: -1}",
              "999999999999", "1.5", "[1, 2]", "\x1b]0;t\x07"]


# -- files ----------------------------------------------------------------------------

def _npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def array_files(kind: str) -> dict[str, bytes]:
    """Candidate contents of an array input (--input x.npy, --data d.npz) for a seed."""
    rng = np.random.default_rng(0)
    shape = {"image": (1, 8, 8), "vector": (4,), "tokens": (6,)}[kind]
    x = rng.normal(size=(24, *shape)).astype(np.float32)
    good_npy = _npy_bytes(x[:2])
    lying = bytearray(good_npy)
    lying[lying.index(b"(2,"):lying.index(b"(2,") + 3] = b"(9,"  # the header claims more rows than there are
    return {
        "good.npy": good_npy,
        "good.npz": _npz_bytes(x=x, y=rng.integers(0, 3, 24)),
        "one.npy": _npy_bytes(x[0]),
        "wrong_shape.npy": _npy_bytes(rng.normal(size=(2, 5, 3)).astype(np.float32)),
        "ints.npy": _npy_bytes(np.arange(12).reshape(2, 6)),
        "object.npy": _npy_bytes(np.array([{"a": 1}, None], dtype=object)),
        "object.npz": _npz_bytes(x=np.array([1, "a"], dtype=object), y=np.array([0, 1])),
        "no_y.npz": _npz_bytes(x=x),
        "nan.npy": _npy_bytes(np.full((2, *shape), np.nan, dtype=np.float32)),
        "huge_header.npy": b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) +
                           b"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999), }".ljust(117) + b"\n",
        "lying.npy": bytes(lying),
        "truncated.npz": _npz_bytes(x=x, y=rng.integers(0, 3, 24))[:200],
        "text.npy": b"archc: 1\n",
        "empty.npy": b"",
        "random.npz": bytes(rng.integers(0, 256, 300, dtype=np.uint8)),
    }


def weight_files(state: dict[str, bytes]) -> dict[str, bytes]:
    """Candidate weights files: ``state`` holds the real ones made by the session."""
    rng = np.random.default_rng(1)
    real = state.get("real.pt", b"")
    return {**state,
            "truncated.pt": real[: len(real) // 2],
            "random.pt": bytes(rng.integers(0, 256, 400, dtype=np.uint8)),
            "text.pt": b"just some text\n",
            "empty.pt": b"",
            "spec.pt": SEEDS["vector"].encode(),
            "junk.safetensors": struct.pack("<Q", 2**40) + b"{}",
            "bad_json.safetensors": struct.pack("<Q", 10) + b"{not json}",
            }


# -- spec mutation ---------------------------------------------------------------------

def _paths(tree, path=()):
    yield path
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for k, v in items:
        yield from _paths(v, path + (k,))


def mutate(data, tree):
    """0-3 edits of a spec tree: a value replaced by junk, a key added, an entry dropped."""
    import copy

    tree = copy.deepcopy(tree)
    for _ in range(data.draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]), label="edits")):  # a third run whole
        paths = [p for p in _paths(tree) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="at")
        parent = tree
        for k in path[:-1]:
            parent = parent[k]
        how = data.draw(st.sampled_from(["junk", "key", "drop"]), label="how")
        if how == "junk":
            parent[path[-1]] = copy.deepcopy(data.draw(st.sampled_from(JUNK), label="junk"))
        elif how == "key" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(KEYS), label="key")] = copy.deepcopy(data.draw(st.sampled_from(JUNK)))
        else:
            parent.pop(path[-1])
    return tree


def spec_text(data, kind: str) -> str:
    tree = mutate(data, yaml.safe_load(SEEDS[kind]))
    text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)
    mangle = data.draw(st.sampled_from(["none"] * 6 + ["cut", "byte", "tab", "bom"]), label="mangle")
    if mangle == "cut":
        text = text[: data.draw(st.integers(0, len(text)), label="cut at")]
    elif mangle == "byte":
        i = data.draw(st.integers(0, max(len(text) - 1, 0)), label="byte at")
        text = text[:i] + data.draw(st.sampled_from(["\x00", "\t", ":", "&a", "*a", "{", "]", "\ufeff", "!!"])) + text[i + 1:]
    elif mangle == "tab":
        text = text.replace("  ", "\t", 1)
    elif mangle == "bom":
        text = "\ufeff" + text
    return text


# -- command lines ---------------------------------------------------------------------

# --set values that fit the seeds, so that an example with --set gets past the flags too
FITTING_SETS = ["classes=5", "train.epochs=1", "train.lr=0.5", "width=2", "input=[1, 8, 8]", "train.batch_size=4"]


def sets(data) -> list[str]:
    out = []
    for _ in range(data.draw(st.sampled_from([0, 0, 0, 1, 1, 2]), label="sets")):
        key, value = data.draw(st.sampled_from(SET_KEYS)), data.draw(st.sampled_from(SET_VALUES))
        junk = data.draw(st.sampled_from([f"{key}={value}", f"{key}={value}", key, f"={value}"]), label="set")
        out += ["--set", data.draw(st.sampled_from([junk, *FITTING_SETS]), label="which set")]
    return out


COMMANDS = ["validate", "expand", "compile", "graph", "export", "infer", "train"]


def command(data, kind: str, arrays: list[str], weights: list[str], onnx: list[str]) -> list[str]:
    """One command line over the files of the example's folder (spec.yaml and the rest)."""
    cmd = data.draw(st.sampled_from(COMMANDS), label="command")
    pick = lambda xs, label: data.draw(st.sampled_from(xs), label=label)  # noqa: E731
    maybe = lambda label: data.draw(st.booleans(), label=label)  # noqa: E731
    if cmd == "validate":
        extra = ["--format", pick(["table", "json", "markdown"], "format")] if maybe("fmt") else []
        extra += ["--target", pick(["torch", "onnx"], "target")] if maybe("target?") else []
        return ["validate", "spec.yaml", *extra, *sets(data)]
    if cmd == "expand":
        return ["expand", "spec.yaml", *sets(data)]
    if cmd == "compile":
        out = ["--print"] if maybe("print") else \
            ["-o", pick(["out.py", "out.pt", "out.safetensors", "missing/out.pt", "missing/out.py"], "out")]
        extra = ["--init", pick(["he_normal", "{name: normal, std: 0.02}", "bogus", "[", "{name: x}"], "init")] \
            if maybe("init?") else []
        return ["compile", "spec.yaml", *out, *extra, *sets(data)]
    if cmd == "graph":
        extra = ["--depth", str(pick([0, 1, 5], "depth"))] if maybe("depth?") else []
        picture = pick(["g.dot", "g.mmd", "g.html", "missing/g.dot"], "picture")
        return ["graph", "spec.yaml", "-o", picture, *extra, *sets(data)]
    if cmd == "export":
        extra = ["--weights", pick(weights, "weights")] if maybe("weights?") else []
        extra += ["--no-check"] if maybe("nocheck") else []
        extra += ["--opset", str(pick([17, 18, 20, 99], "opset"))] if maybe("opset?") else []
        return ["export", "spec.yaml", "-o", "m2.onnx", *extra, *sets(data)]
    if cmd == "infer":
        if maybe("from spec"):
            return ["infer", "spec.yaml", "--input", pick(arrays, "input"), "--weights", pick(weights, "w"),
                    *sets(data)]
        extra = ["-o", pick(["o.npy", "missing/o.npy"], "save")] if maybe("save?") else []
        return ["infer", pick(onnx, "model"), "--input", pick(arrays, "input"),
                "--topk", str(pick([1, 3, 50], "topk")), *extra]
    extra = ["--init-from", pick(weights, "init-from")] if maybe("init-from?") else []
    data_file = pick([a for a in arrays if a.endswith(".npz")] + ["nope.npz", "spec.yaml"], "data")
    return ["train", "spec.yaml", "--epochs", "1", "--data", data_file, "--out", "run", "--quiet",
            "--device", "cpu", *extra, *sets(data)]


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (folder / name).write_bytes(content)


def onnx_variants(good: bytes) -> dict[str, bytes]:
    """A good exported file, and files that only look like one."""
    import onnx

    model = onnx.load_from_string(good)
    junk_meta = onnx.ModelProto()
    junk_meta.CopyFrom(model)
    del junk_meta.metadata_props[:]
    for key, value in {"archc.classes": '{"0": 1}', "archc.normalize": '{"mean": [0], "std": [0]}',
                       "archc.outputs": "[1, 2]", "archc.inputs": "null", "archc.weights": '"x"'}.items():
        entry = junk_meta.metadata_props.add()
        entry.key, entry.value = key, value
    return {"good.onnx": good, "meta.onnx": junk_meta.SerializeToString(), "cut.onnx": good[: len(good) // 3],
            "text.onnx": b"archc: 1\n", "empty.onnx": b""}


def case_record(args: list[str], files: dict[str, bytes], why: str) -> str:
    """A corpus case (tests/hostile/corpus/*.json) for a failing example."""
    import base64

    def content(b: bytes) -> dict:
        try:
            return {"text": b.decode("utf-8")}
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(b).decode()}

    return json.dumps({"why": why, "args": args, "files": {k: content(v) for k, v in files.items()}},
                      indent=1, ensure_ascii=True)
